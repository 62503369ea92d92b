import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultySegments } from '../../test/helpers/faulty-segment.js';
import { openSegment, SegmentFile } from './segment-file.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function file(): string {
  const d = mkdtempSync(join(tmpdir(), 'nxs-segment-'));
  dirs.push(d);
  return join(d, 'wal-0000000000000001');
}

const records = (n: number, size: number): Buffer[] => Array.from({ length: n }, (_, i) => Buffer.alloc(size, 97 + (i % 26)));

describe('SegmentFile', () => {
  it('completes short writes: every byte of the batch lands, in order', async () => {
    const path = file();
    const faults = new FaultySegments();
    faults.short = true;
    const seg = await SegmentFile.open(path, 'a', faults.open);
    const batch = records(5, 1000);
    await seg.append(batch, true);
    await seg.append(records(1, 10), true);
    await seg.close();
    expect(readFileSync(path)).toEqual(Buffer.concat([...batch, ...records(1, 10)]));
    expect(seg.size).toBe(5010);
    expect(faults.calls.writev).toBeGreaterThan(10); // it did loop
  });

  it('fails a batch that cannot be written whole and cuts it off, so the file ends at the last good batch', async () => {
    const path = file();
    const faults = new FaultySegments();
    const seg = await SegmentFile.open(path, 'a', faults.open);
    const good = records(2, 100);
    await seg.append(good, true);
    faults.noSpace = true;
    await expect(seg.append(records(3, 1000), true)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(readFileSync(path)).toEqual(Buffer.concat(good));
    expect(seg.size).toBe(200);
  });

  it('fails a batch whose fdatasync fails, and cuts it off', async () => {
    const path = file();
    const faults = new FaultySegments();
    const seg = await SegmentFile.open(path, 'a', faults.open);
    faults.syncFails = true;
    await expect(seg.append(records(2, 50), true)).rejects.toMatchObject({ code: 'EIO' });
    expect(readFileSync(path)).toHaveLength(0);
  });

  it('appends nothing after a failed batch it could not cut off, until the cut succeeds', async () => {
    const path = file();
    const faults = new FaultySegments();
    const seg = await SegmentFile.open(path, 'a', faults.open);
    await seg.append(records(1, 10), true);
    faults.noSpace = true;
    faults.truncateFails = true;
    await expect(seg.append(records(2, 1000), true)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(readFileSync(path).length).toBeGreaterThan(10); // the torn batch is still there
    faults.noSpace = false;
    const writes = faults.calls.writev;
    await expect(seg.append(records(1, 20), true)).rejects.toMatchObject({ code: 'EIO' });
    expect(faults.calls.writev).toBe(writes); // nothing was written after the torn bytes
    faults.truncateFails = false;
    await seg.append(records(1, 20), true);
    expect(readFileSync(path)).toEqual(Buffer.concat([...records(1, 10), ...records(1, 20)]));
  });
});

describe('openSegment (a segment by its descriptor, without fs/promises)', () => {
  it("opens 'a' without truncating and 'w' empty, mode 0600, and reports the size", async () => {
    const path = file();
    const a = await openSegment(path, 'a');
    expect((await a.writev([Buffer.from('abc'), Buffer.from('de')], 0)).bytesWritten).toBe(5);
    await a.datasync();
    expect((await a.stat()).size).toBe(5);
    await a.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const again = await SegmentFile.open(path, 'a');
    expect(again.size).toBe(5);
    await again.append([Buffer.from('f')], true);
    await again.close();
    expect(readFileSync(path, 'latin1')).toBe('abcdef');
    const w = await SegmentFile.open(path, 'w');
    expect(w.size).toBe(0);
    await w.close();
    expect(readFileSync(path).length).toBe(0);
  });

  it('truncates, and rejects with the errno of a failed call', async () => {
    const path = file();
    const h = await openSegment(path, 'w');
    await h.writev([Buffer.alloc(100, 1)], 0);
    await h.truncate(10);
    expect((await h.stat()).size).toBe(10);
    await h.close();
    await expect(h.datasync()).rejects.toMatchObject({ code: 'EBADF' });
    await expect(openSegment(join(path, 'not-a-dir', 'x'), 'a')).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it('closes only once the calls already running are done, as a FileHandle does', async () => {
    const path = file();
    const h = await openSegment(path, 'w');
    const big = Array.from({ length: 256 }, (_, i) => Buffer.alloc(64 * 1024, i));
    const settled: string[] = [];
    const writes = [h.writev(big, 0).then(() => settled.push('writev')), h.datasync().then(() => settled.push('datasync'))];
    await h.close().then(() => settled.push('close'));
    await Promise.all(writes);
    // A descriptor closed under them could be reused by the next open(2) and written to.
    expect(settled.at(-1)).toBe('close');
    expect([...settled].sort()).toEqual(['close', 'datasync', 'writev']);
    // Compared here, not by toEqual: its diff of 16 MB runs the test process out of memory.
    expect(readFileSync(path).equals(Buffer.concat(big))).toBe(true);
  });
});
