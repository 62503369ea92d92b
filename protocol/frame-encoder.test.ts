import { describe, expect, it } from 'vitest';
import { encodeFrame } from './frame-encoder.js';
import { decodeHeader, HEADER_SIZE, PAYLOAD_MAX } from './header.js';

describe('encodeFrame', () => {
  it('writes the header then the payload, nothing else', () => {
    const frame = encodeFrame(2, 0x01020304, 9, Buffer.from('/a\0'));
    expect([...frame]).toEqual([2, 0, 0, 0, 4, 3, 2, 1, 9, 0, 0, 0, 3, 0, 0, 0, 0x2f, 0x61, 0]);
  });

  it('writes a string payload as latin1: every byte 0-255 round-trips', () => {
    const all = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
    const frame = encodeFrame(11, 1, 0, all);
    expect(frame.length).toBe(HEADER_SIZE + 256);
    expect(decodeHeader(frame, 0).len).toBe(256);
    expect([...frame.subarray(HEADER_SIZE)]).toEqual(Array.from({ length: 256 }, (_, i) => i));
  });

  it('encodes an empty payload as a bare header', () => {
    const frame = encodeFrame(16, 3, 4, '');
    expect(frame.length).toBe(HEADER_SIZE);
    expect(decodeHeader(frame, 0)).toEqual({ type: 16, reqId: 3, txId: 4, len: 0 });
  });

  it('copies a Buffer payload', () => {
    const payload = Buffer.from('OK\0');
    const frame = encodeFrame(4, 0, 0, payload);
    payload.fill(0);
    expect(frame.subarray(HEADER_SIZE).toString('latin1')).toBe('OK\0');
  });

  it('accepts PAYLOAD_MAX bytes and refuses one more', () => {
    expect(encodeFrame(11, 0, 0, Buffer.alloc(PAYLOAD_MAX)).length).toBe(HEADER_SIZE + PAYLOAD_MAX);
    expect(() => encodeFrame(11, 0, 0, Buffer.alloc(PAYLOAD_MAX + 1))).toThrow(RangeError);
    expect(() => encodeFrame(11, 0, 0, 'x'.repeat(PAYLOAD_MAX + 1))).toThrow(RangeError);
  });
});
