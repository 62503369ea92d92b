import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeHeader, encodeHeader, HEADER_SIZE } from './header.js';
import type { Header } from './header.js';

const u32 = fc.nat({ max: 0xffffffff });

describe('header', () => {
  it('decodes little-endian u32 fields at fixed offsets', () => {
    const bytes = Uint8Array.from([
      2, 0, 0, 0, // type
      4, 3, 2, 1, // reqId
      0xff, 0xff, 0xff, 0xff, // txId
      0, 0x10, 0, 0, // len
    ]);
    expect(decodeHeader(bytes, 0)).toEqual({ type: 2, reqId: 0x01020304, txId: 0xffffffff, len: 4096 });
  });

  it('reads at an offset', () => {
    const buf = Buffer.alloc(3 + HEADER_SIZE);
    encodeHeader(buf, 3, { type: 11, reqId: 7, txId: 9, len: 5 });
    expect(decodeHeader(buf, 3)).toEqual({ type: 11, reqId: 7, txId: 9, len: 5 });
    expect(buf.subarray(0, 3)).toEqual(Buffer.alloc(3));
  });

  it('round-trips any u32 values', () => {
    fc.assert(
      fc.property(u32, u32, u32, u32, (type, reqId, txId, len) => {
        const h: Header = { type, reqId, txId, len };
        const buf = Buffer.alloc(HEADER_SIZE);
        encodeHeader(buf, 0, h);
        expect(decodeHeader(buf, 0)).toEqual(h);
        expect(buf.readUInt32LE(12)).toBe(len);
      }),
    );
  });

  it('refuses to read past the end', () => {
    expect(() => decodeHeader(new Uint8Array(15), 0)).toThrow(RangeError);
    expect(() => decodeHeader(new Uint8Array(20), 5)).toThrow(RangeError);
    expect(() => decodeHeader(new Uint8Array(20), -1)).toThrow(RangeError);
  });

  it('refuses values that are not u32', () => {
    const buf = Buffer.alloc(HEADER_SIZE);
    expect(() => encodeHeader(buf, 0, { type: -1, reqId: 0, txId: 0, len: 0 })).toThrow(RangeError);
    expect(() => encodeHeader(buf, 0, { type: 0, reqId: 2 ** 32, txId: 0, len: 0 })).toThrow(RangeError);
  });
});
