import { XsError } from '../protocol/index.js';
import { ADDED, carries, CHANGED, decodeRecord, generationAndTime, PERMS, REMOVED, writeRequestRecord, writeValueRecord } from './history-codec.js';
import { writeCommit } from './history-commit.js';
import { redoAll, undoAll, type ConnectionName, type HistoryRecord, type RecordMeta, type RequestSummary, type Version, type Who } from './history-record.js';
import { HistoryRing, type RecordView } from './history-ring.js';
import type { Touched } from './operations.js';
import { samePerms } from './perms.js';
import { toEnd, type Steps } from './steps.js';

/**
 * The history window: one record per commit that changed something, oldest first, bounded by
 * count and bytes, kept as bytes off the JS heap (history-ring.ts) and decoded when a query reads
 * them; and a few whole versions: the live one and a checkpoint every `every` generations (at
 * most `checkpoints` of them). A version in between is rebuilt by undoing records from the
 * nearest newer kept one (records carry old values). Versions share every subtree they did not
 * change, so a kept version costs the nodes later commits replaced (at most a whole tree).
 *
 * Why so few kept versions (issue 14): a version kept past a young-generation collection keeps
 * every node of the live tree that is still young, and the scavenger copies them all to the old
 * generation. Keeping the last 256 versions, or even one version in 256, did that to nearly every
 * node a write made (~1 MB copied per scavenge under a write load, against 40 KB without), which
 * made writes 2-3x slower. Even one checkpoint kept at a time, however rare, costs a write load of
 * 1000 hot keys ~0.1x of its CPU (the old versions of hot nodes it keeps: fewer cache hits on the
 * live tree, by valgrind's count ~36 more first-level misses a write); so by default there is
 * none, and `at` undoes from the live version, many records at once (history-record.ts
 * `undoAll`: ~140 ms for 10^5 records of random writes on a 10^5-node store, against ~90 ms for
 * the 16 383 record by record that a checkpoint every 16 384 commits bounded it to), or starts
 * from a moment an earlier query rebuilt (MOMENTS_KEPT, below). Pure: the daemon passes the time.
 */
export interface HistoryOptions {
  /** Records kept at most. */
  readonly records: number;
  /** Bytes of records kept at most (their encoded size: history-codec.ts). */
  readonly bytes: number;
  /**
   * Generations between checkpoints (`Infinity`, the default: none): `at` undoes at most
   * `every - 1` records within their reach.
   */
  readonly every?: number;
  /** Checkpoints kept at most (the newest); older moments are rebuilt from the oldest one. */
  readonly checkpoints?: number;
  /**
   * Bytes of records `at` undoes in one pass (history-record.ts `undoAll`), whose decoded changes
   * it holds meanwhile (4 MiB): a query holds tens of MiB at most even when the window's 64 MiB
   * are all changes of distinct paths (a guest can make them so), and a path changed again and
   * again is rebuilt once per ~45 000 short records instead of once per record. (1 MiB made the
   * oldest moment of 10^5 random writes 232 ms instead of 141: each pass rebuilds its paths.)
   */
  readonly span?: number;
}

/**
 * Moments `at` keeps after rebuilding them, and for how many commits after the last query that
 * used one. A privileged reader asks for the same moment many times over (the web view reads each
 * row shown as it was, with three CONTROL queries a row) and for moments next to each other
 * (scrubbing its timeline): rebuilt from the live version each time, an old moment of a full
 * window costs ~280 ms a query, all of it holding up every guest. Rebuilt from the nearest kept
 * moment instead (undoing or redoing the records between), a repeated moment costs nothing and
 * the next tick of a timeline the records between the two. A kept moment holds the old copies of
 * the nodes changed since (at most what one query holds), and while kept costs writes what a
 * checkpoint does (see `HistoryOptions`): so few of them, and dropped once the store has moved
 * on without a query.
 */
const MOMENTS_KEPT = 4;
const MOMENTS_COMMITS = 4096;

/**
 * Records `restoreSteps` checks or copies between two steps: a few milliseconds of a start's
 * copying, before its code is optimised.
 */
