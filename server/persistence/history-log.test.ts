import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
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

describe('HistoryLog', () => {
  it('encodes records exactly', () => {
    const { records } = commits(createStore(), 3);
    for (const r of records) expect(decodeRecord(encodeRecord(r))).toEqual(r);
    expect(() => decodeRecord(Buffer.from('{"g":1}'))).toThrow(/corrupt history record/);
  });

  it('loads the records that end at the store, dropping rolled-back and unsynced ones', () => {
    const d = dir();
    const { records, versions } = commits(createStore(), 6);
    const a = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
    for (const r of records.slice(0, 5)) a.append(encodeRecord(r));
    // A rollback to generation 3, then generations 4.. given again (another value).
    const again = commits(versions[3]!, 3, 'w');
    for (const r of again.records) a.append(encodeRecord(r));
    a.flush();
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

  it('keeps a record whose head reads and body does not, for queries to refuse (EIO); cuts at one whose head does not', () => {
    const d = dir();
    const { records, versions } = commits(createStore(), 4);
    const a = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
    a.append(encodeRecord(records[0]!));
    // Checksummed (a build's bug, not the disk): generation 2's changes cut short.
    const bad = encodeRecord(records[1]!);
    a.append(bad.subarray(0, bad.length - 3));
    a.append(encodeRecord(records[2]!));
    a.append(encodeRecord(records[3]!));
    a.flush();
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
    b.flush();
    b.close();
    expect(new HistoryLog(e, { ageMs: 1e12, bytes: 1e9 }, log).load(versions[4]!, 100).records).toEqual([]);
    expect(new HistoryLog(e, { ageMs: 1e12, bytes: 1e9 }, log).load(versions[2]!, 100).records.map((r) => decodeRecord(r).generation)).toEqual([1, 2]);
  });

  it('starts afresh when the records end before the store (a lost tail)', () => {
    const d = dir();
    const { records, versions } = commits(createStore(), 4);
    const a = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
    for (const r of records.slice(0, 2)) a.append(encodeRecord(r));
    a.flush();
    a.close();
    expect(new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log).load(versions[4]!, 100).records).toEqual([]);
  });

  it('removes segments older than the retention age, never the current one', () => {
    const d = dir();
    let now = 10_000_000;
    const { records } = commits(createStore(), 3);
    for (let i = 0; i < 3; i++) {
      const l = new HistoryLog(d, { ageMs: 60_000, bytes: 1e9 }, log, () => now);
      l.append(encodeRecord(records[i]!));
      l.flush();
      l.close();
    }
    const names = readdirSync(d).sort();
    expect(names).toHaveLength(3);
    // The first two were last written two hours ago, the third a second ago.
    utimesSync(join(d, names[0]!), (now - 7_200_000) / 1000, (now - 7_200_000) / 1000);
    utimesSync(join(d, names[1]!), (now - 7_200_000) / 1000, (now - 7_200_000) / 1000);
    utimesSync(join(d, names[2]!), (now - 1000) / 1000, (now - 1000) / 1000);
    const l = new HistoryLog(d, { ageMs: 60_000, bytes: 1e9 }, log, () => now);
    l.append(encodeRecord(records[0]!)); // our own segment is opened by our first record
    l.flush();
    l.prune();
    expect(readdirSync(d).sort()).toEqual([names[2], 'history-0000000000000004']);
    now += 3_600_000; // an hour later: the third is old too, the current one stays
    l.prune();
    expect(readdirSync(d)).toEqual(['history-0000000000000004']);
    l.close();
  });

  it('reads back a step at a time what load reads at once, and takes a segment removed meanwhile as holding nothing', () => {
    const d = dir();
    const { records, versions } = commits(createStore(), 30);
    // Three starts' segments of ten records each.
    for (let s = 0; s < 3; s++) {
      const l = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
      for (let i = s * 10; i < s * 10 + 10; i++) l.append(encodeRecord(records[i]!));
      l.flush();
      l.close();
    }
    const live = versions[30]!;
    const l = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
    const all = l.load(live, 100);
    expect(all.records.map((b) => decodeRecord(b))).toEqual(records);
    const steps = l.loadSteps(live, 100, 4);
    let stops = 0;
    let r = steps.next();
    for (; !r.done; r = steps.next()) stops++;
    // Three files, 30 records read and 30 walked back, 30 views made: a stop every 4 of each.
    expect(stops).toBeGreaterThanOrEqual(3 + 3 * 7);
    expect(r.value).toEqual(all);
    // The oldest segment removed after the first file was read (the newest: reading goes back in time).
    const gone = l.loadSteps(live, 100, 4);
    gone.next();
    gone.next();
    rmSync(join(d, readdirSync(d).sort()[0]!));
    let g = gone.next();
    while (!g.done) g = gone.next();
    expect(g.value.records.map((b) => decodeRecord(b))).toEqual(records.slice(10));
    expect(g.value).toEqual(l.load(live, 100));
  });

  it("leaves a live update's parent its open segment, however old, and prunes the rest as usual", () => {
    const d = dir();
    const now = 1_700_000_000_000;
    const { records } = commits(createStore(), 3);
    // Two earlier runs' segments, then the parent's, which it still has open: all last written a day ago.
    const parent = new HistoryLog(d, { ageMs: 60_000, bytes: 1e9 }, log, () => now);
    for (let i = 0; i < 3; i++) {
      const l = i < 2 ? new HistoryLog(d, { ageMs: 60_000, bytes: 1e9 }, log, () => now) : parent;
      l.append(encodeRecord(records[i]!));
      l.flush();
      if (i < 2) l.close();
    }
    const names = readdirSync(d).sort();
    for (const n of names) utimesSync(join(d, n), (now - 86_400_000) / 1000, (now - 86_400_000) / 1000);
    const next = new HistoryLog(d, { ageMs: 60_000, bytes: 1e9 }, log, () => now);
    next.prune(true);
    expect(readdirSync(d).sort()).toEqual([names[2]]);
    // The update gave up: the parent writes on, into a file that is still there.
    const before = readFileSync(join(d, names[2]!)).length;
    parent.append(encodeRecord(records[0]!));
    parent.flush();
    parent.close();
    expect(readFileSync(join(d, names[2]!)).length).toBeGreaterThan(before);
    // A plain start (no parent) prunes it as the age says.
    utimesSync(join(d, names[2]!), (now - 86_400_000) / 1000, (now - 86_400_000) / 1000);
    new HistoryLog(d, { ageMs: 60_000, bytes: 1e9 }, log, () => now).prune();
    expect(readdirSync(d)).toEqual([]);
  });

  it('opens no segment for a run that records nothing, and drops the empty ones earlier builds left', () => {
    const d = dir();
    const { records, versions } = commits(createStore(), 1);
    // Three starts that committed nothing, one that did, then two more that did not.
    for (let i = 0; i < 6; i++) {
      const l = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
      if (i === 3) l.append(encodeRecord(records[0]!));
      l.flush();
      l.close();
    }
    expect(readdirSync(d)).toEqual(['history-0000000000000001']);
    // A build before this one opened a segment at every start.
    for (const n of [2, 3]) writeFileSync(join(d, `history-000000000000000${n}`), '');
    const l = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
    l.dropEmpty();
    expect(readdirSync(d)).toEqual(['history-0000000000000001']);
    expect(l.load(versions[1]!, 10).records.map((r) => decodeRecord(r))).toEqual(records);
    l.close();
  });

  describe('read ahead (a live update: prepare during the pre-copy, since in the pause)', () => {
    /** A log of `n` records written by a process that goes on writing (`a`). */
    function running(n: number, value = 'v') {
      const d = dir();
      const { records, versions } = commits(createStore(), n, value);
      const a = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
      return { d, records, versions, a };
    }
    const gens = (records: Buffer[]) => records.map((r) => decodeRecord(r).generation);
    /** What the next process holds after the pause: the prepared records, then those since; undefined when they do not join. */
    const joined = (b: HistoryLog, prepared: { records: Buffer[] } | undefined, live: Store): Buffer[] | undefined => {
      const tail = b.since(live);
      return prepared === undefined || tail === undefined ? undefined : [...prepared.records, ...tail];
    };
    const full = (d: string, live: Store) => new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log).load(live, 100).records;

    it('reads only what was written since, and holds what a full load would', () => {
      const { d, records, versions, a } = running(8);
      for (const r of records.slice(0, 5)) a.append(encodeRecord(r));
      a.flush();
      const b = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
      const prepared = b.prepare(versions[5]!, 100);
      expect(gens(prepared!.records)).toEqual([1, 2, 3, 4, 5]);
      for (const r of records.slice(5)) a.append(encodeRecord(r));
      a.flush();
      a.close();
      const whole = full(d, versions[8]!);
      // The prepared part of the segment spoilt: a full load finds nothing, the pause's read goes past it.
      const [seg] = readdirSync(d);
      const bytes = readFileSync(join(d, seg!));
      bytes[12] = bytes[12]! ^ 0xff;
      writeFileSync(join(d, seg!), bytes);
      expect(full(d, versions[8]!)).toEqual([]);
      const got = joined(b, prepared, versions[8]!);
      expect(gens(got!)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(got).toEqual(whole);
      // Once per prepare.
      expect(b.since(versions[8]!)).toBeUndefined();
      // Nothing written since: nothing to add.
      bytes[12] = bytes[12]! ^ 0xff;
      writeFileSync(join(d, seg!), bytes);
      const c = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
      c.prepare(versions[8]!, 100);
      expect(c.since(versions[8]!)).toEqual([]);
      // Records that do not reach the pre-copied version: nothing prepared, nothing since.
      const e = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
      const later = commits(versions[8]!, 1).versions[1]!;
      expect(e.prepare(later, 100)).toBeUndefined();
      expect(e.since(later)).toBeUndefined();
    });

    it('takes generations given again after a rollback, and does not join when one goes below the prepared version', () => {
      const { d, records, versions, a } = running(6);
      for (const r of records.slice(0, 4)) a.append(encodeRecord(r));
      a.flush();
      const b = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
      const prepared = b.prepare(versions[3]!, 100);
      // Generation 4 was already written before the prepare; 5 and 6 follow, then a rollback to 4 and 5, 6 again.
      for (const r of records.slice(4)) a.append(encodeRecord(r));
      const again = commits(versions[4]!, 2, 'w');
      for (const r of again.records) a.append(encodeRecord(r));
      a.flush();
      const got = joined(b, prepared, again.versions[2]!);
      expect(got).toEqual(full(d, again.versions[2]!));
      expect(got!.slice(4).map((r) => decodeRecord(r))).toEqual(again.records);

      // A rollback to generation 2, below the prepared 6: the pause must read everything again.
      const c = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
      const high = c.prepare(again.versions[2]!, 100);
      const low = commits(versions[2]!, 2, 'x');
      for (const r of low.records) a.append(encodeRecord(r));
      a.flush();
      a.close();
      expect(joined(c, high, low.versions[2]!)).toBeUndefined();
      expect(gens(full(d, low.versions[2]!))).toEqual([1, 2, 3, 4]);
    });

    it('follows the other process into the segments it opens meanwhile, and never writes into one of them', () => {
      // 64 KiB segments (the smallest; nothing pruned below 512 KiB): records of ~20 KB values rotate every fourth.
      const d = dir();
      const { records, versions } = commits(createStore(), 12, 'x'.repeat(20_000));
      const a = new HistoryLog(d, { ageMs: 1e12, bytes: 512 * 1024 }, log);
      for (const r of records.slice(0, 3)) a.append(encodeRecord(r));
      a.flush();
      const b = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
      const prepared = b.prepare(versions[3]!, 100);
      for (const r of records.slice(3, 10)) {
        a.append(encodeRecord(r));
        a.flush();
      }
      a.close();
      expect(readdirSync(d).length).toBeGreaterThan(1);
      const got = joined(b, prepared, versions[10]!);
      expect(gens(got!)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(got).toEqual(full(d, versions[10]!));
      // b goes on in a segment of its own, after all of a's.
      const before = readdirSync(d).sort();
      b.append(encodeRecord(records[10]!));
      b.flush();
      b.close();
      const now = readdirSync(d).sort();
      expect(now.slice(0, before.length)).toEqual(before);
      expect(now).toHaveLength(before.length + 1);
      expect(gens(full(d, versions[11]!))).toContain(11);
    });
  });
});
