import { closeSync, ftruncateSync, openSync, unlinkSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  applyDeltas,
  createStore,
  decodeDelta,
  decodeSnapshot,
  deltaOf,
  encodeDelta,
  snapshotGeneration,
  snapshotSteps,
  type Change,
  type Delta,
  type Store,
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
import { frameRecord, scanRecords } from './wal.js';

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
  readonly log: Logger;
  /** Take a snapshot (and drop old log segments) after this many records. */
  readonly snapshotEvery?: number;
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
  let base: Store | undefined;
  let from: Recovery['snapshot'] = 'none';
  let sawSnapshot = false;
  for (const name of [SNAPSHOT, SNAPSHOT_PREV] as const) {
    const bytes = readIfExists(join(dir, name));
    if (bytes === undefined) continue;
    sawSnapshot = true;
    try {
      base = decodeSnapshot(bytes);
      from = name;
      break;
    } catch (e) {
      warnings.push(`${name}: ${(e as Error).message}; trying the previous snapshot`);
    }
  }
  const segs = segments(dir);
  if (base === undefined) {
    if (sawSnapshot && (segs.length === 0 || segs[0]!.first !== 1)) {
      throw new Error(`${dir}: no readable snapshot and the log does not start at generation 1; refusing to start`);
    }
    base = createStore();
  }
  const deltas: Delta[] = [];
  let last = base.generation;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const path = join(dir, seg.name);
    const bytes = readIfExists(path) ?? Buffer.alloc(0);
    const scan = scanRecords(bytes);
    let problem = scan.problem;
    let good = scan.goodBytes;
    // The good prefix first; then what stopped the scan, if anything.
    for (let r = 0; r < scan.records.length; r++) {
      let d: Delta;
      try {
        d = decodeDelta(scan.records[r]!);
      } catch (e) {
        problem = (e as Error).message;
        good = offsetOf(scan.records, r);
        break;
      }
      if (d.generation <= last) continue;
      if (d.generation !== last + 1) {
        throw new Error(`${path}: generation ${d.generation} follows ${last}; records are missing, refusing to start`);
      }
      deltas.push(d);
      last = d.generation;
    }
    if (problem !== undefined) {
      const later = segs.slice(i + 1).some((s) => (readIfExists(join(dir, s.name))?.length ?? 0) > 0);
      if (later) throw new Error(`${path}: ${problem}, and later segments hold records; refusing to start`);
      warnings.push(`${seg.name}: ${problem}; dropped the tail (${bytes.length - good} bytes) as a torn write`);
      const fd = openSync(path, 'r+');
      try {
        ftruncateSync(fd, good);
      } finally {
        closeSync(fd);
      }
    }
  }
  return { store: applyDeltas(base, deltas), snapshot: from, replayed: deltas.length, warnings };
}

/** Byte offset of record `r` in the segment, from the payloads' lengths. */
function offsetOf(records: readonly Buffer[], r: number): number {
  let off = 0;
  for (let i = 0; i < r; i++) off += 8 + records[i]!.length;
  return off;
}

/**
 * The live side of persistence: `record(before, after)` is called for every new live version
 * (`Daemon.install`, the one place the live store changes) and queues its delta; a background
 * loop writes each batch with one writev, fdatasyncs it (`always`), and then releases the output
 * that waited for it. It is the daemon's `OutputGate`: a reply or event sent while commits are
 * queued or in flight carries the newest generation and leaves once that generation is durable.
 * Gating all output, reads included, is what keeps a reply from revealing a write that a crash
 * could still undo.
 */
export class Journal implements OutputGate {
  /** Newest generation recorded, and newest one durable in the sense of the sync mode. */
  private appended: number;
  durable: number;
  private queue: Buffer[] = [];
  private waiters: { gen: number; release: () => void }[] = [];
  private flushing = false;
  private closed = false;
  private idlers: (() => void)[] = [];
  private sinceSnapshot = 0;
  private snapshotWanted: Store | undefined;
  private snapshotting: Promise<void> | undefined;
  private dirtySinceSync = false;
  private readonly syncTimer: NodeJS.Timeout | undefined;
  readonly stats = { records: 0, batches: 0, syncs: 0, snapshots: 0 };

  private constructor(
    private readonly options: JournalOptions,
    private fh: FileHandle,
    private segmentFirst: number,
    generation: number,
  ) {
    this.appended = this.durable = generation;
    if (options.sync === 'batch') {
      this.syncTimer = setInterval(() => void this.syncNow(), 1000);
      this.syncTimer.unref();
    }
  }

