/**
 * A restart reads history back a step per turn of the event loop (server/daemon.ts
 * `readHistoryBack`; issue 14), so that its clients are answered between steps. A step is
 * bounded by records (4,096) and by bytes (a MiB read, checked or copied): a guest's records can
 * be large (a transaction of 1,024 writes of 2 KiB values is one record of ~4 MiB with its old
 * values), and a step bounded by count alone would then read, check and copy up to a whole
 * segment (16 MiB) or window (64 MiB) at once, every client waiting. This fills a window with
 * large records and counts the steps.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { History, createStore, encodeRecord, type HistoryRecord, type Version } from '../../store/index.js';
import { HistoryLog } from '../../server/persistence/history-log.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const KiB = 1024;
const RECORDS = 24;
/** One change of a 512 KiB value over another: ~1 MiB a record. */
const VALUE = 512 * KiB;

function bigRecord(generation: number): HistoryRecord {
  const old = String.fromCharCode(97 + (generation % 26)).repeat(VALUE);
  const value = String.fromCharCode(97 + ((generation + 1) % 26)).repeat(VALUE);
  return {
    generation,
    time: 1_700_000_000_000 + generation,
    who: { domid: 7, connection: 'domain', tx: 3 },
    requests: [{ op: 'write', path: '/local/domain/7/big' }],
    moreRequests: false,
    changes: [{ path: '/local/domain/7/big', kind: 'changed', old, new: value }],
    bytes: 0,
  };
}

/** Runs `steps` to its end: how many times it stopped, and what it gave. */
function drain<T>(steps: Generator<void, T>): { stops: number; value: T } {
  let stops = 0;
  for (;;) {
    const r = steps.next();
    if (r.done) return { stops, value: r.value };
    stops++;
  }
}

describe('a restart reading a guest\'s large history records back (issue 14)', () => {
  it('stops at least once a MiB reading, checking and copying them, and reads them exactly', async () => {
    const d = mkdtempSync(join(tmpdir(), 'nxs-readback-'));
    dirs.push(d);
    const sink = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
    const records = Array.from({ length: RECORDS }, (_, i) => encodeRecord(bigRecord(i + 1)));
    for (const r of records) sink.append(r);
    sink.flush();
    sink.close();
    const start = createStore();
    const live: Version = { root: start.root, special: start.special, generation: RECORDS };

    // ~24 MiB on disk: read a MiB at a time, then checked a MiB at a time, whatever the count of records.
    const read = drain(new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log).loadSteps(live, 200_000));
    expect(read.value.records).toHaveLength(RECORDS);
    read.value.records.forEach((b, i) => expect(b.equals(records[i]!)).toBe(true));
    expect(read.stops).toBeGreaterThanOrEqual(2 * RECORDS);

    // Copied into the window a MiB at a time, and kept whole.
    const h = new History(live, {}, 0);
    const copied = drain(h.restoreSteps(read.value.records, 0));
    expect(copied.stops).toBeGreaterThanOrEqual(RECORDS - 1);
    expect(h.size).toBe(RECORDS);
    expect(h.all().map((r) => r.changes[0]!.new!.length)).toEqual(records.map(() => VALUE));
  });
});
