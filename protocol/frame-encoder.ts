import { encodeHeader, HEADER_SIZE, PAYLOAD_MAX } from './header.js';

/**
 * `encodeFrame(type, reqId, txId, payload)` returns header + payload in one buffer of
 * exactly `16 + len` bytes, written in place. A string payload is a byte string: each
 * char is one byte (latin1), so values 0–255 round-trip exactly.
 *
 * Throws RangeError when the payload exceeds PAYLOAD_MAX: such a frame kills a
 * libxenstore peer (spec §1.2), so callers decide first — the server replies E2BIG or
 * drops the watch event (spec §1.4), a client fails the call with E2BIG as `xs_talkv` does.
 */
export function encodeFrame(type: number, reqId: number, txId: number, payload: Buffer | string): Buffer {
  const len = payload.length; // latin1: one byte per char
  if (len > PAYLOAD_MAX) {
    throw new RangeError(`payload of ${len} bytes exceeds ${PAYLOAD_MAX}`);
  }
  const frame = Buffer.allocUnsafe(HEADER_SIZE + len);
  encodeHeader(frame, 0, { type, reqId, txId, len });
  if (typeof payload === 'string') frame.write(payload, HEADER_SIZE, 'latin1');
  else payload.copy(frame, HEADER_SIZE);
  return frame;
}
