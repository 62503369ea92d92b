import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultySegments } from '../../test/helpers/faulty-segment.js';
import { SegmentFile } from './segment-file.js';

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
