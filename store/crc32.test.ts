import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32, crc32Js, NATIVE_FROM } from './crc32.js';

/** A deterministic byte source (xorshift32), so that a failure can be replayed. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

describe('crc32', () => {
  it('gives the check value of the CRC-32 catalogue', () => {
    expect(crc32Js(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32Js(Buffer.alloc(0))).toBe(0);
  });

  it("matches zlib's on random inputs of every length up to 300 bytes and at every offset", () => {
    const src = bytes(400, 7);
    for (let n = 0; n <= 300; n++) {
      for (const at of [0, 1, 3, 5, 7]) {
        const view = src.subarray(at, at + n);
        expect(crc32Js(view)).toBe(zlibCrc32(view));
        // The same bytes as a range of the whole: no view made.
        expect(crc32(src, at, at + n)).toBe(zlibCrc32(view));
      }
    }
  });

  it("matches zlib's on random long inputs, on both sides of the native threshold", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const n = (seed * 7919) % (NATIVE_FROM * 3);
      const b = bytes(n, seed);
      expect(crc32Js(b)).toBe(zlibCrc32(b));
      expect(crc32(b)).toBe(zlibCrc32(b));
    }
    for (const n of [NATIVE_FROM - 1, NATIVE_FROM, NATIVE_FROM + 1, 1 << 20]) {
      const b = bytes(n, n);
      expect(crc32(b)).toBe(zlibCrc32(b));
      // A range on either side of the threshold, not at the buffer's start.
      expect(crc32(b, 3, n - 2)).toBe(zlibCrc32(b.subarray(3, n - 2)));
    }
  });

  it('reads a Uint8Array view, not only a Buffer', () => {
    const b = bytes(1000, 3);
    const u = new Uint8Array(b.buffer, b.byteOffset + 11, 500);
    expect(crc32Js(u)).toBe(zlibCrc32(u));
  });
});