const RESTORE_STEP = 4096;
/** Bytes `restoreSteps` copies at most between two steps, whatever the records' size. */
const RESTORE_STEP_BYTES = 1024 * 1024;

/** Times a `rebuild` starts again after records were taken back, before it gives up with EAGAIN. */
const REBUILD_RESTARTS = 3;

/**
 * Defaults, assuming a busy host makes 50 commits a second (a few VMs starting and stopping a
 * minute, each a few hundred writes, and guests updating their keys): an hour is 180 000 commits,
 * of about 200 bytes each (a write of a short value, as bench/history-bench.ts measured it):
 * 200 000 records need about 40 MiB, so the byte bound is 64 MiB. No checkpoint (see above).
 */
export const DEFAULT_HISTORY: Required<HistoryOptions> = Object.freeze({ records: 200_000, bytes: 64 * 1024 * 1024, every: Number.POSITIVE_INFINITY, checkpoints: 16, span: 4 * 1024 * 1024 });

/** The oldest moment history can answer: the version before its oldest record. */
export interface Oldest {
  readonly generation: number;
  /** When that version was made, if known (not for the version history started from). */
  readonly time: number | undefined;
}

/** A moment being rebuilt a pass at a time (`History.rebuild`). */
export interface Rebuild {
  /** One pass; the moment once it is rebuilt, undefined while passes remain. */
  step(): Version | undefined;
}

/** The most `bound` takes a window under its bounds: records (a default window's 1/1024th is 195) and bytes (64 MiB's is 64 KiB). */
const EVICT_RECORDS = 256;
const EVICT_BYTES = 64 * 1024;

export class History {
  readonly options: Required<HistoryOptions>;
  /** The records: record i made generation floorGen + 1 + i. */
  private ring: HistoryRing;
  /** Whether checkpoints are kept at all (`options.every` finite). */
  private readonly checkpointing: boolean;
  /** Checkpoints, oldest first: generations and their versions. */
  private cpGen: number[] = [];
  private cpVersion: Version[] = [];
  /**
   * The oldest version answerable: the one before the oldest record (two fields, not an object:
   * it moves with every commit once the window is full, and an object per commit is garbage).
   */
  private floorGen = 0;
  /**
   * The floor's time; NaN: not known (a window that began with no time). Never undefined: in a
   * field that has held undefined, every double stored is a fresh heap number behind a write
   * barrier, and one was stored at each eviction, i.e. every commit once the window was full
   * (~90 instructions a record in the recorder alone: bench/RESULTS.md, "History", sixteenth pass).
   */
  private floorTime = NaN;
  /** The time of the newest record (-Infinity: none). */
  private lastTime = -Infinity;
  private live: Version;
  /** `recordRequest`'s description of its commit (reused: encoded at once, never kept). */
  private readonly request: { op: RequestSummary['op']; path: string } = { op: 'write', path: '' };
  private readonly requestMeta: { time: number; who: Who; requests: readonly RequestSummary[] } = { time: 0, who: { domid: 0, connection: 'internal' }, requests: [this.request] };
  /** Moments `at` rebuilt, least recently used first (at most MOMENTS_KEPT). */
  private moments: Version[] = [];
  /** The generation past which the kept moments are dropped (MOMENTS_COMMITS after the last use). */
  private momentsUntil = 0;
  /** Counts the times records were taken back or the window started again: a `rebuild` then starts again. */
  private epoch = 0;
  /** Where `nth` finds a record (reused: an `at` decodes thousands). */
  private readonly place: RecordView = { buf: Buffer.alloc(0), start: 0, end: 0 };
  /** `onRecord`'s function, and where it finds the record just written (reused). */
  private sink: ((buf: Buffer, start: number, end: number) => void) | undefined;
  private readonly tail: RecordView = { buf: Buffer.alloc(0), start: 0, end: 0 };

  constructor(initial: Version, options: Partial<HistoryOptions> = {}, time?: number) {
    const o = { ...DEFAULT_HISTORY, ...options };
    if (!(o.records >= 1) || !(o.bytes >= 1) || !(o.every >= 1) || !(o.checkpoints >= 1) || !(o.span >= 1)) throw new RangeError('history bounds must be at least 1');
    this.options = o;
    this.checkpointing = Number.isFinite(o.every);
    this.ring = new HistoryRing(o.bytes);
    this.live = initial;
    this.floorGen = initial.generation;
    this.floorTime = time ?? NaN;
  }