  /** `Journal.open(options, store)` starts a new log segment after the recovered `store`. */
  static async open(options: JournalOptions, store: Store): Promise<Journal> {
    const first = store.generation + 1;
    // After `recover`, a segment of that name is empty or absent: anything in it would have been
    // replayed (the store would be past `first`). Never truncate a segment that holds records.
    const fh = await open(join(options.dir, segmentName(first)), 'a', 0o600);
    if ((await fh.stat()).size > 0) {
      await fh.close();
      throw new Error(`${segmentName(first)} already holds records after generation ${store.generation}; refusing to overwrite it`);
    }
    fsyncDir(options.dir);
    return new Journal(options, fh, first, store.generation);
  }

  get mode(): SyncMode {
    return this.options.sync;
  }

  /**
   * `record(before, after, changes?)` queues the delta from the live version to the next;
   * `changes`, when they cover every changed node, narrow the walk (store/delta.ts `deltaOf`).
   */
  record(before: Store, after: Store, changes?: readonly Change[]): void {
    if (this.closed) throw new Error('journal closed');
    const hints = changes?.map((c) => c.path);
    this.queue.push(frameRecord(encodeDelta(deltaOf(before, after, hints))));
    this.appended = after.generation;
    this.stats.records++;
    if (++this.sinceSnapshot >= (this.options.snapshotEvery ?? 100_000)) {
      this.sinceSnapshot = 0;
      this.snapshotWanted = after;
    }
    this.kick();
  }

  pending(): number | undefined {
    return this.options.sync !== 'none' && this.appended > this.durable ? this.appended : undefined;
  }

  after(generation: number, release: () => void): void {
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

  /** `close(store)`: flush, sync, take a final snapshot (a fast next start), close the segment. */
  async close(store: Store): Promise<void> {
    await this.idle();
    this.closed = true;
    if (this.syncTimer !== undefined) clearInterval(this.syncTimer);
    await this.fh.datasync();
    if (store.generation > 0) await this.writeSnapshot(store);
    await this.fh.close();
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
          const batch = this.queue;
          const upTo = this.appended;
          this.queue = [];
          await this.fh.writev(batch);
          if (this.options.sync === 'always') {
            await this.fh.datasync();
            this.stats.syncs++;
          } else {
            this.dirtySinceSync = true;
          }
          this.stats.batches++;
          this.release(upTo);
        } else if (this.snapshotWanted !== undefined && this.snapshotting === undefined && !this.closed) {
          // Everything recorded is written: later records go to a new segment, so that the old
          // ones can be dropped once the snapshot is durable. The snapshot itself is written in
          // the background; commits keep flowing meanwhile.
          const store = this.snapshotWanted;
          this.snapshotWanted = undefined;
          await this.rotate();
          this.snapshotting = this.writeSnapshot(store)
            .catch((e: unknown) => {
              // The log still holds everything; the next snapshot will try again.
              this.options.log.error({ err: e }, 'snapshot failed; the log is kept');
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
      // Without a working log nothing acknowledged can be promised any more. Exit, and let the
      // next start recover what reached the disk (PostgreSQL's "fsyncgate" lesson: never retry).
      this.options.log.fatal({ err: e }, 'write-ahead log failed; exiting');
      process.exit(1);
    }
    this.flushing = false;
    this.wakeIdlers();
  }

  private wakeIdlers(): void {
    if (this.flushing || this.snapshotting !== undefined) return;
    const idlers = this.idlers;
    this.idlers = [];
    for (const r of idlers) r();
  }

  private release(upTo: number): void {
    this.durable = upTo;
    let n = 0;
    while (n < this.waiters.length && this.waiters[n]!.gen <= upTo) n++;
    const ready = this.waiters.splice(0, n);
    for (const w of ready) w.release();
  }

  private async syncNow(): Promise<void> {
    if (!this.dirtySinceSync || this.closed) return;
    this.dirtySinceSync = false;
    await this.fh.datasync();
    this.stats.syncs++;
  }

  /** Starts a new segment after everything appended so far (called with nothing queued). */
  private async rotate(): Promise<void> {
    const old = this.fh;
    const first = this.appended + 1;
    if (first === this.segmentFirst) return; // the current segment is still empty
    this.fh = await open(join(this.options.dir, segmentName(first)), 'w', 0o600);
    this.segmentFirst = first;
    fsyncDir(this.options.dir);
    await old.datasync();
    await old.close();
  }

  private async writeSnapshot(store: Store): Promise<void> {
    const bytes = await encodeInSlices(store);
    await writeSnapshotFile(this.options.dir, bytes);
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

/** Nodes encoded per turn of the event loop: a few milliseconds of work, then requests again. */
const SNAPSHOT_SLICE = 20_000;

/**
 * `encodeInSlices(store)` is `encodeSnapshot(store)` spread over turns of the event loop (the
 * version is immutable, so requests may change the live store meanwhile): at 10⁶ nodes a snapshot
 * took about a second of CPU, which used to stop every client for that long.
 */
async function encodeInSlices(store: Store): Promise<Buffer> {
  const steps = snapshotSteps(store, SNAPSHOT_SLICE);
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
