import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Log } from '../logger.js';
import { generationAndTime, toEnd, type Steps, type Version } from '../../store/index.js';
import { RECORD_HEAD, recordAt, sealRecords } from './wal.js';

/**
 * History on disk (issue 14): the records of store/history.ts, in the bytes it keeps them in
 * memory (store/history-codec.ts: encoded once per commit), in segment files beside the
 * write-ahead log, `history-<N>` (N a sequence number, zero-padded so names sort), framed and
 * checksummed as the log's records are (wal.ts). A new segment is started at the first record of
 * every start and once the current one holds `segmentBytes`; whole segments are removed, oldest
 * first, once the segments together pass the retention's bytes or a segment's newest record (its
 * mtime) is older than the retention's age. The current segment is never removed, nor, at a live
 * update's start, the one its parent still writes to (`prune`).
 *
 * Records are queued (`append`) as history writes them and written (`flush`) by the daemon just
 * before the write-ahead log writes its batch of the same commits (server/daemon.ts
 * `writeHistory`; without a log, as each turn of the event loop ends): never behind the log, so a
 * crash never leaves the store recovered past the records (which would cut history on disk off
 * from it, below). One write(2) a batch, no fdatasync: they survive a crash of the process (kill -9) and a live update, not
 * necessarily a crash of the host. History is a witness, not the store: at a start, the records
 * that end exactly at the recovered store are kept; records past it (never made durable) are
 * dropped, and if the records end before it (a host crash lost their tail) the history on disk
 * cannot be joined to the store, so memory history starts afresh there (a warning says so).
 * A failed write (a full disk) is logged once and the record dropped: history never changes what
 * clients see.
 *
 * A process's own segment is opened at its first record, numbered after every segment there then
 * is: a live update's next process starts while the previous one still writes, and may rotate,
 * into the segment after its own; the next process must neither share that file (its own records
 * would be read as the previous process's) nor leave it out of what it loads.
 */
export interface HistoryRetention {
  /** Segments whose newest record is older than this many milliseconds go. */
  readonly ageMs: number;
  /** Segments go, oldest first, while all of them hold more than this many bytes. */
  readonly bytes: number;
}

export const HISTORY_RETENTION_DEFAULT: HistoryRetention = Object.freeze({ ageMs: 7 * 24 * 3600 * 1000, bytes: 256 * 1024 * 1024 });

const SEGMENT = /^history-(\d{16})$/;

/** The queue's buffer to start with (a turn's records of short writes fit), and the bytes queued past which `append` writes them at once. */
const OUT_START = 64 * 1024;
const OUT_FLUSH = 1024 * 1024;

function segmentName(n: number): string {
  return `history-${String(n).padStart(16, '0')}`;
}

/**
 * Records `loadSteps` reads between two of its steps: 3-5 ms of a start's reading (checksums and
 * each record's head, in code not yet optimised), where a full default window read in one go held
 * the event loop ~0.2 s (bench/RESULTS.md, "History").
 */
const LOAD_STEP_RECORDS = 4096;

/** What `load` gives: the records read back, oldest first, and the time of the one before them. */
export interface Loaded {
  readonly records: Buffer[];
  readonly floorTime: number | undefined;
}

interface SegmentInfo {
  readonly name: string;
  readonly seq: number;
}

