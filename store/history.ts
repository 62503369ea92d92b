import { XsError } from '../protocol/index.js';
import { recordOf, undo, type HistoryRecord, type RecordMeta, type Version } from './history-record.js';

/**
 * The history window: one record per commit that changed something, oldest first, bounded by
 * count and bytes; the versions (roots) of the most recent `roots` commits, for O(path) reads of
 * the recent past. An older version is rebuilt by undoing records from the oldest kept root
 * (records carry old values). Versions share every subtree they did not change, so a kept root
 * costs the nodes on its commit's paths, not a tree. Pure: the daemon passes the time.
 */
export interface HistoryOptions {
  /** Records kept at most. */
  readonly records: number;
  /** Bytes of records kept at most (history-record.ts's estimate). */
  readonly bytes: number;
  /** Versions kept whole, newest first (the rest are rebuilt by undo). */
  readonly roots?: number;
}

/**
 * Defaults, assuming a busy host makes 50 commits a second (a few VMs starting and stopping a
 * minute, each a few hundred writes, and guests updating their keys): an hour is 180 000 commits,
 * of about 380 bytes each by the window's estimate (a write of a short value, as
 * bench/history-bench.ts measured it): 200 000 records need 76 MiB, so the byte bound is 96 MiB.
 */
export const DEFAULT_HISTORY: Required<HistoryOptions> = Object.freeze({ records: 200_000, bytes: 96 * 1024 * 1024, roots: 256 });

/** The oldest moment history can answer: the version before its oldest record. */
export interface Oldest {
  readonly generation: number;
  /** When that version was made, if known (not for the version history started from). */
  readonly time: number | undefined;
}

export class History {
  readonly options: Required<HistoryOptions>;
  /** records[head..] are live; the array is compacted when the dead prefix grows. */
  private records: HistoryRecord[] = [];
  private head = 0;
  private totalBytes = 0;
  /** The version each of the last `roots` records made, by generation; and the floor's. */
  private readonly roots = new Map<number, Version>();
  /** The oldest version answerable: the one before records[head]. */
  private floor: Oldest;
  private live: Version;

  constructor(initial: Version, options: Partial<HistoryOptions> = {}, time?: number) {
    const o = { ...DEFAULT_HISTORY, ...options };
    if (!(o.records >= 1) || !(o.bytes >= 1) || !(o.roots >= 1)) throw new RangeError('history bounds must be at least 1');
    this.options = o;
    this.live = initial;
    this.floor = { generation: initial.generation, time };
    this.roots.set(initial.generation, initial);
  }

