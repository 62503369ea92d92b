import { mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, DOM0, History, advance, createStore, decodeRecord, encodeRecord, execute, type HistoryRecord, type Store } from '../../store/index.js';
import { HistoryLog } from './history-log.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'nxs-hlog-'));
  dirs.push(d);
  return d;
}

/** Commits `n` writes after `from`, recording each: the records and the versions. */
function commits(from: Store, n: number, value = 'v'): { records: HistoryRecord[]; versions: Store[] } {
  const h = new History(from, {}, 0);
  const versions = [from];
  const records: HistoryRecord[] = [];
  let live = from;
  for (let i = 0; i < n; i++) {
    const next = advance(execute(live, DOM0, DEFAULT_LIMITS, { op: 'write', path: `/k${i % 3}`, value: `${value}${i}` }).store, live);
    h.record(live, next, { time: 1000 + next.generation, who: { domid: 0, connection: 'socket', id: 2, tx: 5 }, requests: [{ op: 'write', path: `/k${i % 3}` }] });
    records.push(h.recordAt(next.generation)!);
    versions.push((live = next));
  }
  return { records, versions };
}

const flushed = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('HistoryLog', () => {
  it('encodes records exactly', () => {
    const { records } = commits(createStore(), 3);
    for (const r of records) expect(decodeRecord(encodeRecord(r))).toEqual(r);
    expect(() => decodeRecord(Buffer.from('{"g":1}'))).toThrow(/corrupt history record/);
  });

  it('loads the records that end at the store, dropping rolled-back and unsynced ones', async () => {
    const d = dir();
    const { records, versions } = commits(createStore(), 6);
    const a = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
    for (const r of records.slice(0, 5)) a.append(encodeRecord(r));
    // A rollback to generation 3, then generations 4.. given again (another value).
    const again = commits(versions[3]!, 3, 'w');
    for (const r of again.records) a.append(encodeRecord(r));
    await flushed();
    a.close();
    const b = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
    const live = again.versions[2]!; // generation 5 of the second branch
    const got = b.load(live, 100);
    // Each record as its bytes, as history keeps them.
    expect(got.records.map((r) => decodeRecord(r).generation)).toEqual([1, 2, 3, 4, 5]);
    expect(got.records.slice(3).map((r) => decodeRecord(r))).toEqual(again.records.slice(0, 2));
    // The history rebuilt from them answers the first branch's generation 2 exactly.
    const h = new History(live, {}, 0);
    h.restore(got.records, got.floorTime);
    expect(h.at(2).root.children.get('k1')!.value).toBe('v1');
    // At most `max`, and the floor's time is the record before them.
    const some = b.load(live, 2);
    expect(some.records.map((r) => decodeRecord(r).generation)).toEqual([4, 5]);
    expect(some.floorTime).toBe(1003);
    b.close();
  });

  it('keeps a record whose head reads and body does not, for queries to refuse (EIO); cuts at one whose head does not', async () => {
    const d = dir();
    const { records, versions } = commits(createStore(), 4);
    const a = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
    a.append(encodeRecord(records[0]!));
    // Checksummed (a build's bug, not the disk): generation 2's changes cut short.
    const bad = encodeRecord(records[1]!);
    a.append(bad.subarray(0, bad.length - 3));
    a.append(encodeRecord(records[2]!));
    a.append(encodeRecord(records[3]!));
    await flushed();
    a.close();
    const got = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log).load(versions[4]!, 100);
    expect(got.records).toHaveLength(4);
    const h = new History(versions[4]!, {}, 0);
    h.restore(got.records, got.floorTime);
    // Moments after it are rebuilt; from it back, the record is refused, not misread.
    expect(h.at(2).root.children.get('k1')!.value).toBe('v1');
    expect(() => h.at(1)).toThrow(/EIO|corrupt history record/);
    expect(() => h.recordAt(2)).toThrow(/corrupt history record/);

    // A head that does not read: that record and the rest of its segment are not history.
    const e = dir();
    const b = new HistoryLog(e, { ageMs: 1e12, bytes: 1e9 }, log);
    for (const r of records.slice(0, 2)) b.append(encodeRecord(r));
    b.append(Buffer.from('{"g":3}'));
    b.append(encodeRecord(records[3]!));
    await flushed();
    b.close();
    expect(new HistoryLog(e, { ageMs: 1e12, bytes: 1e9 }, log).load(versions[4]!, 100).records).toEqual([]);
    expect(new HistoryLog(e, { ageMs: 1e12, bytes: 1e9 }, log).load(versions[2]!, 100).records.map((r) => decodeRecord(r).generation)).toEqual([1, 2]);
  });

  it('starts afresh when the records end before the store (a lost tail)', async () => {
    const d = dir();
    const { records, versions } = commits(createStore(), 4);
    const a = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
    for (const r of records.slice(0, 2)) a.append(encodeRecord(r));
    await flushed();
    a.close();
    expect(new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log).load(versions[4]!, 100).records).toEqual([]);
  });

  it('removes segments older than the retention age, never the current one', async () => {
    const d = dir();
    let now = 10_000_000;
    const { records } = commits(createStore(), 3);
    for (let i = 0; i < 3; i++) {
      const l = new HistoryLog(d, { ageMs: 60_000, bytes: 1e9 }, log, () => now);
      l.append(encodeRecord(records[i]!));
      await flushed();
      l.close();
    }
    const names = readdirSync(d).sort();
    expect(names).toHaveLength(3);
    // The first two were last written two hours ago, the third a second ago.
    utimesSync(join(d, names[0]!), (now - 7_200_000) / 1000, (now - 7_200_000) / 1000);
    utimesSync(join(d, names[1]!), (now - 7_200_000) / 1000, (now - 7_200_000) / 1000);
    utimesSync(join(d, names[2]!), (now - 1000) / 1000, (now - 1000) / 1000);
    const l = new HistoryLog(d, { ageMs: 60_000, bytes: 1e9 }, log, () => now);
    l.prune();
    expect(readdirSync(d).sort()).toEqual([names[2], 'history-0000000000000004']);
    now += 3_600_000; // an hour later: the third is old too, the current one stays
    l.prune();
    expect(readdirSync(d)).toEqual(['history-0000000000000004']);
    l.close();
  });

  it('drops earlier segments that hold no record, keeping those that do and the current one', async () => {
    const d = dir();
    const { records, versions } = commits(createStore(), 1);
    // Three starts that committed nothing, one that did, then two more that did not.
    for (let i = 0; i < 6; i++) {
      const l = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
      if (i === 3) l.append(encodeRecord(records[0]!));
      await flushed();
      l.close();
    }
    expect(readdirSync(d)).toHaveLength(6);
    const l = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
    l.dropEmpty();
    expect(readdirSync(d).sort()).toEqual(['history-0000000000000004', 'history-0000000000000007']);
    expect(l.load(versions[1]!, 10).records.map((r) => decodeRecord(r))).toEqual(records);
    l.close();
  });
});
