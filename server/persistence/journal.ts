import { closeSync, ftruncateSync, openSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Log } from '../logger.js';
import {
  createStore,
  DeltaDecoder,
  deltaOf,
  encodeDelta,
  openSnapshot,
  Replay,
  snapshotGeneration,
  snapshotSteps,
  type Change,
  type OpenedSnapshot,
  type Delta,
  type Store,
  type XsErrorCode,
} from '../../store/index.js';
import type { OutputGate } from '../connection/index.js';
import {
  fsyncDir,
  prepareDataDir,
  readHead,
  readIfExists,
  segmentName,
  segments,
  SNAPSHOT,
  SNAPSHOT_PREV,
  writeSnapshotFile,
} from './data-dir.js';
import { LogOutage } from './log-outage.js';
import { SegmentFile, type OpenSegment } from './segment-file.js';
import { SnapshotFile } from './snapshot-file.js';
import { FENCE_RECORD, frameRecord, isFence, RECORD_HEAD, recordAt } from './wal.js';

/**
 * `--sync` modes (README "Running under systemd, persistence"):
 *   always  replies and events leave only after fdatasync covers the commits they may reflect;
 *           group commit: one fdatasync per batch of requests, however many commits it holds.
 *   batch   they leave once write(2) has handed the records to the kernel (a daemon crash loses
 *           nothing acknowledged; a host crash may lose the last second); fdatasync once a second.
 *   none    nothing waits; the kernel writes when it likes (a daemon crash may lose the records
 *           of the last few milliseconds).
 */
export type SyncMode = 'always' | 'batch' | 'none';
export const SYNC_MODES: readonly SyncMode[] = ['always', 'batch', 'none'];

export interface JournalOptions {
  readonly dir: string;
  readonly sync: SyncMode;
  readonly log: Log;
  /** Take a snapshot (and drop old log segments) after this many records. */
  readonly snapshotEvery?: number;
  /**
   * Also take one once the log written since the last snapshot exceeds this many bytes and the
   * last snapshot's size (`--compact-after`; COMPACT_AFTER_DEFAULT).
   */
  readonly compactAfter?: number;
  /** How segments are opened (tests inject failing file handles). */
  readonly openSegment?: OpenSegment;
}

export interface Recovery {
  readonly store: Store;
  /** Which snapshot the store came from ('none': the initial tree), and the records replayed. */
  readonly snapshot: 'snapshot' | 'snapshot.prev' | 'none';
  readonly replayed: number;
  readonly warnings: readonly string[];
}

/**
 * `recover(dir)` rebuilds the last durable store of a data directory: the newest snapshot that
 * decodes (else the previous one), then every later log record in generation order. A torn or
 * corrupt record at the very end of the log (a crash mid-write) is dropped, with a warning, and
 * cut off the file. Damage anywhere else — a bad record followed by good ones, a gap in the
 * generations, every snapshot unreadable while the log does not start from the initial tree —
 * would lose acknowledged writes, so it is an Error naming the file, and nothing starts.
 */
export function recover(dir: string): Recovery {
  prepareDataDir(dir);
  const warnings: string[] = [];
  let sawSnapshot = false;
  for (const name of [SNAPSHOT, SNAPSHOT_PREV] as const) {
    const file = SnapshotFile.open(dir, name);
    if (file === undefined) continue;
    sawSnapshot = true;
    let opened: OpenedSnapshot;
    try {
      opened = openSnapshot(file);
    } catch (e) {
      file.close();
      warnings.push(`${name}: ${(e as Error).message}; trying the previous snapshot`);
      continue;
    }
    // Versions 1 and 2 were read whole: the file is not needed any more.
    if (opened.version < 3) file.close();
    try {
      const r = replay(dir, opened.store, name, warnings);
      if (opened.version >= 3) UNCHECKED.set(r.store, { file, opened });
      return r;
    } catch (e) {
      // A block the replay read was damaged (the file is set aside): as for damage found at
      // start, the previous snapshot and the log; any other failure stops the start.
      if (!file.isDamaged) throw e;
      file.close();
      warnings.push(`${name}: ${(e as Error).message}; trying the previous snapshot`);
    }
  }
  const segs = segments(dir);
  if (sawSnapshot && (segs.length === 0 || segs[0]!.first !== 1)) {
    throw new Error(`${dir}: no readable snapshot and the log does not start at generation 1; refusing to start`);
  }
  return replay(dir, createStore(), 'none', warnings);
}

