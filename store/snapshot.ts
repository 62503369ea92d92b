import { ImmMap } from './imm-map.js';
import { crc32 } from 'node:zlib';
import { XsError } from '../protocol/index.js';
import { XsNode, type Children } from './node.js';
import { SPECIAL_NAMES, type SpecialName } from './path.js';
import { DOM0_ONLY, samePerms, type AccessLetter, type PermEntry, type Perms } from './perms.js';
import { addAll, EMPTY_QUOTA } from './quota.js';
import type { SpecialPerms, Store } from './store.js';

/**
 * The snapshot codec: a whole store version as one compact, checksummed byte string, for the
 * persistence layer (a snapshot file) and for live update (handing the store to the next process).
 * Pure: it neither reads nor writes files (`node:zlib`'s crc32 is computation only).
 *
 * Layout, little-endian throughout:
 *   header   "NXSS" | version u16 (1) | reserved u16 | generation f64 | nodes u32 | perm lists u32
 *   perms    per list: entries u16, then per entry: letter u8 ('n' 'r' 'w' 'b'), domid u16
 *   special  per special name in `SPECIAL_NAMES` order: perm-list index u32
 *   tree     nodes in pre-order: name (u16 length, bytes; empty for the root), value (u32 length,
 *            latin1 bytes: any byte 0..255, spec §4), perm-list index u32, children u32
 *   trailer  crc32 of everything before it, u32
 *
 * Permission lists are written once and referenced by index: most nodes inherit their parent's
 * list by reference, so a tree of 10⁶ nodes has a handful of distinct lists, and decoding gives
 * back shared lists (the same memory shape the operations build). Per-domain node counts are not
 * stored: they are recounted while decoding, so a snapshot can never carry a quota that disagrees
 * with its tree (`checkStore`).
 *
 * Both directions are iterative (an explicit stack: XSA-418, client-chosen depth) and touch each
 * node once; encoding sizes the output in a first walk and fills one buffer in a second.
 */
const MAGIC = 0x5353584e; // "NXSS" read as u32 LE
const VERSION = 1;
const HEADER = 4 + 2 + 2 + 8 + 4 + 4;
const TRAILER = 4;
const LETTERS: readonly AccessLetter[] = ['n', 'r', 'w', 'b'];
const LETTER_CODE: Record<AccessLetter, number> = { n: 0x6e, r: 0x72, w: 0x77, b: 0x62 };
const CODE_LETTER = new Map<number, AccessLetter>(LETTERS.map((l) => [LETTER_CODE[l], l]));

/** `encodeSnapshot(store)` is the store as snapshot bytes (layout above). */
export function encodeSnapshot(store: Store): Buffer {
  const steps = snapshotSteps(store, Infinity);
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
  }
}

/**
 * `snapshotSteps(store, nodesPerStep)` encodes like `encodeSnapshot`, pausing (`yield`) after
 * every `nodesPerStep` nodes of each walk and every `nodesPerStep * 64` bytes of the checksum; the
 * generator's return value is the bytes. A version is immutable, so the walk can be spread over
 * many turns of the event loop while requests go on changing the live store: a snapshot of 10⁶
 * nodes no longer stops the daemon for the second it takes (server/persistence/journal.ts).
 */
