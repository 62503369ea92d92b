import { XsError } from '../protocol/index.js';
import { SPECIAL_NAMES, type SpecialName } from './path.js';
import { DOM0_ONLY, samePerms, type AccessLetter, type PermEntry, type Perms } from './perms.js';

/**
 * What every snapshot version shares (layout: snapshot.ts): the header's constants, the
 * permission letters, where the bytes come from, a bounds-checked reader, the head's common
 * fields, and the one error damage becomes (EIO). Pure, as the codec is.
 */

export const MAGIC = 0x5353584e; // "NXSS" read as u32 LE
export const VERSION = 3;
/** Versions 1 and 2's header, and version 3's, which adds the head's length. */
export const HEADER_V2 = 4 + 2 + 2 + 8 + 4 + 4;
export const HEADER = HEADER_V2 + 4;
export const TRAILER = 4;
/** A version 3 record's fields after `children` when there are some. */
export const KIDS = 20;
export const LETTERS: readonly AccessLetter[] = ['n', 'r', 'w', 'b'];
export const LETTER_CODE: Record<AccessLetter, number> = { n: 0x6e, r: 0x72, w: 0x77, b: 0x62 };
export const CODE_LETTER = new Map<number, AccessLetter>(LETTERS.map((l) => [LETTER_CODE[l], l]));

/**
 * Where a snapshot's bytes are read from: a buffer, or (server/persistence) a file kept open and
 * read with pread, so that a start reads what requests touch. `read(at, length)` gives fewer bytes
 * only past the end. `damaged(e)` is told of damage found after `openSnapshot` returned (a
 * block's checksum, at first touch or in `check`), just before `e` is thrown: the store has
 * served from this snapshot already, so what to do (the daemon exits) is the owner's decision.
 */
export interface SnapshotSource {
  readonly size: number;
  read(at: number, length: number): Buffer;
  damaged?(e: XsError): void;
}

/**
 * The part both versions share after the magic and the version: the generation, the node count,
 * the permission lists and the special names' permissions.
 */
export function readHead(r: Reader, v3 = false): { generation: number; nodes: number; lists: Perms[]; special: Record<SpecialName, Perms> } {
  r.skip(8);
  const generation = r.f64();
  if (!Number.isSafeInteger(generation) || generation < 0) throw corrupt(`bad generation ${generation}`);
  const nodes = r.u32();
  const lists: Perms[] = new Array<Perms>(r.u32());
  if (v3) r.skip(4); // the head's length, checked by the caller
  for (let i = 0; i < lists.length; i++) lists[i] = readPerms(r);
  const special = {} as Record<SpecialName, Perms>;
  for (const name of SPECIAL_NAMES) special[name] = permsAt(lists, r.u32());
  return { generation, nodes, lists, special };
}

/** The stored per-domain node counts (versions 2 and 3). */
export function readQuota(r: Reader): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = r.u32(); i > 0; i--) {
    const domid = r.u32();
    const n = r.u32();
    if (n === 0 || counts.has(domid)) throw corrupt(`bad quota entry for domain ${domid}`);
    counts.set(domid, n);
  }
  return counts;
}

export function permsAt(lists: readonly Perms[], i: number): Perms {
  const p = lists[i];
  if (p === undefined) throw corrupt(`permission list ${i} out of range`);
  return p;
}

export function readPerms(r: Reader): Perms {
  const n = r.u16();
  if (n === 0) throw corrupt('empty permission list');
  const entries: PermEntry[] = [];
  for (let i = 0; i < n; i++) {
    const code = r.u8();
    const access = CODE_LETTER.get(code);
    if (access === undefined) throw corrupt(`bad permission letter 0x${code.toString(16)}`);
    entries.push(Object.freeze({ access, domid: r.u16() }));
  }
  // The shared constant keeps `===` shortcuts (samePerms) as cheap after a restart as before.
  return samePerms(entries, DOM0_ONLY) ? DOM0_ONLY : Object.freeze(entries);
}

export function corrupt(what: string): XsError {
  return new XsError('EIO', `corrupt snapshot: ${what}`);
}

/** A bounds-checked cursor; reads past `end` are RangeErrors, reported as corruption. */
export class Reader {
  constructor(
    private readonly buf: Buffer,
    readonly end: number,
    public offset = 0,
  ) {}

  private take(n: number): number {
    const at = this.offset;
    if (at + n > this.end) throw new RangeError(`truncated at byte ${at}`);
    this.offset = at + n;
    return at;
  }

  skip(n: number): void {
    this.take(n);
  }
  u8(): number {
    return this.buf.readUInt8(this.take(1));
  }
  // Byte arithmetic rather than Buffer's readUInt16LE/readUInt32LE (which check the offset again,
  // `take` has): the first request after a start reads a block of children with code that has
  // not been optimised yet, and there each Buffer call is a call into buffer.js (issue 16).
  u16(): number {
    const at = this.take(2);
    const b = this.buf;
    return b[at]! | (b[at + 1]! << 8);
  }
  u32(): number {
    const at = this.take(4);
    const b = this.buf;
    return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 0x1000000;
  }
  f64(): number {
    return this.buf.readDoubleLE(this.take(8));
  }
  latin1(n: number): string {
    const at = this.take(n);
    return this.buf.toString('latin1', at, at + n);
  }
}
