/**
 * CRC-32 (the IEEE 802.3 / zlib polynomial, reflected: the value `zlib.crc32` gives), of the
 * snapshot's blocks (snapshot.ts) and the log's records (server/persistence/wal.ts).
 *
 * In JavaScript for short inputs, so that a start does not load `node:zlib` for it (issue 16:
 * loading zlib was ~3 ms of a cold start's CPU on Node 22 and 24, for one function; a start
 * checks a snapshot's head, the first request a block of children: ~30 KB for 1,000 of them).
 * Table-driven, eight bytes a step ("slicing-by-8"): ~1.6 GB/s once optimised, ~1 ms for 32 KB
 * in a fresh process. zlib's is ~3x faster on long inputs, so from `NATIVE_FROM` bytes on (a
 * version 1-2 snapshot's whole-file checksum, a large block) it is loaded on first use.
 */

/** Inputs at least this long go to zlib's crc32: loading zlib costs what ~5 MB of the JS one does. */
export const NATIVE_FROM = 64 * 1024;

/** `TABLE[k * 256 + b]`: the CRC of byte b followed by k zero bytes. */
const TABLE = makeTable();

function makeTable(): Int32Array {
  const t = new Int32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[b] = c;
  }
  for (let b = 0; b < 256; b++) {
    let c = t[b]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + b] = c;
    }
  }
  return t;
}

let native: ((data: Uint8Array) => number) | undefined;

/**
 * `crc32(bytes, start?, end?)`: the CRC-32 of `bytes` (from `start` to `end`), an unsigned 32-bit
 * number (as `zlib.crc32(bytes)`). The range spares a view per call: the write-ahead log's and
 * history's records are checked by the hundred thousand at a start (server/persistence/wal.ts).
 */
export function crc32(data: Uint8Array, start = 0, end = data.length): number {
  if (end - start >= NATIVE_FROM) return (native ??= nativeCrc32())(start === 0 && end === data.length ? data : data.subarray(start, end));
  return crc32Js(data, start, end);
}

/** The table-driven CRC-32 alone, whatever the length (exported for its test). */
export function crc32Js(data: Uint8Array, start = 0, n = data.length): number {
  const t = TABLE;
  let c = -1;
  let i = start;
  for (const end = n - ((n - start) & 7); i < end; i += 8) {
    const a = c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    c =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + data[i + 4]!]! ^
      t[512 + data[i + 5]!]! ^
      t[256 + data[i + 6]!]! ^
      t[data[i + 7]!]!;
  }
  for (; i < n; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/**
 * zlib's crc32 (Node 20.15+ and 22.2+), loaded when first needed. `process.getBuiltinModule`
 * returns the CommonJS module, without the ES facade an `import` builds (which costs more than
 * the module). Computation only: store/ stays free of I/O.
 */
function nativeCrc32(): (data: Uint8Array) => number {
  const zlib = process.getBuiltinModule('node:zlib');
  return (data) => zlib.crc32(data);
}