export function* snapshotSteps(store: Store, nodesPerStep: number): Generator<void, Buffer, void> {
  let budget = nodesPerStep;
  // Pass 1: size, node count and the table of distinct permission lists.
  const table = new PermTable();
  for (const name of SPECIAL_NAMES) table.index(store.special[name]);
  let size = HEADER + SPECIAL_NAMES.length * 4 + TRAILER;
  let nodes = 0;
  const names: string[] = [''];
  const walk: XsNode[] = [store.root];
  const push = (child: XsNode, name: string) => {
    walk.push(child);
    names.push(name);
  };
  while (walk.length > 0) {
    const node = walk.pop()!;
    size += 2 + names.pop()!.length + 4 + node.value.length + 4 + 4;
    nodes++;
    table.index(node.perms);
    node.children.forEach(push);
    if (--budget <= 0) {
      yield;
      budget = nodesPerStep;
    }
  }
  if (nodes > 0xffffffff) throw new XsError('E2BIG', 'snapshot: too many nodes');
  for (const perms of table.lists) size += 2 + perms.length * 3;

  // Pass 2: fill the buffer.
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  off = buf.writeUInt32LE(MAGIC, off);
  off = buf.writeUInt16LE(VERSION, off);
  off = buf.writeUInt16LE(0, off);
  off = buf.writeDoubleLE(store.generation, off);
  off = buf.writeUInt32LE(nodes, off);
  off = buf.writeUInt32LE(table.lists.length, off);
  for (const perms of table.lists) {
    off = buf.writeUInt16LE(perms.length, off);
    for (const e of perms) {
      off = buf.writeUInt8(LETTER_CODE[e.access], off);
      off = buf.writeUInt16LE(e.domid, off);
    }
  }
  for (const name of SPECIAL_NAMES) off = buf.writeUInt32LE(table.index(store.special[name]), off);
  walk.push(store.root);
  names.push('');
  while (walk.length > 0) {
    const node = walk.pop()!;
    const name = names.pop()!;
    off = buf.writeUInt16LE(name.length, off);
    off = putLatin1(buf, name, off);
    off = buf.writeUInt32LE(node.value.length, off);
    off = putLatin1(buf, node.value, off);
    off = buf.writeUInt32LE(table.index(node.perms), off);
    off = buf.writeUInt32LE(node.children.size, off);
    // Pushed, then reversed in place, so that children pop (and are written) in the map's order.
    const from = walk.length;
    node.children.forEach(push);
    reverseFrom(walk, from);
    reverseFrom(names, from);
    if (--budget <= 0) {
      yield;
      budget = nodesPerStep;
    }
  }
  const slice = Number.isFinite(nodesPerStep) ? nodesPerStep * 64 : off;
  let crc = 0;
  for (let at = 0; at < off; at += slice) {
    crc = crc32(buf.subarray(at, Math.min(off, at + slice)), crc);
    if (at + slice < off) yield;
  }
  buf.writeUInt32LE(crc, off);
  return buf;
}

/** Short strings byte by byte: cheaper than `Buffer.write`'s argument handling for names. */
function putLatin1(buf: Buffer, s: string, off: number): number {
  const n = s.length;
  if (n > 32) return off + buf.write(s, off, 'latin1');
  for (let i = 0; i < n; i++) buf[off + i] = s.charCodeAt(i);
  return off + n;
}

function reverseFrom<T>(xs: T[], from: number): void {
  for (let i = from, j = xs.length - 1; i < j; i++, j--) {
    const t = xs[i]!;
    xs[i] = xs[j]!;
    xs[j] = t;
  }
}

/**
 * `decodeSnapshot(buf)` is the store the bytes hold, with its quota recounted. Any damage (bad
 * magic or version, checksum mismatch, truncation, a malformed record, trailing bytes) is an
 * `XsError` EIO naming the problem; nothing partial is ever returned.
 */
export function decodeSnapshot(buf: Buffer): Store {
  if (buf.length < HEADER + TRAILER) throw corrupt(`${buf.length} bytes is shorter than a snapshot`);
  if (buf.readUInt32LE(0) !== MAGIC) throw corrupt('not a snapshot (bad magic)');
  const version = buf.readUInt16LE(4);
  if (version !== VERSION) throw corrupt(`unsupported version ${version}`);
  const body = buf.length - TRAILER;
  if (crc32(buf.subarray(0, body)) !== buf.readUInt32LE(body)) throw corrupt('checksum mismatch');
  try {
    return parse(buf, body);
  } catch (e) {
    if (e instanceof XsError) throw e;
    throw corrupt((e as Error).message); // a RangeError from a read past the end
  }
}

/** `snapshotGeneration(buf)` reads only the header's generation (after checking the magic). */
export function snapshotGeneration(buf: Buffer): number {
  if (buf.length < HEADER || buf.readUInt32LE(0) !== MAGIC) throw corrupt('not a snapshot (bad magic)');
  return buf.readDoubleLE(8);
}

