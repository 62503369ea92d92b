import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { advance, decodeDelta, DEFAULT_LIMITS, DOM0, execute, XsError, type Store, type XsErrorCode } from '../../store/index.js';
import { FaultySegments } from '../../test/helpers/faulty-segment.js';
import { jsonRecords, jsonSegment, REQUESTS, requestVersions } from '../../test/helpers/json-log.js';
import { segmentName } from './data-dir.js';
import { FENCE_RECORD } from './wal.js';
import { Journal, recover, type JournalOptions, type SyncMode } from './journal.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'nxs-journal-'));
  dirs.push(d);
  return d;
}

const write = (s: Store, path: string, value: string): Store =>
  advance(execute(s, DOM0, DEFAULT_LIMITS, { op: 'write', path, value }).store, s);

async function opened(d: string, sync: SyncMode, snapshotEvery?: number, more: Partial<JournalOptions> = {}): Promise<{ j: Journal; s: Store }> {
  const s = recover(d).store;
  return { j: await Journal.open({ dir: d, sync, log, snapshotEvery, ...more }, s), s };
}

/** Records `next` after `s` and returns it, with a waiter that says how its output was released. */
function commitOn(j: Journal, s: Store, path: string, value: string): { next: Store; outcome: { lost: XsErrorCode | 'durable' | undefined } } {
  const next = write(s, path, value);
  j.record(s, next);
  const outcome: { lost: XsErrorCode | 'durable' | undefined } = { lost: undefined };
  j.after(next.generation, (lost) => (outcome.lost = lost ?? 'durable'));
  return { next, outcome };
}