  /** How many records are kept, and their bytes (bounded by `options.bytes`). */
  get size(): number {
    return this.ring.size;
  }

  get bytes(): number {
    return this.ring.bytes;
  }

  /** Memory the records take: the ring's chunks and index (bytes, plus at most three chunks). */
  get allocated(): number {
    return this.ring.allocated;
  }

  oldest(): Oldest {
    return { generation: this.floorGen, time: Number.isNaN(this.floorTime) ? undefined : this.floorTime };
  }

  latest(): Version {
    return this.live;
  }

  /** The records kept, oldest first, decoded (the whole window: for tests and tools, not queries). */
  all(): readonly HistoryRecord[] {
    const out: HistoryRecord[] = [];
    for (let i = 0; i < this.size; i++) out.push(this.nth(i));
    return out;
  }

  /**
   * `onRecord(fn)`: `fn(buf, start, end)` is given the bytes of every record of a commit as it is
   * written (`buf[start, end)`, valid until the next record; never those `restore` and `follow`
   * copy in): the log on disk copies them (server/persistence/history-log.ts).
   */
  onRecord(fn: (buf: Buffer, start: number, end: number) => void): void {
    this.sink = fn;
  }

  /**
   * `record(before, after, meta, hints?, touched?)` adds the record of the commit `before` ->
   * `after` (which must follow the latest version: history has every commit, or it could not
   * undo) and returns its generation. `before === after` (nothing changed) records nothing.
   * `hints`: the paths the commit reported changed; `touched`: what a plain request found and
   * left there (operations.ts), when the commit is exactly that request's.
   */
  record(before: Version, after: Version, meta: RecordMeta, hints?: readonly string[], touched?: Touched): number | undefined {
    if (before === after) return undefined;
    try {
      this.follows(before, after);
      // The wall clock may step back (NTP); records stay in time order so that time queries can search.
      const time = meta.time < this.lastTime ? this.lastTime : meta.time;
      writeCommit(this.ring.begin(), before, after, meta, hints, time, touched);
      return this.written(after, time);
    } catch (e) {
      this.startAfresh(after, meta.time);
      throw e;
    }
  }

  /**
   * `recordRequest(before, after, time, domid, connection, id, op, path, hints?, touched?)` is
   * `record` for the commit of one plain request by `domid` over a connection of that kind and id
   * (no id: `internal`): the same record, with no object made to describe it (issue 14: every
   * object a write makes is the young-generation collector's work, on every write). The usual
   * commit, one node on the request's own path rewritten, made or removed, is written in one pass
   * (history-codec.ts `writeRequestRecord`); any other goes the way `record` goes. `payload`: a
   * WRITE's bytes as received (`path\0value`, the `path` and value it wrote), copied into the
   * record in one block instead of character by character.
   *
   * Every record is written at its commit. Issue 14: a turn's rewritten values were once kept
   * waiting (their `Touched` and payloads) and written together when the turn ended (ninth pass);
   * measured again with every daemon under the same load at once, that made no difference the
   * runs could tell on Node 20, 22 and 24 (-2.4 to +2.8 points of a write's CPU, where two copies
   * of one build differ by up to 2) and cost ~25 ns a record in the recorder alone, so it went,
   * with its bound and a `settle` in every reader (bench/RESULTS.md, "History", fifteenth pass).
   */
  recordRequest(
    before: Version,
    after: Version,
    time: number,
    domid: number,
    connection: ConnectionName,
    id: number | undefined,
    op: RequestSummary['op'],
    path: string,
    hints?: readonly string[],
    touched?: Touched,
    payload?: Buffer,
  ): number | undefined {
    if (before === after) return undefined;
    const kind = touched === undefined || touched.path !== path || before.special !== after.special ? -1 : oneChange(touched);
    if (kind < 0) return this.recordRequestAsCommit(before, after, time, domid, connection, id, op, path, hints, touched);
    try {
      this.follows(before, after);
      const t = time < this.lastTime ? this.lastTime : time;
      const o = touched!.before;
      const n = touched!.after;
      const w = this.ring.begin();
      // A value rewritten by a WRITE whose payload came along: the lean writer (history-codec.ts `writeValueRecord`).
      if (kind === CHANGED && op === 'write' && payload !== undefined && o!.perms === n!.perms && carries(payload, path, n!.value)) {
        writeValueRecord(w, after.generation, t, domid, connection, id, payload, o!.value, o!.perms);
      } else {
        writeRequestRecord(w, after.generation, t, domid, connection, id, op, kind, path, o?.value, o?.perms, n?.value, n?.perms, payload);
      }
      return this.written(after, t);
    } catch (e) {
      this.startAfresh(after, time);
      throw e;
    }
  }

