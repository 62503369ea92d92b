/**
 * The 16-byte message header, `struct xsd_sockmsg` (spec §1.2): four u32 fields in host
 * byte order, which is little-endian on every platform Xen runs on (x86, Arm).
 */

export const HEADER_SIZE = 16;

/** XENSTORE_PAYLOAD_MAX: the largest payload in either direction (spec §1.2). */
export const PAYLOAD_MAX = 4096;

export interface Header {
  /** Message type (an `Op` code, or anything a client sent). */
  type: number;
  /** Opaque request id, echoed in the reply. */
  reqId: number;
  /** Transaction id, 0 = none. */
  txId: number;
  /** Number of payload bytes that follow the header. */
  len: number;
}

function u32le(buf: Uint8Array, at: number): number {
  // `>>> 0` keeps the top byte from turning the result negative.
  return (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0;
}

/**
 * `decodeHeader(buf, off)` reads the header at `buf[off .. off+16)`; every field is set.
 * Throws RangeError if fewer than 16 bytes are available there (a caller bug).
 */
export function decodeHeader(buf: Uint8Array, off: number): Header {
  if (off < 0 || off + HEADER_SIZE > buf.length) {
    throw new RangeError(`header needs ${HEADER_SIZE} bytes at offset ${off}, buffer has ${buf.length}`);
  }
  return {
    type: u32le(buf, off),
    reqId: u32le(buf, off + 4),
    txId: u32le(buf, off + 8),
    len: u32le(buf, off + 12),
  };
}

/**
 * `encodeHeader(buf, off, h)` writes `h` at `buf[off .. off+16)`.
 * Throws RangeError if a field is not a u32 or the buffer is too short.
 */
export function encodeHeader(buf: Buffer, off: number, h: Header): void {
  buf.writeUInt32LE(h.type, off);
  buf.writeUInt32LE(h.reqId, off + 4);
  buf.writeUInt32LE(h.txId, off + 8);
  buf.writeUInt32LE(h.len, off + 12);
}
