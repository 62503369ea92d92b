import { closeSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Log } from '../logger.js';
import { generationAndTime, type Version } from '../../store/index.js';
import { frameRecord, scanRecords } from './wal.js';

/**
 * History on disk (issue 14): the records of store/history.ts, in the bytes it keeps them in
 * memory (store/history-codec.ts: encoded once per commit), in segment files beside the
 * write-ahead log, `history-<N>` (N a sequence number, zero-padded so names sort), framed and
 * checksummed as the log's records are (wal.ts). A new segment is started at every start and
 * once the current one holds `segmentBytes`; whole segments are removed, oldest first, once the
 * segments together pass the retention's bytes or a segment's newest record (its mtime) is older
 * than the retention's age. The current segment is never removed.
 *
 * Records are written at the end of the turn of the event loop that made them, before the replies
 * of that turn leave (process.nextTick runs before the flush scheduler's setImmediate), with
 * write(2) and no fdatasync: they survive a crash of the process (kill -9) and a live update, not
 * necessarily a crash of the host. History is a witness, not the store: at a start, the records
 * that end exactly at the recovered store are kept; records past it (never made durable) are
 * dropped, and if the records end before it (a host crash lost their tail) the history on disk
 * cannot be joined to the store, so memory history starts afresh there (a warning says so).
 * A failed write (a full disk) is logged once and the record dropped: history never changes what
 * clients see.
 */
export interface HistoryRetention {
  /** Segments whose newest record is older than this many milliseconds go. */
  readonly ageMs: number;
  /** Segments go, oldest first, while all of them hold more than this many bytes. */
  readonly bytes: number;
}

export const HISTORY_RETENTION_DEFAULT: HistoryRetention = Object.freeze({ ageMs: 7 * 24 * 3600 * 1000, bytes: 256 * 1024 * 1024 });

const SEGMENT = /^history-(\d{16})$/;