  /**
   * After a record that could not be written (memory: a chunk or the index could not grow), or a
   * commit that does not follow the live version: the window cannot go on from a version it has
   * no record of, so it starts again from `v` (every record before it dropped, and what was
   * rebuilt from them). The caller's error is thrown on; the next commit is recorded as usual.
   */
  private startAfresh(v: Version, time: number): void {
    this.ring.abandon();
    this.ring.clear();
    this.cpGen = [];
    this.cpVersion = [];
    this.moments = [];
    this.epoch++;
    this.live = v;
    this.floorGen = v.generation;
    this.floorTime = time;
  }

  /** Ends the record being written at `time` and makes `after` the live version: its generation. */
  private written(after: Version, time: number): number {
    this.ring.end(time);
    this.given();
    this.lastTime = time;
    this.advance(after);
    return after.generation;
  }

  /** Gives the record just written to `onRecord`'s function. */
  private given(): void {
    const fn = this.sink;
    if (fn === undefined) return;
    const v = this.tail;
    this.ring.view(this.ring.size - 1, v);
    fn(v.buf, v.start, v.end);
  }

  private recordRequestAsCommit(
    before: Version,
    after: Version,
    time: number,
    domid: number,
    connection: ConnectionName,
    id: number | undefined,
    op: RequestSummary['op'],
    path: string,
    hints: readonly string[] | undefined,
    touched: Touched | undefined,
  ): number | undefined {
    const m = this.requestMeta;
    m.time = time;
    m.who = id === undefined ? { domid, connection } : { domid, connection, id };
    this.request.op = op;
    this.request.path = path;
    try {
      return this.record(before, after, m, hints, touched);
    } finally {
      this.request.path = '';
    }
  }

  /**
   * `restore(records, floorTime?)`: records read back from disk, each as history-codec.ts encodes
   * it (the bytes history keeps, which the log on disk holds), oldest first, consecutive and
   * ending at the window's oldest version: the store history started from, which later commits
   * may have followed already (a restart reads them back after its first replies: the daemon's
   * `readHistoryBack`); the window's own records then follow them. Their bytes are copied into
   * the window as they are: only each one's generation and time are read, and a record's changes
   * are decoded when a query reads them, as for records made here (a malformed one is then EIO).
   * Issue 14: decoding every record and encoding it again made a start, and a live update's
   * pause, wait ~0.6 s for a full default window. Only the latest version is kept whole; older
   * ones are rebuilt by undo. Bounds apply as to records made here: the oldest go first.
   */
  restore(records: readonly Buffer[], floorTime?: number): void {
    toEnd(this.restoreSteps(records, floorTime, Infinity));
  }