/**
 * The stores `recover` returned from a version 3 snapshot not yet read whole, with their file:
 * `Journal.open` takes them over (checks the rest in the background, holds acknowledgements of
 * writes until then). Keyed by the store so that the daemon's start-up passes nothing new.
 */
const UNCHECKED = new WeakMap<Store, { file: SnapshotFile; opened: OpenedSnapshot }>();

/**
 * `replay(dir, base, from, warnings)`: every log record after `base`, applied (see `recover`).
 * Each record is decoded where it lies in its segment and applied at once (store/delta.ts
 * `Replay`): nothing per record outlives its turn. Issue 16: at 10⁴ records, the views and
 * deltas held for one replay at the end were most of the young generation's survivors, and its
 * collections cost more than the decoding.
 */
function replay(dir: string, base: Store, from: Recovery['snapshot'], warnings: string[]): Recovery {
  const segs = segments(dir);
  const store = new Replay(base);
  const decoder = new DeltaDecoder();
  let replayed = 0;
  let last = base.generation;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const path = join(dir, seg.name);
    const bytes = readIfExists(path) ?? Buffer.alloc(0);
    let problem: string | undefined;
    let off = 0;
    // The good prefix; then what stopped it, if anything: a torn or corrupt record, or one
    // whose checksum holds but whose delta does not decode.
    while (off < bytes.length) {
      const end = recordAt(bytes, off);
      if (typeof end === 'string') {
        problem = end;
        break;
      }
      if (isFence(bytes, off + RECORD_HEAD, end)) {
        off = end;
        continue;
      }
      let d: Delta;
      try {
        d = decoder.decode(bytes, off + RECORD_HEAD, end);
      } catch (e) {
        problem = (e as Error).message;
        break;
      }
      off = end;
      if (d.generation <= last) continue;
      if (d.generation !== last + 1) {
        throw new Error(`${path}: generation ${d.generation} follows ${last}; records are missing, refusing to start`);
      }
      store.apply(d);
      last = d.generation;
      replayed++;
    }
    if (problem !== undefined) {
      const later = segs.slice(i + 1).some((s) => (readIfExists(join(dir, s.name))?.length ?? 0) > 0);
      if (later) throw new Error(`${path}: ${problem}, and later segments hold records; refusing to start`);
      warnings.push(`${seg.name}: ${problem}; dropped the tail (${bytes.length - off} bytes) as a torn write`);
      const fd = openSync(path, 'r+');
      try {
        ftruncateSync(fd, off);
      } finally {
        closeSync(fd);
      }
    }
  }
  return { store: store.result(), snapshot: from, replayed, warnings };
}

/** The size of the file at `path`, 0 when there is none. */
function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Compaction: a snapshot once the log since the last one outgrows the snapshot (k = 1) and this. */
export const COMPACT_AFTER_DEFAULT = 8 * 1024 * 1024;

/**
 * The live side of persistence: `record(before, after)` is called for every new live version
 * (`Daemon.install`, the one place the live store changes) and queues its delta; a background
 * loop writes each batch with one writev, fdatasyncs it (`always`), and then releases the output
 * that waited for it. It is the daemon's `OutputGate`: a reply or event sent while commits are
 * queued or in flight carries the newest generation and leaves once that generation is durable.
 * Gating all output, reads included, is what keeps a reply from revealing a write that a crash
 * could still undo.
 *
 * A batch that cannot be made durable (a full disk, issue 17) is never acknowledged, and what it
 * changed does not stay visible. The daemon has kept serving while the batch was in flight, so
 * later versions are built on it; all of them go: the live store is rolled back to the newest
 * durable version (`onRollBack`, the daemon's `rollBack`), the queue is dropped, and every output
 * still held is released with the failure's Xen error (`after`'s `release(lost)`): replies become
 * that error (server/connection/answer.ts `lostAnswer`), since each was computed from a version that no
 * longer exists; watch events go out as they are, a spurious event being harmless (a watcher
 * re-reads and finds the durable value). Nothing built on the failed versions was shown to
 * anyone: all of it was behind the gate. Then, while `LogOutage` says so, writes are refused
 * (`admit`) before they change anything, and one is tried after each backoff: the first that is
 * written ends the outage. The alternative, exiting and letting the next start recover (this
 * file's first design), turned a full disk into a supervisor's restart loop and kept the daemon
 * from serving reads.
 */