function segmentName(n: number): string {
  return `history-${String(n).padStart(16, '0')}`;
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

export class HistoryLog {
  private fd: number;
  private seq: number;
  private size = 0;
  private pending: Buffer[] = [];
  private scheduled = false;
  private failed = false;
  private readonly segmentBytes: number;

  constructor(
    private readonly dir: string,
    private readonly retention: HistoryRetention,
    private readonly log: Log,
    private readonly now: () => number = Date.now,
  ) {
    const segs = historySegments(dir);
    this.seq = (segs.length === 0 ? 0 : segs[segs.length - 1]!.seq) + 1;
    // A few segments per retention, so removal is gradual; small enough to rotate often.
    this.segmentBytes = Math.max(64 * 1024, Math.min(16 * 1024 * 1024, Math.floor(retention.bytes / 8)));
    this.fd = openSync(join(dir, segmentName(this.seq)), 'a', 0o600);
  }

  /**
   * `load(live, max)`: the records on disk that end at `live` (oldest first, consecutive, each
   * its bytes as history keeps them: store/history.ts `restore`), at most `max` of them, and the
   * time of the record before the first (when the version history starts from was made). Read
   * newest segment first, so a start reads what memory will keep, not all. Only each record's
   * generation and time are read here (its checksum was checked): a start, and a live update's
   * pause, wait for the reading, not for decoding every record (~0.6 s of a full default window).
   */
  load(live: Version, max: number): { records: Buffer[]; floorTime: number | undefined } {
    const segs = historySegments(this.dir).filter((s) => s.seq < this.seq);
    const newestFirst: Buffer[] = [];
    let expect = live.generation;
    let floorTime: number | undefined;
    let firstTime: number | undefined;
    let joined = false;
    let skipped = 0;
    outer: for (let i = segs.length - 1; i >= 0; i--) {
      const recs = this.readSegment(segs[i]!.name);
      for (let k = recs.length - 1; k >= 0; k--) {
        const { bytes, generation, time } = recs[k]!;
        if (!joined) {
          // Records after the durable store (a rolled-back batch, or an unsynced log tail) are not history.
          if (generation > expect) {
            skipped++;
            continue;
          }
          if (generation < expect) break outer; // the tail that reached the store was lost
          joined = true;
        }
        if (generation !== expect) {
          if (generation > expect) continue; // superseded by a rolled-back generation given again
          break outer;
        }
        if (newestFirst.length === max) {
          floorTime = time;
          break outer;
        }
        newestFirst.push(bytes);
        firstTime = time;
        expect--;
      }
    }
    if (!joined && live.generation > 0 && segs.length > 0) {
      this.log.warn({ generation: live.generation, dropped: skipped }, 'history on disk does not reach the recovered store; history starts afresh');
    }
    const records = newestFirst.reverse();
    if (floorTime === undefined && records.length > 0 && expect > 0) floorTime = firstTime;
    return { records, floorTime };
  }

  /** A segment's records with their heads, up to a torn or corrupt one. */
  private readSegment(name: string): { bytes: Buffer; generation: number; time: number }[] {
    const scan = scanRecords(readFileSync(join(this.dir, name)));
    if (scan.problem !== undefined) this.log.warn({ segment: name, problem: scan.problem }, 'history segment ends in a torn record; its good prefix is used');
    const out: { bytes: Buffer; generation: number; time: number }[] = [];
    for (const bytes of scan.records) {
      try {
        const head = { generation: 0, time: 0 };
        generationAndTime(bytes, head);
        out.push({ bytes, generation: head.generation, time: head.time });
      } catch (e) {
        this.log.warn({ segment: name, err: (e as Error).message }, 'history segment holds a corrupt record; the rest of it is ignored');
        break;
      }
    }
    return out;
  }

  /**
   * `append(bytes)` queues a record as history keeps it in memory (store/history-codec.ts: one
   * encoding for both), written at the end of this turn of the event loop; its size on disk.
   * The bytes are copied (framed): the caller's view may be reused.
   */
  append(bytes: Buffer): number {
    const framed = frameRecord(bytes);
    this.pending.push(framed);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(() => this.flush());
    }
    return framed.length;
  }

  /** Writes what is queued (also at close and before a live update's hand-over). */
  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    try {
      let off = 0;
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
      this.size += buf.length;
      this.failed = false;
    } catch (e) {
      if (!this.failed) this.log.warn({ err: (e as Error).message }, 'history could not be written; records are dropped until it can');
      this.failed = true;
      return;
    }
    if (this.size >= this.segmentBytes) this.rotate();
  }

  private rotate(): void {
    closeSync(this.fd);
    this.seq++;
    this.size = 0;
    this.fd = openSync(join(this.dir, segmentName(this.seq)), 'a', 0o600);
    this.prune();
  }

  /**
   * Removes the earlier segments that hold no record: every start opens a segment, so a daemon
   * started often (socket activation with `--idle-exit`) would otherwise leave one empty file per
   * start until the retention's age passes, and every start reads them all. Not for a live update's
   * next process: its parent still writes to its own segment, perhaps empty so far, and keeps
   * doing so if the update gives up; an unlinked file would lose those records.
   */
  dropEmpty(): void {
    for (const s of historySegments(this.dir)) {
      if (s.seq < this.seq && statSync(join(this.dir, s.name)).size === 0) unlinkSync(join(this.dir, s.name));
    }
  }

  /** Removes the segments retention no longer keeps (never the current one). */
  prune(): void {
    const segs = historySegments(this.dir).filter((s) => s.seq < this.seq);
    const sizes = segs.map((s) => statSync(join(this.dir, s.name)));
    let total = sizes.reduce((n, st) => n + st.size, 0) + this.size;
    const oldest = this.now() - this.retention.ageMs;
    for (let i = 0; i < segs.length; i++) {
      if (total <= this.retention.bytes && sizes[i]!.mtimeMs >= oldest) break;
      unlinkSync(join(this.dir, segs[i]!.name));
      total -= sizes[i]!.size;
    }
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}
