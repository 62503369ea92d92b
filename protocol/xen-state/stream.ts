import { XsError } from '../xs-error.js';
import { decodeBody, encodeBody } from './record-codec.js';
import { RecordType, type StateRecord, type StateStream } from './records.js';

/**
 * The whole stream: a 16-byte preamble (`xenstore`, the version big-endian, the flags in host
 * order: 0 = little-endian records), then records `{u32 type, u32 len, body padded to 8}`, then
 * END (`xenstore_state.h`; xen-migration notes §1-2). Xen 4.17 writes and reads version 1 only;
 * 4.22 writes 2 (1 on request) and reads both.
 *
 * Reading is strict where Xen's readers are lenient, because a state file decides what every client
 * sees next: an unknown record type (Xen logs and skips it), a version other than 1 or 2, flags
 * other than little-endian, a record running past the end, a missing END or bytes after it are all
 * refused with a message naming the offset, and the caller keeps the old daemon serving.
 */

const IDENT = Buffer.from('xenstore', 'latin1');
export const PREAMBLE_SIZE = 16;

/** `encodeStream(stream)` is the stream's bytes: preamble, records in order, END. */
export function encodeStream(stream: StateStream): Buffer {
  const parts: Buffer[] = [];
  const pre = Buffer.alloc(PREAMBLE_SIZE);
  IDENT.copy(pre, 0);
  pre.writeUInt32BE(stream.version, 8);
  pre.writeUInt32LE(0, 12);
  parts.push(pre);
  for (const r of stream.records) {
    const { type, body } = encodeBody(r, stream.version);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(type, 0);
    head.writeUInt32LE(body.length, 4);
    parts.push(head, body);
  }
  parts.push(Buffer.alloc(8)); // END: type 0, length 0
  return Buffer.concat(parts);
}

/**
 * `decodeStream(bytes)` is the stream, or throws XsError EINVAL saying what is wrong and where
 * ("unknown record type 0x9 at offset 48", "torn: ...", "version 3 ...").
 */
export function decodeStream(bytes: Buffer): StateStream {
  if (bytes.length < PREAMBLE_SIZE) throw new XsError('EINVAL', `not a xenstore state stream: ${bytes.length} bytes, shorter than the preamble`);
  if (!bytes.subarray(0, 8).equals(IDENT)) throw new XsError('EINVAL', 'not a xenstore state stream: no "xenstore" identifier');
  const version = bytes.readUInt32BE(8);
  if (version !== 1 && version !== 2) throw new XsError('EINVAL', `unsupported state stream version ${version} (1 and 2 are known)`);
  const flags = bytes.readUInt32LE(12);
  if ((flags & 1) !== 0) throw new XsError('EINVAL', 'big-endian state stream: only little-endian streams are read');
  if (flags !== 0) throw new XsError('EINVAL', `state stream flags 0x${flags.toString(16)}: reserved bits set`);
  const records: StateRecord[] = [];
  let off = PREAMBLE_SIZE;
  for (;;) {
    if (off + 8 > bytes.length) throw new XsError('EINVAL', `torn state stream: it ends at byte ${bytes.length} without an END record`);
    const type = bytes.readUInt32LE(off);
    const len = bytes.readUInt32LE(off + 4);
    if (off + 8 + len > bytes.length) {
      throw new XsError('EINVAL', `torn state stream: the record at offset ${off} (type ${type}, ${len} bytes) runs past the end (${bytes.length} bytes)`);
    }
    if (len % 8 !== 0) throw new XsError('EINVAL', `record at offset ${off} has length ${len}, not padded to 8`);
    if (type === RecordType.END) {
      if (len !== 0) throw new XsError('EINVAL', `END record at offset ${off} has a body of ${len} bytes`);
      if (off + 8 !== bytes.length) throw new XsError('EINVAL', `${bytes.length - off - 8} bytes after the END record at offset ${off}`);
      return { version, records };
    }
    let r: StateRecord | undefined;
    try {
      r = decodeBody(type, bytes.subarray(off + 8, off + 8 + len), version);
    } catch (e) {
      if (e instanceof XsError) throw new XsError('EINVAL', `${e.message} (record at offset ${off})`);
      throw e;
    }
    if (r === undefined) throw new XsError('EINVAL', `unknown record type 0x${type.toString(16)} at offset ${off}`);
    records.push(r);
    off += 8 + len;
  }
}