  /**
   * `restoreSteps(records, floorTime?, step?)` is `restore` a part at a time: the generator stops
   * after every `step` records it checks or copies (the daemon runs a step per turn of its event
   * loop: a full default window's copy held it ~20-40 ms in one go). The records are copied into a
   * window of their own meanwhile, while this one goes on taking commits (and answers no query: the
   * daemon's history queries wait for the read-back); at the last step the window's own records,
   * those made meanwhile too, are copied after them, and that window becomes this one. A record
   * that cannot be copied (memory) before then costs the records read back, not this window.
   */
  *restoreSteps(records: readonly Buffer[], floorTime?: number, step = RESTORE_STEP): Steps<void> {
    if (records.length === 0) return;
    const head = { generation: 0, time: 0 };
    generationAndTime(records[0]!, head);
    const first = head.generation;
    const times = new Float64Array(records.length);
    let n = 0;
    for (let i = 0; i < records.length; i++) {
      generationAndTime(records[i]!, head);
      if (head.generation !== first + i) throw new RangeError(`history records jump to ${head.generation} after ${first + i - 1}`);
      times[i] = head.time;
      if (++n === step) {
        n = 0;
        yield;
      }
    }
    // Checked before the copy and again after it: the window may have started afresh meanwhile.
    if (first + records.length - 1 !== this.floorGen) {
      throw new RangeError(`history records end at ${first + records.length - 1}, not at ${this.floorGen}`);
    }
    // Copied into a ring of their own, within the window's bounds (the oldest go first).
    const ring = new HistoryRing(this.options.bytes);
    let floorGen = first - 1;
    let floor = floorTime;
    let copied = 0;
    for (let i = 0; i < records.length; i++) {
      copyRecord(ring, records[i]!, times[i]!);
      const k = ring.excess(this.options.records, this.options.bytes);
      if (k > 0) {
        floor = ring.time(k - 1);
        ring.drop(k);
        floorGen += k;
      }
      // At `step` records or RESTORE_STEP_BYTES copied, whichever comes first: a guest's large records must not make one step long.
      copied += records[i]!.length;
      if (++n === step || (step !== Infinity && copied >= RESTORE_STEP_BYTES)) {
        n = 0;
        copied = 0;
        yield;
      }
    }
    if (first + records.length - 1 !== this.floorGen) {
      throw new RangeError(`history records end at ${first + records.length - 1}, not at ${this.floorGen}`);
    }
    const own = this.ring;
    this.ring = ring;
    this.cpGen = [];
    this.cpVersion = [];
    this.moments = [];
    this.epoch++;
    this.floorGen = floorGen;
    this.floorTime = floor ?? NaN;
    this.lastTime = Math.max(this.lastTime, times[times.length - 1]!);
    try {
      for (let i = 0; i < own.size; i++) this.put(own.bytesOf(i), own.time(i));
    } catch (e) {
      // Half copied (memory): the window cannot say which records lead to the live version.
      this.startAfresh(this.live, this.lastTime);
      throw e;
    }
  }

  /**
   * `follow(records, live)`: records read back from disk that follow the latest version, oldest
   * first, consecutive, and end at `live`, which becomes the latest (a live update's next process
   * builds its window from the records up to the version it pre-copied, then takes those the
   * previous process wrote after it: server/live-update/take-over.ts). Copied as `restore` copies.
   */
  follow(records: readonly Buffer[], live: Version): void {
    const head = { generation: 0, time: 0 };
    const times = records.map((b, i) => {
      generationAndTime(b, head);
      if (head.generation !== this.live.generation + 1 + i) throw new RangeError(`history records jump to ${head.generation} after ${this.live.generation + i}`);
      return head.time;
    });
    if (this.live.generation + records.length !== live.generation) {
      throw new RangeError(`history records end at ${this.live.generation + records.length}, not at ${live.generation}`);
    }
    try {
      records.forEach((bytes, i) => this.put(bytes, times[i]!));
    } catch (e) {
      this.startAfresh(live, this.lastTime);
      throw e;
    }
    this.advance(live);
  }

  /** Copies a record's bytes made at `time` to the window's tail (`restore`), within its bounds. */
  private put(bytes: Buffer, time: number): void {
    copyRecord(this.ring, bytes, time);
    this.lastTime = Math.max(this.lastTime, time);
    if (this.over()) this.bound();
  }

  /** The bytes of the record that made generation `g` (a view, valid until the next record): for tests and tools (the log on disk takes records from `onRecord`). */
  encoded(g: number): Buffer {
    return this.ring.bytesOf(g - this.floorGen - 1);
  }