export class Journal implements OutputGate {
  /** Newest generation recorded, and newest one written (durable in the sense of the sync mode). */
  private appended: number;
  private written: number;
  /**
   * While the snapshot the store was recovered from has parts not yet read and checked (issue
   * 16, `checkBase`): its generation. Output that may reflect a later generation waits until the
   * check is done, so no write is acknowledged on top of a snapshot that could still turn out
   * damaged; replies to reads of the recovered store leave at once.
   */
  private unchecked: number | undefined;
  private base: { file: SnapshotFile; opened: OpenedSnapshot } | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  /** The versions at `appended` and at `durable`: the rollback target after a failed batch. */
  private latest: Store;
  private durableStore: Store;
  private queue: Buffer[] = [];
  private waiters: { gen: number; release: (lost?: XsErrorCode) => void }[] = [];
  private flushing = false;
  private closed = false;
  private idlers: (() => void)[] = [];
  private sinceSnapshot = 0;
  /** Log bytes recorded since the last snapshot was asked for, and the last snapshot's size. */
  private logBytes: number;
  private snapshotBytes: number;
  private snapshotWanted: Store | undefined;
  private snapshotting: Promise<void> | undefined;
  private dirtySinceSync = false;
  /** Whether the current segment starts with `FENCE` (written with its first batch). */
  private fenced: boolean;
  private readonly syncTimer: NodeJS.Timeout | undefined;
  private readonly outage: LogOutage;
  private rollBack: ((durable: Store) => void) | undefined;
  private beforeBatch: (() => void) | undefined;
  readonly stats = { records: 0, batches: 0, syncs: 0, snapshots: 0, lostBatches: 0 };

  private constructor(
    private readonly options: JournalOptions,
    private file: SegmentFile,
    private segmentFirst: number,
    store: Store,
    sizes: { log: number; snapshot: number },
  ) {
    this.appended = this.written = store.generation;
    this.latest = this.durableStore = store;
    this.logBytes = sizes.log;
    this.snapshotBytes = sizes.snapshot;
    this.outage = new LogOutage(options.log);
    this.fenced = file.size > 0;
    if (options.sync === 'batch') {
      this.syncTimer = setInterval(() => void this.syncNow(), 1000);
      this.syncTimer.unref();
    }
  }

  /** `Journal.open(options, store)` starts a new log segment after the recovered `store`. */
  static async open(options: JournalOptions, store: Store): Promise<Journal> {
    const first = store.generation + 1;
    // After `recover`, a segment of that name is empty, absent or holds only its fence: anything
    // else in it would have been replayed (the store would be past `first`). Never truncate a
    // segment that holds records.
    const path = join(options.dir, segmentName(first));
    const file = await SegmentFile.open(path, 'a', options.openSegment);
    if (file.size > 0 && !(file.size === FENCE_RECORD.length && readIfExists(path)?.equals(FENCE_RECORD) === true)) {
      await file.close();
      throw new Error(`${segmentName(first)} already holds records after generation ${store.generation}; refusing to overwrite it`);
    }
    fsyncDir(options.dir);
    // The log already on disk counts towards the next compaction (a restart does not reset it).
    const sizes = { log: segments(options.dir).reduce((n, s) => n + fileSize(join(options.dir, s.name)), 0), snapshot: fileSize(join(options.dir, SNAPSHOT)) };
    const journal = new Journal(options, file, first, store, sizes);
    const base = UNCHECKED.get(store);
    if (base !== undefined) {
      UNCHECKED.delete(store);
      journal.checkBase(base, store.generation);
    }
    return journal;
  }

  /**
   * The newest generation output may show: written, and (while the recovered snapshot is not
   * checked whole) no later than that snapshot's replayed store.
   */
  get durable(): number {
    return this.unchecked === undefined ? this.written : Math.min(this.written, this.unchecked);
  }

