import { crc32 } from '../../store/index.js';

/**
 * The write-ahead log's framing: each record is `length u32 | crc32 u32 | payload`, little-endian,
 * the checksum over the payload. A crash can leave the last record torn (short) or, on some file
 * systems, garbage after the last good record; both are found by the length and checksum, so a
 * reader knows exactly where the good prefix ends.
 */
export const RECORD_HEAD = 8;
/** A record longer than this is garbage in a length field, not a commit (a commit is < 1 MiB). */
const RECORD_MAX = 64 * 1024 * 1024;

/**
 * The first record of every segment this build writes: a JSON record, as builds before the
 * binary records (store/delta-codec.ts) wrote them, of the largest generation there is and no
 * ops. Such a build, started on this build's log, reads it before any binary record and refuses
 * to start ("generation 9007199254740991 follows …; records are missing"): without it, the
 * first binary record would fail to decode, and as the last segment's tail it would be taken
 * for a torn write and cut off, with every acknowledged write after it. Recovery skips it.
 */
export const FENCE = Buffer.from(`{"g":${Number.MAX_SAFE_INTEGER},"ops":[]}`, 'latin1');

/** `isFence(buf, start, end)`: the payload `buf[start, end)` is `FENCE`. */
export function isFence(buf: Buffer, start: number, end: number): boolean {
  return end - start === FENCE.length && buf.compare(FENCE, 0, FENCE.length, start, end) === 0;
}

/** `frameRecord(payload)` is the record's bytes. */
export function frameRecord(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEAD + payload.length);
  out.writeUInt32LE(payload.length, 0);
  payload.copy(out, RECORD_HEAD);
  sealRecords(out, 0, out.length);
  return out;
}

/**
 * `sealRecords(buf, from, to)` writes the checksum of each record in `buf[from, to)`, records laid
 * one after another, each with its length set and its payload in place: history's log queues a
 * turn's records so and seals them in one loop as it writes them (history-log.ts).
 */
export function sealRecords(buf: Buffer, from: number, to: number): void {
  for (let at = from; at < to; ) {
    const end = at + RECORD_HEAD + buf.readUInt32LE(at);
    buf.writeUInt32LE(crc32(buf, at + RECORD_HEAD, end), at + 4);
    at = end;
  }
}

export interface Scan {
  /** The payloads of the good records, in order. */
  readonly records: Buffer[];
  /** Bytes of good records: where the file should end. */
  readonly goodBytes: number;
  /** Why reading stopped before the end of the file, if it did. */
  readonly problem: string | undefined;
}

/**
 * `recordAt(buf, off)`: the end of the payload of the record that starts at `off` (the payload
 * is `buf[off + RECORD_HEAD, end)`, the next record starts at `end`), or why there is no good
 * record there. Recovery walks a segment with it, decoding each payload in place: no view per
 * record kept alive until the replay (issue 16: at 10⁴ records those views and the deltas
 * decoded ahead were most of the young generation's survivors, and of its collections' cost).
 */
export function recordAt(buf: Buffer, off: number): number | string {
  if (buf.length - off < RECORD_HEAD) return `torn record header at byte ${off}`;
  const len = buf.readUInt32LE(off);
  if (len > RECORD_MAX || off + RECORD_HEAD + len > buf.length) return `torn or corrupt record at byte ${off} (length ${len})`;
  const end = off + RECORD_HEAD + len;
  if (crc32(buf, off + RECORD_HEAD, end) !== buf.readUInt32LE(off + 4)) return `checksum mismatch in the record at byte ${off}`;
  return end;
}

/** `scanRecords(buf)` reads records until the end or the first bad one. */
export function scanRecords(buf: Buffer): Scan {
  const records: Buffer[] = [];
  let off = 0;
  let problem: string | undefined;
  while (off < buf.length) {
    const end = recordAt(buf, off);
    if (typeof end === 'string') {
      problem = end;
      break;
    }
    records.push(buf.subarray(off + RECORD_HEAD, end));
    off = end;
  }
  return { records, goodBytes: off, problem };
}

/** `FENCE` as a record: what a segment holds before its first batch. */
export const FENCE_RECORD = frameRecord(FENCE);