function historySegments(dir: string): SegmentInfo[] {
  const out: SegmentInfo[] = [];
  for (const name of readdirSync(dir)) {
    const m = SEGMENT.exec(name);
    if (m) out.push({ name, seq: Number(m[1]) });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

/**
 * Where the records `prepare` read end: at `generation`, in segment `seq`, `offset` bytes in
 * (what `since` reads from).
 */
interface Prepared {
  readonly generation: number;
  readonly seq: number;
  readonly offset: number;
}

/**
 * A segment's good records from byte `from` on: where each one's payload lies in `buf`, its
 * generation and time, in parallel arrays. No object or view per record: a start reads ~10^5 of
 * them, and those objects were the young generation's collections' work (about a third of the
 * reading).
 */
class SegmentRecords {
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  readonly generations: number[] = [];
  readonly times: number[] = [];

  constructor(
    readonly buf: Buffer,
    readonly from: number,
  ) {}

  get length(): number {
    return this.starts.length;
  }

  bytes(k: number): Buffer {
    return this.buf.subarray(this.starts[k], this.ends[k]);
  }

  /** Where record `k` ends in the file. */
  endOf(k: number): number {
    return this.from + this.ends[k]!;
  }
}

export class HistoryLog {
  /** Our segment, once opened (the first record: see above). */
  private fd: number | undefined;
  private seq: number;
  private size = 0;
  /**
   * The records queued for `flush`, framed one after another (wal.ts; their checksums written by
   * `flush`), in one buffer kept from flush to flush: no object per record. Issue 14: a Buffer
   * framed per record, each commit's record asked for at once and a write(2) per turn of I/O made
   * history cost a `--data-dir` daemon 1.19-1.21x its CPU per write pipelined (bench/RESULTS.md,
   * "History", thirteenth pass).
   */
  private out = Buffer.allocUnsafeSlow(OUT_START);
  private used = 0;
  private failed = false;
  private prepared: Prepared | undefined;
  private readonly segmentBytes: number;

  constructor(
    private readonly dir: string,
    private readonly retention: HistoryRetention,
    private readonly log: Log,
    private readonly now: () => number = Date.now,
  ) {
    // The segments numbered below `seq` were there before us: the only ones `prune` and `dropEmpty` touch.
    this.seq = this.nextSeq();
    // A few segments per retention, so removal is gradual; small enough to rotate often.
    this.segmentBytes = Math.max(64 * 1024, Math.min(16 * 1024 * 1024, Math.floor(retention.bytes / 8)));
  }

  private nextSeq(): number {
    const segs = historySegments(this.dir);
    return (segs.length === 0 ? 0 : segs[segs.length - 1]!.seq) + 1;
  }

  /** The segments whose records a load reads: all but our own. */
  private earlier(): SegmentInfo[] {
    const segs = historySegments(this.dir);
    return this.fd === undefined ? segs : segs.filter((s) => s.seq < this.seq);
  }

  /**
   * `load(live, max)`: the records on disk that end at `live` (oldest first, consecutive, each
   * its bytes as history keeps them: store/history.ts `restore`), at most `max` of them, and the
   * time of the record before the first (when the version history starts from was made). Read
   * newest segment first, so a start reads what memory will keep, not all. Only each record's
   * generation and time are read here (its checksum was checked): a start, and a live update's
   * pause, wait for the reading, not for decoding every record (~0.6 s of a full default window).
   */
  load(live: Version, max: number): Loaded {
    return toEnd(this.loadSteps(live, max));
  }

  /**
   * `loadSteps(live, max, step?)` is `load` a part at a time: the generator stops after every
   * `step` records it reads or walks and after each segment file it reads, and returns what `load`
   * returns. A restart reads history back this way, a step per turn of its event loop, so that its
   * clients are answered between steps (server/daemon.ts `readHistoryBack`). Segments removed
   * meanwhile (retention, as the process's own segment rotates) hold no records.
   */
  *loadSteps(live: Version, max: number, step = LOAD_STEP_RECORDS): Steps<Loaded> {
    const read = yield* this.readBack(live, max, false, step);
    return { records: read.records, floorTime: read.floorTime };
  }

  /**
   * `prepare(live, max)`: `load`, read while another process still writes segments (a live
   * update's pre-copy, server/live-update/take-over.ts: `live` is the version pre-copied), or
   * undefined when the records on disk do not reach `live`. Nothing is logged: the other process
   * may be in the middle of a record. `since` then gives the records written after these.
   */
  prepare(live: Version, max: number): Loaded | undefined {
    const read = toEnd(this.readBack(live, max, true, Infinity));
    this.prepared = read.joined ? { generation: live.generation, seq: read.seq, offset: read.offset } : undefined;
    return read.joined ? { records: read.records, floorTime: read.floorTime } : undefined;
  }

  /**
   * `since(live)`: the records written after those `prepare` gave, oldest first, up to `live`
   * (the pause's version), read from the byte where those ended: a live update's pause reads only
   * them (a full default window took ~190 ms to read, every client waiting: bench/RESULTS.md,
   * "History read back from disk"). Undefined when they do not join (no `prepare`, a rollback
   * below the prepared version, a gap): the caller then `load`s all again. Generations given
   * again after a rollback replace the ones they supersede, as `load` takes them.
   */
  since(live: Version): Buffer[] | undefined {
    const p = this.prepared;
    this.prepared = undefined;
    if (p === undefined || live.generation < p.generation) return undefined;
    const records: Buffer[] = [];
    let last = p.generation;
    for (const s of this.earlier()) {
      if (s.seq < p.seq) continue;
      const recs = toEnd(this.readSegment(s.name, s.seq === p.seq ? p.offset : 0, false, Infinity));
      for (let k = 0; k < recs.length; k++) {
        const generation = recs.generations[k]!;
        if (generation <= p.generation || generation > last + 1) return undefined;
        if (generation <= last) records.length -= last - generation + 1;
        records.push(recs.bytes(k));
        last = generation;
      }
    }
    // Records after the live store (a rolled-back batch not given again yet) are not history.
    if (last > live.generation) records.length -= last - live.generation;
    else if (last < live.generation) return undefined;
    return records;
  }

  /**
   * The records from the newest back to `live`'s, at most `max`; `joined` when they reach it, and
   * where the one of `live` ends on disk (segment and offset: what `extend` reads from).
   */
  private *readBack(live: Version, max: number, quiet: boolean, step: number): Steps<Loaded & { joined: boolean; seq: number; offset: number }> {
    const segs = this.earlier();
    // The records kept, newest first: the segment each is in and its place there.
    const inSeg: SegmentRecords[] = [];
    const at: number[] = [];
    let expect = live.generation;
    let floorTime: number | undefined;
    let firstTime: number | undefined;
    let joined = false;
    let skipped = 0;
    let seq = 0;
    let offset = 0;
    let walked = 0;
    outer: for (let i = segs.length - 1; i >= 0; i--) {
      const recs = yield* this.readSegment(segs[i]!.name, 0, quiet, step);
      for (let k = recs.length - 1; k >= 0; k--) {
        if (++walked === step) {
          walked = 0;
          yield;
        }
        const generation = recs.generations[k]!;
        if (!joined) {
          // Records after the durable store (a rolled-back batch, or an unsynced log tail) are not history.
          if (generation > expect) {
            skipped++;
            continue;
          }
          if (generation < expect) break outer; // the tail that reached the store was lost
          joined = true;
          seq = segs[i]!.seq;
          offset = recs.endOf(k);
        }
        if (generation !== expect) {
          if (generation > expect) continue; // superseded by a rolled-back generation given again
          break outer;
        }
        if (at.length === max) {
          floorTime = recs.times[k];
          break outer;
        }
        inSeg.push(recs);
        at.push(k);
        firstTime = recs.times[k];
        expect--;
      }
    }
    if (!joined && live.generation > 0 && segs.length > 0 && !quiet) {
      this.log.warn({ generation: live.generation, dropped: skipped }, 'history on disk does not reach the recovered store; history starts afresh');
    }
    const n = at.length;
    const records = new Array<Buffer>(n);
    for (let j = 0; j < n; j++) {
      records[j] = inSeg[n - 1 - j]!.bytes(at[n - 1 - j]!);
      if (++walked === step) {
        walked = 0;
        yield;
      }
    }
    if (floorTime === undefined && n > 0 && expect > 0) floorTime = firstTime;
    return { records, floorTime, joined, seq, offset };
  }

  /**
   * A segment's records from byte `from` (a record's start), up to a torn or corrupt one, stopping
   * after the file is read and every `step` records. `quiet`: a torn end is not reported (another
   * process may be writing it). A segment that is gone (retention removed it after the segments
   * were listed) holds none.
   */
  private *readSegment(name: string, from: number, quiet: boolean, step: number): Steps<SegmentRecords> {
    let buf: Buffer;
    try {
      buf = yield* readFrom(join(this.dir, name), from, step);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      buf = Buffer.alloc(0);
    }
    const out = new SegmentRecords(buf, from);
    const head = { generation: 0, time: 0 };
    let off = 0;
    let n = 0;
    let mark = 0;
    if (step !== Infinity) yield;
    while (off < buf.length) {
      // A step ends at `step` records or a piece's bytes checked, whichever comes first: a guest's
      // large records must not make one step long (a record may be a whole transaction's).
      if (++n === step || (step !== Infinity && off - mark >= READ_PIECE)) {
        n = 0;
        mark = off;
        yield;
      }
      const end = recordAt(buf, off);
      if (typeof end === 'string') {
        if (!quiet) this.log.warn({ segment: name, problem: end }, 'history segment ends in a torn record; its good prefix is used');
        break;
      }
      const start = off + RECORD_HEAD;
      try {
        generationAndTime(buf, head, start, end);
      } catch (e) {
        this.log.warn({ segment: name, err: (e as Error).message }, 'history segment holds a corrupt record; the rest of it is ignored');
        break;
      }
      out.starts.push(start);
      out.ends.push(end);
      out.generations.push(head.generation);
      out.times.push(head.time);
      off = end;
    }
    return out;
  }

  /**
   * `append(bytes, start?, end?)` queues a record as history keeps it in memory
   * (store/history-codec.ts: one encoding for both; `bytes[start, end)`) until `flush`; its size
   * on disk. The bytes are copied: the caller's may be reused. Past `OUT_FLUSH` queued bytes it
   * writes them at once: a turn's flood of commits holds at most that much here.
   */
  append(bytes: Buffer, start = 0, end = bytes.length): number {
    const need = RECORD_HEAD + end - start;
    if (this.used + need > this.out.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(2 * this.out.length, this.used + need));
      this.out.copy(grown, 0, 0, this.used);
      this.out = grown;
    }
    // Its checksum is written with the others' when they are written (`flush`).
    this.out.writeUInt32LE(end - start, this.used);
    this.used += RECORD_HEAD + bytes.copy(this.out, this.used + RECORD_HEAD, start, end);
    if (this.used >= OUT_FLUSH) this.flush();
    return need;
  }

  /** Writes what is queued: one write(2) (also at close and before a live update's hand-over). */
  flush(): void {
    if (this.used === 0) return;
    const buf = this.out;
    const n = this.used;
    this.used = 0;
    // A large record grew the buffer: it is not kept past its flush.
    if (buf.length > OUT_FLUSH) this.out = Buffer.allocUnsafeSlow(OUT_START);
    sealRecords(buf, 0, n);
    try {
      this.fd ??= this.open();
      let off = 0;
      while (off < n) off += writeSync(this.fd, buf, off, n - off);
      this.size += n;
      this.failed = false;
    } catch (e) {
      if (!this.failed) this.log.warn({ err: (e as Error).message }, 'history could not be written; records are dropped until it can');
      this.failed = true;
      return;
    }
    if (this.size >= this.segmentBytes) this.rotate();
  }

  /** Our segment, numbered after every one there is (see the head of this file). */
  private open(): number {
    this.seq = Math.max(this.seq, this.nextSeq());
    return openSync(join(this.dir, segmentName(this.seq)), 'a', 0o600);
  }

  private rotate(): void {
    closeSync(this.fd!);
    this.fd = undefined;
    this.seq++;
    this.size = 0;
    this.fd = this.open();
    this.prune();
  }

  /**
   * Removes the earlier segments that hold no record: builds before this one opened a segment at
   * every start, so a daemon started often (socket activation with `--idle-exit`) left one empty
   * file per start until the retention's age passed, and every start read them all. Not for a live
   * update's next process: its parent (an older build) may still write to its own segment, perhaps
   * empty so far, and keeps doing so if the update gives up; an unlinked file would lose those records.
   */
  dropEmpty(): void {
    for (const s of historySegments(this.dir)) {
      if (s.seq < this.seq && statSync(join(this.dir, s.name)).size === 0) unlinkSync(join(this.dir, s.name));
    }
  }

  /**
   * Removes the segments retention no longer keeps (never the current one). `parentWrites`: a
   * live update's next process, whose parent still has its own segment open, the newest of the
   * earlier ones, and keeps writing to it if the update gives up: that one stays whatever its age
   * (a parent idle for longer than the retention's age would otherwise write on into an unlinked
   * file, and every record it made after that would be lost).
   */
  prune(parentWrites = false): void {
    const segs = historySegments(this.dir).filter((s) => s.seq < this.seq);
    const sizes = segs.map((s) => statSync(join(this.dir, s.name)));
    let total = sizes.reduce((n, st) => n + st.size, 0) + this.size;
    const oldest = this.now() - this.retention.ageMs;
    const removable = parentWrites ? segs.length - 1 : segs.length;
    for (let i = 0; i < removable; i++) {
      if (total <= this.retention.bytes && sizes[i]!.mtimeMs >= oldest) break;
      unlinkSync(join(this.dir, segs[i]!.name));
      total -= sizes[i]!.size;
    }
  }

  close(): void {
    this.flush();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Bytes `readFrom` reads between two steps: a segment is up to 16 MiB, which one read took ~5-10
 * ms to copy in, every client waiting.
 */
const READ_PIECE = 1024 * 1024;

/**
 * `readFrom(path, from, step)`: a file's bytes from `from` on (a live update's pause reads only
 * the records written since its pre-copy), read a piece at a time, stopping between pieces when
 * `step` (`readSegment`'s: finite when its reading goes a step at a time). The file is open
 * until the last piece is read: its callers run it to its end (Daemon `readHistoryBack` has no
 * way to stop a read-back half way).
 */
function* readFrom(path: string, from: number, step: number): Steps<Buffer> {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(Math.max(0, size - from));
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, Math.min(READ_PIECE, buf.length - off), from + off);
      if (n === 0) break;
      off += n;
      if (step !== Infinity && off < buf.length) yield;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}