  /**
   * `checkBase(base, generation)` reads and checks the rest of the recovered snapshot once the
   * daemon has sent its first output (or after CHECK_LATER_MS), in slices between requests: the
   * file into memory, then every block's checksum. Damage, found here or by a request touching a
   * block first, is the end of this process: the store has served from a snapshot that cannot be
   * read whole, writes on top of it were not acknowledged (`durable`), and the file is set aside,
   * so that the next start recovers from `snapshot.prev` and the log (which reaches back to it:
   * `prune`), as a start does today for a snapshot damaged at start.
   */
  private checkBase(base: { file: SnapshotFile; opened: OpenedSnapshot }, generation: number): void {
    this.unchecked = generation;
    this.base = base;
    base.file.onDamage = (e) => {
      this.options.log.fatal({ err: e.message, file: base.file.name }, 'snapshot damaged; set aside as snapshot.damaged, exiting: the next start recovers from snapshot.prev and the log');
      process.exit(1);
    };
    this.checkTimer = setTimeout(() => this.startCheck(), CHECK_LATER_MS);
    this.checkTimer.unref();
  }

  private startCheck(): void {
    const base = this.base;
    if (base === undefined) return;
    this.base = undefined;
    clearTimeout(this.checkTimer);
    // Not `performance.now()`: the global `performance` loads perf_hooks (issue 16), and the
    // check may start while the first requests after a start are still being served.
    const t0 = process.hrtime.bigint();
    void (async () => {
      await new Promise<void>((r) => setImmediate(r));
      await base.file.loadAll();
      const steps = base.opened.check(CHECK_SLICE);
      while (steps.next().done !== true) await new Promise<void>((r) => setImmediate(r));
      this.unchecked = undefined;
      this.options.log.info({ ms: Math.round(Number(process.hrtime.bigint() - t0) / 1e6), bytes: base.file.size }, 'snapshot checked');
      this.release(this.written);
    })().catch((e: unknown) => {
      // Damage went to `onDamage` (exit) already; anything else is a bug: exit, the next start recovers.
      this.options.log.fatal({ err: (e as Error).message }, 'snapshot check failed; exiting');
      process.exit(1);
    });
  }

  get mode(): SyncMode {
    return this.options.sync;
  }

  /** `onRollBack(fn)`: `fn(durable)` puts the live store back to `durable` after a failed batch. */
  onRollBack(fn: (durable: Store) => void): void {
    this.rollBack = fn;
  }

  /**
   * `beforeWrite(fn)`: `fn()` runs just before each batch is written, while nothing of it is on
   * disk yet (the daemon writes history's records of those commits first: history on disk never
   * falls behind the log, server/persistence/history-log.ts).
   */
  beforeWrite(fn: () => void): void {
    this.beforeBatch = fn;
  }

  /**
   * `admit()` throws XsError (ENOSPC, or EIO) while the log cannot be written and no retry is due:
   * the daemon calls it before a change becomes live, so that a refused write changes nothing.
   */
  admit(): void {
    this.outage.check();
  }

  /**
   * `record(before, after, changes?)` queues the delta from the live version to the next and
   * returns its size in bytes (the domain's disk budget is charged with it); `changes`, when they
   * cover every changed node, narrow the walk (store/delta.ts `deltaOf`).
   */
  record(before: Store, after: Store, changes?: readonly Change[]): number {
    if (this.closed) throw new Error('journal closed');
    const hints = changes?.map((c) => c.path);
    const rec = frameRecord(encodeDelta(deltaOf(before, after, hints)));
    this.queue.push(rec);
    this.appended = after.generation;
    this.latest = after;
    this.stats.records++;
    this.logBytes += rec.length;
    // Two triggers: a count, and the log outgrowing the snapshot (which bounds the data directory
    // by a multiple of the store's size however fast it is rewritten: README, Persistence).
    const compactAt = Math.max(this.options.compactAfter ?? COMPACT_AFTER_DEFAULT, this.snapshotBytes);
    if (++this.sinceSnapshot >= (this.options.snapshotEvery ?? 100_000) || this.logBytes >= compactAt) {
      this.sinceSnapshot = 0;
      this.logBytes = 0;
      this.snapshotWanted = after;
    }
    this.kick();
    return rec.length;
  }

