import { advance, createStore, DEFAULT_LIMITS, DOM0, execute, type Store, type StoreRequest } from '../../store/index.js';

/**
 * A log segment as a build before the binary records wrote it (main at 707be51, its `encodeDelta`
 * and `frameRecord`): seven JSON records, `length u32 | crc32 u32 | payload` each, from `REQUESTS`
 * run as dom0 on a new store (a value of every byte, an implicit mkdir, an ACL, a special name's
 * permissions, a removal).
 */
export const JSON_SEGMENT =
  'hgIAAC3GKyV7ImciOjEsIm9wcyI6W1sicyIsIi9sb2NhbC9kb21haW4iLCIiLFsibjAiXV0sWyJzIiwiL2xvY2FsL2RvbWFp' +
  'bi83IiwiIixbIm4wIl1dLFsicyIsIi9sb2NhbC9kb21haW4vNy9kYXRhIiwiXHUwMDAwXHUwMDAxXHUwMDAyXHUwMDAzXHUw' +
  'MDA0XHUwMDA1XHUwMDA2XHUwMDA3XGJcdFxuXHUwMDBiXGZcclx1MDAwZVx1MDAwZlx1MDAxMFx1MDAxMVx1MDAxMlx1MDAx' +
  'M1x1MDAxNFx1MDAxNVx1MDAxNlx1MDAxN1x1MDAxOFx1MDAxOVx1MDAxYVx1MDAxYlx1MDAxY1x1MDAxZFx1MDAxZVx1MDAx' +
  'ZiAhXCIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXF1eX2BhYmNk' +
  'ZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/woDCgcKCwoPChMKFwobCh8KIwonCisKLwozCjcKOwo/CkMKRwpLCk8KUwpXC' +
  'lsKXwpjCmcKawpvCnMKdwp7Cn8KgwqHCosKjwqTCpcKmwqfCqMKpwqrCq8Kswq3CrsKvwrDCscKywrPCtMK1wrbCt8K4wrnC' +
  'usK7wrzCvcK+wr/DgMOBw4LDg8OEw4XDhsOHw4jDicOKw4vDjMONw47Dj8OQw5HDksOTw5TDlcOWw5fDmMOZw5rDm8Ocw53D' +
  'nsOfw6DDocOiw6PDpMOlw6bDp8Oow6nDqsOrw6zDrcOuw6/DsMOxw7LDs8O0w7XDtsO3w7jDucO6w7vDvMO9w77DvyIsWyJu' +
  'MCJdXV19lAAAAF/LIa57ImciOjIsIm9wcyI6W1sicyIsIi9sb2NhbC9kb21haW4vNy9kZXZpY2UiLCIiLFsibjAiXV0sWyJz' +
  'IiwiL2xvY2FsL2RvbWFpbi83L2RldmljZS92aWYiLCIiLFsibjAiXV0sWyJzIiwiL2xvY2FsL2RvbWFpbi83L2RldmljZS92' +
  'aWYvMCIsIiIsWyJuMCJdXV19OwAAAAiM/Il7ImciOjMsIm9wcyI6W1sicyIsIi9sb2NhbC9kb21haW4vNyIsIiIsWyJuNyIs' +
  'InIwIiwiYjMiXV1dfUcAAADIMyD4eyJnIjo0LCJvcHMiOltbInMiLCIvbG9jYWwvZG9tYWluLzcvbmFtZSIsImd1ZXN0LTci' +
  'LFsibjciLCJyMCIsImIzIl1dXX0yAAAA3BJTp3siZyI6NSwib3BzIjpbWyJwIiwiQHJlbGVhc2VEb21haW4iLFsibjAiLCJy' +
  'NyJdXV19LgAAAAGUrk57ImciOjYsIm9wcyI6W1siciIsIi9sb2NhbC9kb21haW4vNy9kZXZpY2UiXV19TAAAAMCSuB17Imci' +
  'OjcsIm9wcyI6W1sicyIsIi90b29sL3hfeSIsIiIsWyJuMCJdXSxbInMiLCIvdG9vbC94X3kvQHotMSIsIiIsWyJuMCJdXV19';

export const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1');
export const REQUESTS: readonly StoreRequest[] = [
  { op: 'write', path: '/local/domain/7/data', value: ALL_BYTES },
  { op: 'mkdir', path: '/local/domain/7/device/vif/0' },
  { op: 'set-perms', path: '/local/domain/7', perms: ['n7', 'r0', 'b3'] },
  { op: 'write', path: '/local/domain/7/name', value: 'guest-7' },
  { op: 'set-perms', path: '@releaseDomain', perms: ['n0', 'r7'] },
  { op: 'rm', path: '/local/domain/7/device' },
  { op: 'write', path: '/tool/x_y/@z-1', value: '' },
];

/** The versions `REQUESTS` make, one per request, the new store first. */
export function requestVersions(): Store[] {
  const out = [createStore()];
  const limits = { ...DEFAULT_LIMITS, nodes: Infinity };
  for (const r of REQUESTS) out.push(advance(execute(out.at(-1)!, DOM0, limits, r).store, out.at(-1)!));
  return out;
}

/** The payloads of `JSON_SEGMENT`'s records (each behind its 8-byte length and checksum). */
export function jsonRecords(): Buffer[] {
  const seg = Buffer.from(JSON_SEGMENT, 'base64');
  const out: Buffer[] = [];
  for (let off = 0; off < seg.length; off += 8 + seg.readUInt32LE(off)) out.push(seg.subarray(off + 8, off + 8 + seg.readUInt32LE(off)));
  return out;
}

/** `JSON_SEGMENT`'s bytes: a log segment (`wal-0000000000000001`) as the older build left it. */
export function jsonSegment(): Buffer {
  return Buffer.from(JSON_SEGMENT, 'base64');
}