  /** History has every commit, or it could not undo: `before` must be the latest version, `after` the next. */
  private follows(before: Version, after: Version): void {
    if (before.generation !== this.live.generation || after.generation !== before.generation + 1) {
      throw new RangeError(`history at ${this.live.generation} given ${before.generation} -> ${after.generation}`);
    }
  }

  private advance(after: Version): void {
    this.live = after;
    this.ageMoments();
    // A finite interval only: a modulo by Infinity is a floating-point one, on every commit.
    if (this.checkpointing && after.generation % this.options.every === 0) {
      this.cpGen.push(after.generation);
      this.cpVersion.push(after);
      if (this.cpGen.length > this.options.checkpoints) this.dropOldestCheckpoint();
    }
    // The check here, the eviction apart: called once in many commits, it stays out of this path's code.
    if (this.over()) this.bound();
  }

  /** Whether the window is past one of its bounds. */
  private over(): boolean {
    return this.ring.size > this.options.records || this.ring.bytes > this.options.bytes;
  }

  /**
   * Keeps the window within its bounds. Past one, records go until the window is a 1/1024th under
   * it, at most EVICT_RECORDS records or EVICT_BYTES bytes under (none under for a window of fewer
   * than 1,024 records): in a default window the eviction runs once in ~195 commits, its code
   * warm, rather than at every commit, where it was ~200 instructions and ~16 instruction cache
   * misses of a write's (bench/RESULTS.md, "History", sixteenth pass). The caps keep the commit
   * that evicts as quick in a window of millions. Never over its bounds. Called when it is (`over`).
   */
  private bound(): void {
    const o = this.options;
    const r = this.ring;
    const k = r.excess(o.records - Math.min(EVICT_RECORDS, Math.floor(o.records / 1024)), o.bytes - Math.min(EVICT_BYTES, Math.floor(o.bytes / 1024)));
    if (k === 0) return;
    this.floorTime = r.time(k - 1);
    r.drop(k);
    this.floorGen += k;
    // A checkpoint older than the floor can rebuild nothing still answerable.
    while (this.cpGen.length > 0 && this.cpGen[0]! < this.floorGen) this.dropOldestCheckpoint();
  }

  private dropOldestCheckpoint(): void {
    this.cpGen.shift();
    this.cpVersion.shift();
  }

  /**
   * `rewind(durable)` forgets every record after `durable`: the live store went back to it (a
   * log write failed, server/persistence/journal.ts) and its generations will be given again.
   */
  rewind(durable: Version): void {
    while (this.size > 0 && this.floorGen + this.size > durable.generation) this.ring.pop();
    while (this.cpGen.length > 0 && this.cpGen[this.cpGen.length - 1]! >= durable.generation) {
      this.cpGen.pop();
      this.cpVersion.pop();
    }
    this.live = durable;
    // A kept moment after `durable` will be made again differently: its generation is given again.
    this.moments = this.moments.filter((v) => v.generation <= durable.generation);
    this.epoch++;
    if (durable.generation < this.floorGen) {
      // Older than anything kept (cannot happen with a window longer than the log's unsynced tail).
      this.ring.clear();
      this.cpGen = [];
      this.cpVersion = [];
      this.floorGen = durable.generation;
      this.floorTime = NaN;
    }
    this.lastTime = this.size > 0 ? this.ring.time(this.size - 1) : -Infinity;
  }

  /** The record that made generation `g`, if kept (decoded). */
  recordAt(g: number): HistoryRecord | undefined {
    const i = g - this.floorGen - 1;
    return i >= 0 && i < this.size ? this.nth(i) : undefined;
  }

  /**
   * `at(g)` is the version current at generation `g`: the live one, a checkpoint, a moment kept
   * from an earlier query, or rebuilt from the nearest of those: the records after `g` undone from
   * a newer one, or those up to `g` redone from an older kept moment, whichever are fewer;
   * `options.span` bytes of records a pass. The work is the records between: fewer than `every`
   * within the checkpoints' reach (the last `every * checkpoints` generations) when there are
   * checkpoints, the window's records at most. ENOENT naming the oldest kept when `g` is older;
   * EINVAL when it is in the future.
   */
  at(g: number): Version {
    const r = this.rebuild(g);
    for (;;) {
      const v = r.step();
      if (v !== undefined) return v;
    }
  }