  pending(): number | undefined {
    if (this.base !== undefined) this.startCheck(); // the first output: the check may begin
    if (this.unchecked !== undefined && this.appended > this.unchecked) return this.appended;
    return this.options.sync !== 'none' && this.appended > this.written ? this.appended : undefined;
  }

  after(generation: number, release: (lost?: XsErrorCode) => void): void {
    if (generation <= this.durable) release();
    else this.waiters.push({ gen: generation, release });
  }

  /** `requestSnapshot(store)` snapshots `store` at the next opportunity (SIGHUP, tests); resolves when written. */
  async requestSnapshot(store: Store): Promise<void> {
    this.snapshotWanted = store;
    this.kick();
    await this.idle();
  }

  /** Resolves once everything recorded so far is written (and synced, per mode) and no snapshot runs. */
  idle(): Promise<void> {
    if (!this.flushing && this.snapshotting === undefined) return Promise.resolve();
    return new Promise<void>((r) => this.idlers.push(r));
  }

  /**
   * `close(store)`: flush, sync, take a final snapshot (a fast next start), close the segment. On
   * a full disk the snapshot fails and the log, which holds every durable commit, is kept.
   */
  async close(store: Store): Promise<void> {
    await this.idle();
    this.closed = true;
    if (this.syncTimer !== undefined) clearInterval(this.syncTimer);
    try {
      await this.file.sync();
      if (store.generation > 0 && store.generation <= this.written) await this.writeSnapshot(store);
    } catch (e) {
      this.options.log.warn({ err: (e as Error).message }, 'no final snapshot; the log is kept');
    }
    await this.file.close();
  }

  private kick(): void {
    if (this.flushing) return;
    this.flushing = true;
    // After this tick's requests: everything they commit goes into one batch (group commit).
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    try {
      for (;;) {
        if (this.queue.length > 0) {
          await this.writeBatch();
        } else if (this.snapshotWanted !== undefined && this.snapshotting === undefined && !this.closed) {
          // Everything recorded is written: later records go to a new segment, so that the old
          // ones can be dropped once the snapshot is durable. The snapshot itself is written in
          // the background; commits keep flowing meanwhile.
          const store = this.snapshotWanted;
          this.snapshotWanted = undefined;
          try {
            await this.rotate();
          } catch (e) {
            // The log goes on in the current segment; the next trigger tries again.
            this.options.log.error({ err: (e as Error).message }, 'could not start a new log segment; no snapshot this time');
            continue;
          }
          this.snapshotting = this.writeSnapshot(store)
            .catch((e: unknown) => {
              // The log still holds everything; the next snapshot will try again.
              this.options.log.error({ err: (e as Error).message }, 'snapshot failed; the log is kept');
            })
            .finally(() => {
              this.snapshotting = undefined;
              if (this.snapshotWanted !== undefined) this.kick();
              this.wakeIdlers();
            });
        } else {
          break;
        }
      }
    } catch (e) {
      // Not a write failure (those are `lose`): a bug. Exit, and let the next start recover.
      this.options.log.fatal({ err: e }, 'write-ahead log failed; exiting');
      process.exit(1);
    }
    this.flushing = false;
    this.wakeIdlers();
  }

  /** Writes (and syncs, per mode) the queued records as one batch; a failure loses the batch. */
  private async writeBatch(): Promise<void> {
    const batch = this.queue;
    const upTo = this.appended;
    const store = this.latest;
    this.queue = [];
    this.beforeBatch?.();
    try {
      // A segment's first batch starts with the fence (wal.ts `FENCE`: older builds refuse this log).
      await this.file.append(this.fenced ? batch : [FENCE_RECORD, ...batch], this.options.sync === 'always');
    } catch (e) {
      this.lose(e);
      return;
    }
    this.fenced = true;
    if (this.options.sync === 'always') this.stats.syncs++;
    else this.dirtySinceSync = true;
    this.stats.batches++;
    this.durableStore = store;
    this.outage.recovered();
    this.release(upTo);
  }