function parse(buf: Buffer, end: number): Store {
  const r = new Reader(buf, end);
  r.skip(8);
  const generation = r.f64();
  if (!Number.isSafeInteger(generation) || generation < 0) throw corrupt(`bad generation ${generation}`);
  const nodes = r.u32();
  const lists: Perms[] = new Array<Perms>(r.u32());
  for (let i = 0; i < lists.length; i++) lists[i] = readPerms(r);
  const perms = (i: number): Perms => {
    const p = lists[i];
    if (p === undefined) throw corrupt(`permission list ${i} out of range`);
    return p;
  };
  const special = {} as Record<SpecialName, Perms>;
  for (const name of SPECIAL_NAMES) special[name] = perms(r.u32());

  // Each open frame is a node whose children are still being read.
  interface Frame {
    readonly name: string;
    readonly value: string;
    readonly perms: Perms;
    remaining: number;
    readonly entries: [string, XsNode][];
  }
  const counts = new Map<number, number>();
  const stack: Frame[] = [];
  let root: XsNode | undefined;
  let seen = 0;
  while (root === undefined) {
    if (++seen > nodes) throw corrupt(`more than the ${nodes} nodes announced`);
    const name = r.latin1(r.u16());
    if ((stack.length === 0) !== (name === '')) throw corrupt(`bad node name ${JSON.stringify(name)}`);
    const value = r.latin1(r.u32());
    const p = perms(r.u32());
    const owner = p[0]!.domid;
    counts.set(owner, (counts.get(owner) ?? 0) + 1);
    const n = r.u32();
    let done: [string, XsNode] | undefined;
    if (n > 0) stack.push({ name, value, perms: p, remaining: n, entries: [] });
    else done = [name, XsNode.leaf(value, p)];
    // Close every frame this node completes, innermost first.
    while (done !== undefined) {
      const parent = stack[stack.length - 1];
      if (parent === undefined) {
        root = done[1];
        break;
      }
      parent.entries.push(done);
      done = undefined;
      if (--parent.remaining === 0) {
        stack.pop();
        const children: Children = ImmMap(parent.entries);
        if (children.size !== parent.entries.length) throw corrupt(`duplicate child under ${parent.name}`);
        done = [parent.name, new XsNode(parent.value, parent.perms, children)];
      }
    }
  }
  if (seen !== nodes) throw corrupt(`${seen} nodes, ${nodes} announced`);
  if (r.offset !== end) throw corrupt(`${end - r.offset} bytes after the tree`);
  return Object.freeze({
    root,
    quota: addAll(EMPTY_QUOTA, counts),
    special: Object.freeze(special) as SpecialPerms,
    generation,
  });
}

function readPerms(r: Reader): Perms {
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

function corrupt(what: string): XsError {
  return new XsError('EIO', `corrupt snapshot: ${what}`);
}

/** Distinct permission lists, by reference first and then by value. */
class PermTable {
  readonly lists: Perms[] = [];
  private readonly byRef = new Map<Perms, number>();
  private readonly byKey = new Map<string, number>();

  index(perms: Perms): number {
    let i = this.byRef.get(perms);
    if (i !== undefined) return i;
    const key = perms.map((e) => `${e.access}${e.domid}`).join(',');
    i = this.byKey.get(key);
    if (i === undefined) {
      i = this.lists.length;
      this.lists.push(perms);
      this.byKey.set(key, i);
    }
    this.byRef.set(perms, i);
    return i;
  }
}

/** A bounds-checked cursor; reads past `end` are RangeErrors, reported as corruption. */
class Reader {
  offset = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly end: number,
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
  u16(): number {
    return this.buf.readUInt16LE(this.take(2));
  }
  u32(): number {
    return this.buf.readUInt32LE(this.take(4));
  }
  f64(): number {
    return this.buf.readDoubleLE(this.take(8));
  }
  latin1(n: number): string {
    const at = this.take(n);
    return this.buf.toString('latin1', at, at + n);
  }
}