  /**
   * `rebuild(g)` is `at(g)` a pass at a time: each `step()` undoes or redoes at most
   * `options.span` bytes of records and returns the moment once it is rebuilt (then kept, as `at`
   * keeps it), so that the daemon can serve other requests between passes. Commits may come
   * between steps: a rebuild carries on from where it was, unless the window has passed `g`
   * (ENOENT, as `at`), the older moment it redoes from left the window (it goes on from the
   * nearest moment still usable), or records were taken back (`rewind`: it starts again, and
   * gives up with EAGAIN the fourth time).
   */
  rebuild(g: number): Rebuild {
    let v = this.startOf(g);
    let epoch = this.epoch;
    let restarts = 0;
    return {
      step: () => {
        if (this.epoch !== epoch) {
          // Records were taken back (a failed log write each): a log failing again and again must
          // not keep a query rebuilding for ever.
          if (++restarts > REBUILD_RESTARTS) throw new XsError('EAGAIN', `history was taken back ${restarts} times while generation ${g} was rebuilt`);
          v = this.startOf(g);
          epoch = this.epoch;
        } else if (v.generation < g && v.generation < this.floorGen) {
          // The moment it redoes from left the window: from the nearest one still usable (never an older one).
          v = this.startOf(g);
        } else if (g < this.floorGen) {
          throw this.tooOld(`generation ${g}`);
        }
        if (v.generation > g) v = this.undoPass(v, g);
        else if (v.generation < g) v = this.redoPass(v, g);
        if (v.generation !== g) return undefined;
        return v === this.live ? v : this.keep(v);
      },
    };
  }

  /**
   * Where `at(g)` starts: the live version, a checkpoint or a kept moment, the nearest to `g`
   * (a kept moment older than `g` only when the records after it are all still kept).
   */
  private startOf(g: number): Version {
    if (!Number.isSafeInteger(g)) throw new XsError('EINVAL', `bad generation ${g}`);
    if (g > this.live.generation) throw new XsError('EINVAL', `generation ${g} is after the latest, ${this.live.generation}`);
    if (g < this.floorGen) throw this.tooOld(`generation ${g}`);
    if (g === this.live.generation) return this.live;
    let newer = this.live;
    // The oldest checkpoint at or after g (few: a linear scan from the oldest).
    for (let k = 0; k < this.cpGen.length; k++) {
      if (this.cpGen[k]! >= g) {
        newer = this.cpVersion[k]!;
        break;
      }
    }
    // Kept moments: g itself, the nearest after it, and the nearest before it whose records are all still kept.
    let older: Version | undefined;
    const m = this.moments;
    for (let k = 0; k < m.length; k++) {
      const v = m[k]!;
      if (v.generation === g) {
        m.splice(k, 1);
        return v;
      }
      if (v.generation > g && v.generation < newer.generation) newer = v;
      else if (v.generation < g && v.generation >= this.floorGen && (older === undefined || v.generation > older.generation)) older = v;
    }
    return older !== undefined && g - older.generation < newer.generation - g ? older : newer;
  }

  /** Forgets the moments `at` kept (they are rebuilt when asked again). */
  forgetMoments(): void {
    this.moments = [];
  }

  /** `at`'s answer, kept as the most recently used moment. */
  private keep(v: Version): Version {
    const m = this.moments;
    m.push(v);
    if (m.length > MOMENTS_KEPT) m.shift();
    this.momentsUntil = this.live.generation + MOMENTS_COMMITS;
    return v;
  }

  /** The moments kept, dropped once MOMENTS_COMMITS commits followed their last use. */
  private ageMoments(): void {
    if (this.moments.length > 0 && this.live.generation > this.momentsUntil) this.moments = [];
  }

  /** One pass of `at`'s undo: from `v`, after `g`, towards it (at least one record, at most `span` bytes of them). */
  private undoPass(v: Version, g: number): Version {
    // What undoAll decodes and holds is bounded by the span, whatever a guest's commits left in the window.
    let from = v.generation;
    let bytes = this.ring.length(from - this.floorGen - 1);
    while (from - 1 > g) {
      const more = this.ring.length(from - 1 - this.floorGen - 1);
      if (bytes + more > this.options.span) break;
      bytes += more;
      from--;
    }
    return undoAll(v, from - 1, this.records(from, v.generation));
  }