  /** The batch in flight, and everything recorded since, will never be durable: see the class comment. */
  private lose(e: unknown): void {
    const code = this.outage.failed(e);
    this.stats.lostBatches++;
    this.queue = [];
    this.appended = this.written;
    this.latest = this.durableStore;
    if (this.snapshotWanted !== undefined && this.snapshotWanted.generation > this.written) this.snapshotWanted = undefined;
    this.rollBack?.(this.durableStore);
    // Written but held for the snapshot's check (`durable`): not lost, they go once it is done.
    const lost = this.waiters.filter((w) => w.gen > this.written);
    this.waiters = this.waiters.filter((w) => w.gen <= this.written);
    for (const w of lost) w.release(code);
  }

  private wakeIdlers(): void {
    if (this.flushing || this.snapshotting !== undefined) return;
    const idlers = this.idlers;
    this.idlers = [];
    for (const r of idlers) r();
  }

  private release(upTo: number): void {
    this.written = upTo;
    const shown = this.durable;
    let n = 0;
    while (n < this.waiters.length && this.waiters[n]!.gen <= shown) n++;
    const ready = this.waiters.splice(0, n);
    for (const w of ready) w.release();
  }

  /**
   * `--sync batch`'s once-a-second fdatasync. Its replies have left already, so a failure cannot
   * be answered; it is logged, and a snapshot (which rewrites the whole store) is asked for.
   */
  private async syncNow(): Promise<void> {
    if (!this.dirtySinceSync || this.closed) return;
    this.dirtySinceSync = false;
    try {
      await this.file.sync();
      this.stats.syncs++;
    } catch (e) {
      this.options.log.error({ err: (e as Error).message }, 'fdatasync of the log failed; a snapshot will rewrite the store');
      this.snapshotWanted = this.durableStore;
      this.kick();
    }
  }

  /** Starts a new segment after everything appended so far (called with nothing queued). */
  private async rotate(): Promise<void> {
    const first = this.appended + 1;
    if (first === this.segmentFirst) return; // the current segment is still empty
    const next = await SegmentFile.open(join(this.options.dir, segmentName(first)), 'w', this.options.openSegment);
    const old = this.file;
    this.file = next;
    this.fenced = false;
    this.segmentFirst = first;
    fsyncDir(this.options.dir);
    try {
      await old.sync();
    } finally {
      await old.close();
    }
  }

  private async writeSnapshot(store: Store): Promise<void> {
    const bytes = await encodeInSlices(store);
    await writeSnapshotFile(this.options.dir, bytes);
    this.snapshotBytes = bytes.length;
    this.stats.snapshots++;
    this.prune();
    this.options.log.info({ generation: store.generation, bytes: bytes.length }, 'snapshot written');
  }

  /**
   * Drops the segments the previous snapshot no longer needs. The previous snapshot is kept as a
   * fallback, so the log must still reach back to it: a segment goes once its last record is at or
   * before `snapshot.prev`'s generation.
   */
  private prune(): void {
    const dir = this.options.dir;
    const prev = readHead(join(dir, SNAPSHOT_PREV), 64);
    let keepAfter = 0;
    if (prev !== undefined) {
      try {
        keepAfter = snapshotGeneration(prev);
      } catch {
        return; // an unreadable fallback: keep every segment
      }
    }
    const segs = segments(dir);
    for (let i = 0; i + 1 < segs.length; i++) {
      if (segs[i + 1]!.first - 1 <= keepAfter) unlinkSync(join(dir, segs[i]!.name));
    }
  }
}

/**
 * When the recovered snapshot's check starts if no output came first (a daemon nobody talks to
 * still closes the file and acknowledges writes); records checked per turn of the event loop
 * (about a millisecond's work: the check must not be the pause a client sees).
 */
const CHECK_LATER_MS = 1000;
const CHECK_SLICE = 5000;

/** Nodes encoded per turn of the event loop: a few milliseconds of work, then requests again. */
const SNAPSHOT_SLICE = 20_000;

/**
 * `encodeInSlices(store)` is `encodeSnapshot(store)` spread over turns of the event loop (the
 * version is immutable, so requests may change the live store meanwhile): at 10⁶ nodes a snapshot
 * took about a second of CPU, which used to stop every client for that long.
 */
export async function encodeInSlices(store: Store): Promise<Buffer> {
  const steps = snapshotSteps(store, SNAPSHOT_SLICE);
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