  /** How many records are kept, and their bytes (the estimate bounded by `options.bytes`). */
  get size(): number {
    return this.records.length - this.head;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  oldest(): Oldest {
    return this.floor;
  }

  latest(): Version {
    return this.live;
  }

  /** The records kept, oldest first (a view: do not keep it across a `record`). */
  all(): readonly HistoryRecord[] {
    if (this.head > 0) this.compact();
    return this.records;
  }

  /**
   * `record(before, after, meta, hints?)` adds the record of the commit `before` -> `after` (which
   * must follow the latest version: history has every commit, or it could not undo) and returns
   * it. `before === after` (nothing changed) records nothing.
   */
  record(before: Version, after: Version, meta: RecordMeta, hints?: readonly string[]): HistoryRecord | undefined {
    if (before === after) return undefined;
    if (before.generation !== this.live.generation || after.generation !== before.generation + 1) {
      throw new RangeError(`history at ${this.live.generation} given ${before.generation} -> ${after.generation}`);
    }
    const last = this.records.length > this.head ? this.records[this.records.length - 1]! : undefined;
    // The wall clock may step back (NTP); records stay in time order so that time queries can search.
    const time = last !== undefined && meta.time < last.time ? last.time : meta.time;
    const rec = recordOf(before, after, time === meta.time ? meta : { ...meta, time }, hints);
    this.append(rec, after);
    return rec;
  }

  /**
   * `adopt(record, after)` appends a record made elsewhere (read back from disk) with the version
   * it made. Same rules as `record`.
   */
  adopt(rec: HistoryRecord, after: Version): void {
    if (rec.generation !== this.live.generation + 1 || after.generation !== rec.generation) {
      throw new RangeError(`history at ${this.live.generation} given record ${rec.generation}`);
    }
    this.append(rec, after);
  }

  /**
   * `restore(records, floorTime?)`: records read back from disk, oldest first, consecutive and
   * ending at the latest version (the store history started from). Only the latest root is kept;
   * older versions are rebuilt by undo. Bounds apply as to records made here.
   */
  restore(records: readonly HistoryRecord[], floorTime?: number): void {
    if (this.size > 0) throw new RangeError('restore into a history that has records');
    if (records.length === 0) return;
    const first = records[0]!.generation;
    records.forEach((r, i) => {
      if (r.generation !== first + i) throw new RangeError(`history records jump to ${r.generation} after ${first + i - 1}`);
    });
    if (first + records.length - 1 !== this.live.generation) {
      throw new RangeError(`history records end at ${first + records.length - 1}, not at ${this.live.generation}`);
    }
    this.roots.clear();
    this.roots.set(this.live.generation, this.live);
    this.records = records.slice();
    this.head = 0;
    this.totalBytes = records.reduce((n, r) => n + r.bytes, 0);
    this.floor = { generation: first - 1, time: floorTime };
    while (this.size > this.options.records || (this.totalBytes > this.options.bytes && this.size > 1)) this.evict();
  }

  private append(rec: HistoryRecord, after: Version): void {
    this.records.push(rec);
    this.totalBytes += rec.bytes;
    this.live = after;
    this.roots.set(after.generation, after);
    this.roots.delete(after.generation - this.options.roots);
    while (this.size > this.options.records || (this.totalBytes > this.options.bytes && this.size > 1)) this.evict();
  }

  private evict(): void {
    const rec = this.records[this.head]!;
    this.records[this.head] = undefined as unknown as HistoryRecord;
    this.head++;
    this.totalBytes -= rec.bytes;
    this.roots.delete(rec.generation - 1);
    this.floor = { generation: rec.generation, time: rec.time };
    if (this.head > 1024 && this.head * 2 > this.records.length) this.compact();
  }

  private compact(): void {
    this.records = this.records.slice(this.head);
    this.head = 0;
  }

  /**
   * `rewind(durable)` forgets every record after `durable`: the live store went back to it (a
   * log write failed, server/persistence/journal.ts) and its generations will be given again.
   */
  rewind(durable: Version): void {
    while (this.size > 0 && this.records[this.records.length - 1]!.generation > durable.generation) {
      const rec = this.records.pop()!;
      this.totalBytes -= rec.bytes;
      this.roots.delete(rec.generation);
    }
    this.live = durable;
    this.roots.set(durable.generation, durable);
    if (durable.generation < this.floor.generation) {
      // Older than anything kept (cannot happen with a window longer than the log's unsynced tail).
      this.records = [];
      this.head = 0;
      this.totalBytes = 0;
      this.roots.clear();
      this.roots.set(durable.generation, durable);
      this.floor = { generation: durable.generation, time: undefined };
    }
  }

  /** The record that made generation `g`, if kept. */
  recordAt(g: number): HistoryRecord | undefined {
    const i = this.head + (g - this.floor.generation - 1);
    return i >= this.head && i < this.records.length ? this.records[i] : undefined;
  }

  /**
   * `at(g)` is the version current at generation `g`: a kept root, or the nearest newer kept root
   * with the records between undone. The work is the records undone, at most the window.
   * ENOENT naming the oldest kept when `g` is older; EINVAL when it is in the future.
   */
  at(g: number): Version {
    if (!Number.isSafeInteger(g)) throw new XsError('EINVAL', `bad generation ${g}`);
    if (g > this.live.generation) throw new XsError('EINVAL', `generation ${g} is after the latest, ${this.live.generation}`);
    if (g < this.floor.generation) throw this.tooOld(`generation ${g}`);
    const kept = this.roots.get(g);
    if (kept !== undefined) return kept;
    let n = g + 1;
    while (!this.roots.has(n)) n++;
    let v = this.roots.get(n)!;
    for (let k = n; k > g; k--) v = undo(v, this.recordAt(k)!);
    return v;
  }

  /**
   * `generationAt(time)` is the generation current at `time` (ms since the epoch): that of the
   * last record made at or before it. ENOENT naming the oldest kept when it is earlier.
   */
  generationAt(time: number): number {
    if (!Number.isFinite(time)) throw new XsError('EINVAL', 'bad time');
    // Binary search: records are in time order (see `record`).
    let lo = this.head;
    let hi = this.records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.records[mid]!.time <= time) lo = mid + 1;
      else hi = mid;
    }
    if (lo > this.head) return this.records[lo - 1]!.generation;
    // Before every record kept: the floor, if it is known to be that old.
    // (A floor of unknown time is the version history started from: current as far as it knows.)
    if (this.floor.time === undefined || time >= this.floor.time) return this.floor.generation;
    throw this.tooOld(new Date(time).toISOString());
  }

  /** The index range [from, to) of records with generation in [lo, hi]. */
  indexRange(lo: number, hi: number): [number, number] {
    const base = this.floor.generation + 1;
    const from = Math.max(0, lo - base);
    const to = Math.min(this.size, hi - base + 1);
    return [from, Math.max(from, to)];
  }

  /** The i-th record kept, oldest first. */
  nth(i: number): HistoryRecord {
    return this.records[this.head + i]!;
  }

  /** The index of the first record made after `time`, or `size`. */
  indexAfter(time: number): number {
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.nth(mid).time <= time) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  tooOld(what: string): XsError {
    const o = this.floor;
    const when = o.time === undefined ? '' : ` (${new Date(o.time).toISOString()})`;
    return new XsError('ENOENT', `${what} is older than the oldest kept, generation ${o.generation}${when}`);
  }
}