  /** One pass of `at`'s redo: from `v`, before `g` and with its next record kept, towards it. */
  private redoPass(v: Version, g: number): Version {
    let to = v.generation + 1;
    let bytes = this.ring.length(to - this.floorGen - 1);
    while (to < g) {
      const more = this.ring.length(to + 1 - this.floorGen - 1);
      if (bytes + more > this.options.span) break;
      bytes += more;
      to++;
    }
    return redoAll(v, to, this.records(v.generation + 1, to));
  }

  /** The records that made generations `from` to `to`, oldest first, decoded one at a time. */
  private *records(from: number, to: number): Generator<HistoryRecord> {
    for (let k = from; k <= to; k++) yield this.recordAt(k)!;
  }

  /**
   * `generationAt(time)` is the generation current at `time` (ms since the epoch): that of the
   * last record made at or before it. ENOENT naming the oldest kept when it is earlier.
   */
  generationAt(time: number): number {
    if (!Number.isFinite(time)) throw new XsError('EINVAL', 'bad time');
    const i = this.indexAfter(time);
    if (i > 0) return this.floorGen + i;
    // Before every record kept: the floor, if it is known to be that old.
    // (A floor of unknown time is the version history started from: current as far as it knows.)
    if (Number.isNaN(this.floorTime) || time >= this.floorTime) return this.floorGen;
    throw this.tooOld(new Date(time).toISOString());
  }

  /** The index range [from, to) of records with generation in [lo, hi]. */
  indexRange(lo: number, hi: number): [number, number] {
    const base = this.floorGen + 1;
    const from = Math.max(0, lo - base);
    const to = Math.min(this.size, hi - base + 1);
    return [from, Math.max(from, to)];
  }

  /** The i-th record kept, oldest first (decoded). */
  nth(i: number): HistoryRecord {
    const v = this.place;
    this.ring.view(i, v);
    return decodeRecord(v.buf, v.start, v.end);
  }

  /** Where the i-th record's bytes are (no object made: for scans). */
  view(i: number, out: RecordView): void {
    this.ring.view(i, out);
  }

  /** The time of the i-th record kept. */
  timeOf(i: number): number {
    return this.ring.time(i);
  }

  /** The generation of the i-th record kept. */
  generationOf(i: number): number {
    return this.floorGen + 1 + i;
  }

  /** The index of the first record made after `time`, or `size`. */
  indexAfter(time: number): number {
    let lo = 0;
    let hi = this.size;
    // Binary search: records are in time order (see `record`).
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ring.time(mid) <= time) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  tooOld(what: string): XsError {
    const o = this.oldest();
    const when = o.time === undefined ? '' : ` (${new Date(o.time).toISOString()})`;
    return new XsError('ENOENT', `${what} is older than the oldest kept, generation ${o.generation}${when}`);
  }
}

/**
 * The kind of the one change a plain request's commit made on its own path, as history-commit.ts
 * `ofTouched` would list it, when that is its only change: a node's value or permissions with the
 * same children, a node made without children, a node removed that had none. -1 otherwise
 * (several changes, or none). `childBytes` tells a leaf without reading children a snapshot has
 * not loaded yet.
 */
/** Copies a record's bytes, made at `time`, to the tail of `ring`. */
function copyRecord(ring: HistoryRing, bytes: Buffer, time: number): void {
  const w = ring.begin();
  w.room(bytes.length);
  bytes.copy(w.buf, w.pos);
  w.pos += bytes.length;
  ring.end(time);
}

function oneChange(t: Touched): number {
  const o = t.before;
  const n = t.after;
  if (o === undefined) return n !== undefined && n.childBytes === 0 ? ADDED : -1;
  if (n === undefined) return o.childBytes === 0 ? REMOVED : -1;
  if (o.children !== n.children) return -1;
  return o.value !== n.value ? CHANGED : samePerms(o.perms, n.perms) ? -1 : PERMS;
}
