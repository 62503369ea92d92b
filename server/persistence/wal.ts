import { crc32 } from 'node:zlib';

/**
 * The write-ahead log's framing: each record is `length u32 | crc32 u32 | payload`, little-endian,
 * the checksum over the payload. A crash can leave the last record torn (short) or, on some file
 * systems, garbage after the last good record; both are found by the length and checksum, so a
 * reader knows exactly where the good prefix ends.
 */
const HEAD = 8;
/** A record longer than this is garbage in a length field, not a commit (a commit is < 1 MiB). */
const RECORD_MAX = 64 * 1024 * 1024;

/** `frameRecord(payload)` is the record's bytes. */
export function frameRecord(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEAD + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(crc32(payload), 4);
  payload.copy(out, HEAD);
  return out;
}

export interface Scan {
  /** The payloads of the good records, in order. */
  readonly records: Buffer[];
  /** Bytes of good records: where the file should end. */
  readonly goodBytes: number;
  /** Why reading stopped before the end of the file, if it did. */
  readonly problem: string | undefined;
}

/** `scanRecords(buf)` reads records until the end or the first bad one. */
export function scanRecords(buf: Buffer): Scan {
  const records: Buffer[] = [];
  let off = 0;
  let problem: string | undefined;
  while (off < buf.length) {
    if (buf.length - off < HEAD) {
      problem = `torn record header at byte ${off}`;
      break;
    }
    const len = buf.readUInt32LE(off);
    if (len > RECORD_MAX || off + HEAD + len > buf.length) {
      problem = `torn or corrupt record at byte ${off} (length ${len})`;
      break;
    }
    const payload = buf.subarray(off + HEAD, off + HEAD + len);
    if (crc32(payload) !== buf.readUInt32LE(off + 4)) {
      problem = `checksum mismatch in the record at byte ${off}`;
      break;
    }
    records.push(payload);
    off += HEAD + len;
  }
  return { records, goodBytes: off, problem };
}