describe('Journal', () => {
  it('holds output until the commit is synced, and syncs a whole tick of commits at once (group commit)', async () => {
    const d = dir();
    let { j, s } = await opened(d, 'always');
    expect(j.pending()).toBeUndefined();
    for (let i = 0; i < 50; i++) {
      const next = write(s, `/g/${i}`, `${i}`);
      j.record(s, next);
      s = next;
    }
    expect(j.pending()).toBe(s.generation);
    let released = false;
    j.after(s.generation, () => (released = true));
    expect(released).toBe(false);
    await j.idle();
    expect(released).toBe(true);
    expect(j.durable).toBe(s.generation);
    expect(j.pending()).toBeUndefined();
    expect(j.stats).toMatchObject({ records: 50, batches: 1, syncs: 1 });
    await j.close(s);
    expect(recover(d).store).toEqual(s);
  });

  it('never holds output with --sync none', async () => {
    const { j, s } = await opened(dir(), 'none');
    const next = write(s, '/n', 'x');
    j.record(s, next);
    expect(j.pending()).toBeUndefined();
    await j.close(next);
  });

  it('calls beforeWrite once per batch, before any of it is in the log (history goes to disk first)', async () => {
    const d = dir();
    let { j, s } = await opened(d, 'always');
    const logBytes = (): number => readdirSync(d).filter((n) => n.startsWith('wal-')).reduce((n, f) => n + statSync(join(d, f)).size, 0);
    // At each call: the log's bytes then, and the generation the store was at.
    const calls: [number, number][] = [];
    j.beforeWrite(() => calls.push([logBytes(), j.durable]));
    for (let batch = 0; batch < 3; batch++) {
      for (let i = 0; i < 5; i++) {
        const next = write(s, `/b/${i}`, `${batch}`);
        j.record(s, next);
        s = next;
      }
      const before = logBytes();
      await j.idle();
      // Called once for this batch, when nothing of it was written yet.
      expect(calls).toHaveLength(batch + 1);
      expect(calls[batch]![0]).toBe(before);
      expect(calls[batch]![1]).toBe(s.generation - 5);
      expect(logBytes()).toBeGreaterThan(before);
    }
    await j.close(s);
  });

  it('snapshots every N records, rotating the log and dropping segments older than the previous snapshot', async () => {
    const d = dir();
    let { j, s } = await opened(d, 'batch', 10);
    for (let i = 0; i < 35; i++) {
      const next = write(s, `/p/${i % 7}`, `${i}`);
      j.record(s, next);
      s = next;
      await j.idle(); // one batch per commit, so that snapshots fall between them
    }
    expect(j.stats.snapshots).toBe(3);
    const files = readdirSync(d).sort();
    expect(files).toContain('snapshot');
    expect(files).toContain('snapshot.prev');
    // Segments before the previous snapshot (generation 20) are gone; the newer ones stay.
    expect(files.filter((f) => f.startsWith('wal-'))).toEqual(['wal-0000000000000021', 'wal-0000000000000031']);
    const r = recover(d);
    expect(r.snapshot).toBe('snapshot');
    expect(r.store).toEqual(s);
    await j.close(s);
  });

  it('writes every byte of a batch the file system takes in short writes (as a nearly full one does)', async () => {
    const d = dir();
    const faults = new FaultySegments();
    faults.short = true;
    let { j, s } = await opened(d, 'always', undefined, { openSegment: faults.open });
    const outcomes = [];
    for (let i = 0; i < 50; i++) {
      const c = commitOn(j, s, `/short/${i}`, 'v'.repeat(1000));
      outcomes.push(c.outcome);
      s = c.next;
    }
    await j.idle();
    expect(j.stats.batches).toBe(1);
    expect(outcomes.every((o) => o.lost === 'durable')).toBe(true);
    await j.close(s);
    expectOnDisk(d, s);
  });

  it('never acknowledges a batch the disk refuses: the file is cut back, the store rolled back, output released as ENOSPC', async () => {
    const d = dir();
    const faults = new FaultySegments();
    let { j, s } = await opened(d, 'always', undefined, { openSegment: faults.open });
    let rolledBack: Store | undefined;
    j.onRollBack((durable) => (rolledBack = durable));
    const first = commitOn(j, s, '/kept', 'a');
    await j.idle();
    expect(first.outcome.lost).toBe('durable');
    const durable = first.next;

    // Two commits in one batch, the second built on the first; the disk fills in the middle.
    faults.noSpace = true;
    const a = commitOn(j, durable, '/lost/1', 'x'.repeat(3000));
    const b = commitOn(j, a.next, '/lost/2', 'y');
    await j.idle();
    expect(a.outcome.lost).toBe('ENOSPC');
    expect(b.outcome.lost).toBe('ENOSPC');
    expect(rolledBack).toBe(durable);
    expect(j.durable).toBe(durable.generation);
    expect(j.pending()).toBeUndefined();
    expect(j.stats.lostBatches).toBe(1);
    // What is on disk is exactly the durable store: no torn tail, nothing unacknowledged.
    expectOnDisk(d, durable);

    // Until the backoff is over, writes are refused before they change anything.
    expect(() => j.admit()).toThrow(XsError);
    try {
      j.admit();
    } catch (e) {
      expect((e as XsError).code).toBe('ENOSPC');
    }
    // A retry that fails again keeps refusing; one that succeeds ends the outage.
    await new Promise((r) => setTimeout(r, 60));
    expect(() => j.admit()).not.toThrow();
    const again = commitOn(j, durable, '/lost/3', 'z');
    await j.idle();
    expect(again.outcome.lost).toBe('ENOSPC');
    expect(() => j.admit()).toThrow(XsError);

    faults.noSpace = false;
    await new Promise((r) => setTimeout(r, 120));
    expect(() => j.admit()).not.toThrow();
    const resumed = commitOn(j, durable, '/after', 'ok'); // the generation after the durable one, again
    await j.idle();
    expect(resumed.outcome.lost).toBe('durable');
    expect(() => j.admit()).not.toThrow();
    s = resumed.next;
    await j.close(s);
    expectOnDisk(d, s);
  });

  it('treats a failed fdatasync as a lost batch (EIO): it may not be on disk, so it is not acknowledged', async () => {
    const d = dir();
    const faults = new FaultySegments();
    const { j, s } = await opened(d, 'always', undefined, { openSegment: faults.open });
    faults.syncFails = true;
    const c = commitOn(j, s, '/x', '1');
    await j.idle();
    expect(c.outcome.lost).toBe('EIO');
    faults.syncFails = false;
    await j.close(s);
    expect(recover(d).store).toEqual(s);
  });

  it('compacts once the log since the last snapshot outgrows the snapshot: the directory stays within 5 x max(store, --compact-after)', async () => {
    const d = dir();
    const compactAfter = 16 * 1024;
    let { j, s } = await opened(d, 'always', undefined, { compactAfter });
    for (let i = 0; i < 50; i++) s = write(s, `/other/${i}`, 'v'.repeat(100)); // a store of some size
    let max = 0;
    for (let i = 0; i < 400; i++) {
      const next = write(s, '/hot', String(i).repeat(2000 / String(i).length));
      j.record(s, next);
      s = next;
      await j.idle();
      max = Math.max(max, dirBytes(d));
    }
    expect(j.stats.snapshots).toBeGreaterThan(10);
    const snapshot = statSync(join(d, 'snapshot')).size;
    // 400 records of 2 KiB: 800 KiB of log without compaction.
    expect(max).toBeLessThanOrEqual(5 * Math.max(snapshot, compactAfter) + 8 * 1024);
    await j.close(s);
    expect(recover(d).store).toEqual(s);
  });

  it('recovers a log written by an older build (JSON records), then goes on in binary records beside it', async () => {
    const d = dir();
    const versions = requestVersions();
    const older = versions.at(-1)!;
    writeFileSync(join(d, segmentName(1)), jsonSegment());
    const r = recover(d);
    expect(r).toMatchObject({ snapshot: 'none', replayed: REQUESTS.length, warnings: [] });
    expect(r.store).toEqual(older);
    // This build's records go to a segment of their own; a crash later, both segments replay.
    const j = await Journal.open({ dir: d, sync: 'always', log }, r.store);
    let s = r.store;
    for (let i = 0; i < 5; i++) s = commitOn(j, s, `/local/domain/7/k${i}`, `v${i}`).next;
    await j.idle();
    // This build's segment: the fence, then binary records.
    const mine = readFileSync(join(d, segmentName(older.generation + 1)));
    expect(mine.subarray(0, FENCE_RECORD.length).equals(FENCE_RECORD)).toBe(true);
    expect(mine[FENCE_RECORD.length + 8]).toBe(2);
    expectOnDisk(d, s);
    await j.close(s);

    // A torn JSON record at the end of an older build's log is cut off as before.
    const d2 = dir();
    const seg = jsonSegment();
    writeFileSync(join(d2, segmentName(1)), seg.subarray(0, seg.length - 5));
    const torn = recover(d2);
    expect(torn.replayed).toBe(REQUESTS.length - 1);
    expect(torn.store).toEqual(versions.at(-2));
    expect(torn.warnings.join()).toMatch(/torn or corrupt record at byte \d+ .*dropped the tail \(\d+ bytes\)/);
    expect(statSync(join(d2, segmentName(1))).size).toBe(seg.length - jsonRecords().at(-1)!.length - 8);
  });

  it('starts each segment with a fence that older builds refuse (a JSON record of the last generation), and skips it', async () => {
    const d = dir();
    let { j, s } = await opened(d, 'always', 3);
    for (let i = 0; i < 7; i++) {
      s = commitOn(j, s, `/f/${i}`, `${i}`).next;
      await j.idle(); // one batch each: snapshots (every 3 records) rotate the log between them
    }
    const segs = readdirSync(d).filter((f) => f.startsWith('wal-'));
    expect(segs.length).toBeGreaterThan(1);
    for (const f of segs) {
      const bytes = readFileSync(join(d, f));
      if (bytes.length === 0) continue;
      expect(bytes.subarray(0, FENCE_RECORD.length).equals(FENCE_RECORD), f).toBe(true);
      // As a build before the binary records reads it (its JSON rules): a generation nothing
      // follows, so its replay stops with "records are missing" instead of cutting the log.
      expect(decodeDelta(bytes, 8, FENCE_RECORD.length)).toEqual({ generation: Number.MAX_SAFE_INTEGER, ops: [] });
    }
    await j.close(s);
    expectOnDisk(d, s);

    // Only the fence written before a crash (the first record torn and cut): the segment is taken up again.
    const d2 = dir();
    ({ j, s } = await opened(d2, 'always'));
    const base = s;
    s = commitOn(j, s, '/g', '1').next;
    await j.idle();
    const seg = join(d2, segmentName(base.generation + 1));
    writeFileSync(seg, readFileSync(seg).subarray(0, FENCE_RECORD.length));
    expectOnDisk(d2, base);
    ({ j, s } = await opened(d2, 'always'));
    s = commitOn(j, s, '/g', '2').next;
    await j.idle();
    expect(readFileSync(seg).subarray(FENCE_RECORD.length).indexOf(FENCE_RECORD)).toBe(-1); // one fence
    expectOnDisk(d2, s);
    await j.close(s);
  });
});

/** What the directory holds is exactly `s`, with no torn tail to drop. */
function expectOnDisk(d: string, s: Store): void {
  const r = recover(d);
  expect(r.store).toEqual(s);
  expect(r.warnings).toEqual([]);
}

function dirBytes(d: string): number {
  return readdirSync(d).reduce((n, f) => n + statSync(join(d, f)).size, 0);
}
