import { ImmMap } from './imm-map.js';
import { crc32 } from 'node:zlib';
import { XsError } from '../protocol/index.js';
import { XsNode, type Children, type Unread } from './node.js';
import { SPECIAL_NAMES, type SpecialName } from './path.js';
import { DOM0_ONLY, samePerms, type AccessLetter, type PermEntry, type Perms } from './perms.js';
import { addAll, EMPTY_QUOTA } from './quota.js';
import type { SpecialPerms, Store } from './store.js';

/**
 * The snapshot codec: a whole store version as one compact, checksummed byte string, for the
 * persistence layer (a snapshot file) and for live update (handing the store to the next process).
 * Pure: it neither reads nor writes files (`node:zlib`'s crc32 is computation only).
 *
 * Layout (version 2), little-endian throughout:
 *   header   "NXSS" | version u16 (2) | reserved u16 | generation f64 | nodes u32 | perm lists u32
 *   perms    per list: entries u16, then per entry: letter u8 ('n' 'r' 'w' 'b'), domid u16
 *   special  per special name in `SPECIAL_NAMES` order: perm-list index u32
 *   quota    domains u32, then per domain: domid u32, nodes it owns u32
 *   tree     nodes in pre-order: name (u16 length, bytes; empty for the root), value (u32 length,
 *            latin1 bytes: any byte 0..255, spec §4), perm-list index u32, children u32; a node
 *            with children then has its `domains` summary u32, its `childBytes` u32 and the
 *            length u32 of its descendants' records, which follow it
 *   trailer  crc32 of everything before it, u32
 * Version 1 (read, no longer written) has no quota and no three fields after `children`.
 *
 * Permission lists are written once and referenced by index: most nodes inherit their parent's
 * list by reference, so a tree of 10⁶ nodes has a handful of distinct lists, and decoding gives
 * back shared lists (the same memory shape the operations build).
 *
 * Decoding a version 2 snapshot does not build the tree (issue 16: building 10⁶ immutable nodes,
 * and the GC after, was most of a start at 10⁶ nodes). It checks the checksum and walks the
 * records once without allocating (every length, index, count and nesting, the same checks as a
 * full decode but duplicate names), then returns a root whose children are read when first used
 * (`XsNode.unloaded`); a node's children are read together, in one pass over their records, each
 * skipping its subtree by its length. So a start costs a pass over the bytes, and each request
 * what it touches (at most, for one node, reading its direct children, which a full decode
 * would have built anyway). The stored quota and summaries are what the encoder had; `checkStore`
 * (`xenstore-control check`) recounts them. While some node is unread, the bytes stay in memory:
 * at most the snapshot's size, beside the part of the tree built from it. Encoding such a store
 * copies the unread subtrees' records (`copyable`) rather than reading them.
 *
 * Both directions are iterative (an explicit stack: XSA-418, client-chosen depth); encoding sizes
 * the output in a first walk and fills one buffer in a second.
 */
const MAGIC = 0x5353584e; // "NXSS" read as u32 LE
const VERSION = 2;
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
  let size = HEADER + SPECIAL_NAMES.length * 4 + 4 + store.quota.size * 8 + TRAILER;
  let nodes = 0;
  const names: string[] = [''];
  const walk: XsNode[] = [store.root];
  const push = (child: XsNode, name: string) => {
    walk.push(child);
    names.push(name);
  };
  while (walk.length > 0) {
    const node = walk.pop()!;
    const copy = copyable(node, nodesPerStep);
    const n = copy?.count ?? node.children.size;
    size += 2 + names.pop()!.length + 4 + node.value.length + 4 + 4 + (n > 0 ? 12 : 0);
    nodes++;
    table.index(node.perms);
    if (copy === undefined) node.children.forEach(push);
    else {
      // The same bytes but for the permission indexes, which are rewritten in pass 2.
      size += copy.length;
      const copied = copy.records.eachPerms(copy.at, copy.length, (p) => table.index(p));
      nodes += copied;
      budget -= copied;
    }
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
  off = buf.writeUInt32LE(store.quota.size, off);
  for (const [domid, count] of store.quota) {
    off = buf.writeUInt32LE(domid, off);
    off = buf.writeUInt32LE(count, off);
  }
  // Nodes whose descendants are being written: where their length goes, and how many children are left.
  const open: { slot: number; remaining: number }[] = [];
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
    // Pass 1's choice again: a node read since (by a request, between steps) is walked instead,
    // which writes the same records, perhaps in another order, in as many bytes.
    const copy = copyable(node, nodesPerStep);
    const n = copy?.count ?? node.children.size;
    off = buf.writeUInt32LE(n, off);
    if (n > 0) {
      off = buf.writeUInt32LE(node.domains >>> 0, off);
      off = buf.writeUInt32LE(node.childBytes, off);
    }
    if (copy !== undefined) {
      off = buf.writeUInt32LE(copy.length, off);
      copy.records.copy(copy.at, copy.length, buf, off);
      const shift = off - copy.at;
      budget -= copy.records.eachPerms(copy.at, copy.length, (p, slot) => buf.writeUInt32LE(table.index(p), slot + shift));
      off += copy.length;
    } else if (n > 0) {
      open.push({ slot: off, remaining: n });
      off += 4;
      // Pushed, then reversed in place, so that children pop (and are written) in the map's order.
      const from = walk.length;
      node.children.forEach(push);
      reverseFrom(walk, from);
      reverseFrom(names, from);
    }
    if (copy !== undefined || n === 0) {
      // A complete subtree ends its parent's when it is the last child, and so on upwards.
      for (let top = open[open.length - 1]; top !== undefined && --top.remaining === 0; top = open[open.length - 1]) {
        buf.writeUInt32LE(off - (top.slot + 4), top.slot);
        open.pop();
      }
    }
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
 * `decodeSnapshot(buf)` is the store the bytes hold: for version 2, with the children of its nodes
 * read on first use (above). Any damage (bad magic or version, checksum mismatch, truncation, a
 * malformed record, trailing bytes) is an `XsError` EIO naming the problem, thrown here; nothing
 * partial is ever returned. Two children of one node with the same name, which only a faulty
 * encoder could write under a good checksum, are an EIO when that node's children are read.
 */
export function decodeSnapshot(buf: Buffer): Store {
  if (buf.length < HEADER + TRAILER) throw corrupt(`${buf.length} bytes is shorter than a snapshot`);
  if (buf.readUInt32LE(0) !== MAGIC) throw corrupt('not a snapshot (bad magic)');
  const version = buf.readUInt16LE(4);
  if (version !== VERSION && version !== 1) throw corrupt(`unsupported version ${version}`);
  const body = buf.length - TRAILER;
  if (crc32(buf.subarray(0, body)) !== buf.readUInt32LE(body)) throw corrupt('checksum mismatch');
  try {
    return version === 1 ? parse(buf, body) : parseLazily(buf, body);
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

/**
 * The part both versions share after the magic and the version: the generation, the node count,
 * the permission lists and the special names' permissions.
 */
function readHead(r: Reader): { generation: number; nodes: number; lists: Perms[]; special: Record<SpecialName, Perms> } {
  r.skip(8);
  const generation = r.f64();
  if (!Number.isSafeInteger(generation) || generation < 0) throw corrupt(`bad generation ${generation}`);
  const nodes = r.u32();
  const lists: Perms[] = new Array<Perms>(r.u32());
  for (let i = 0; i < lists.length; i++) lists[i] = readPerms(r);
  const special = {} as Record<SpecialName, Perms>;
  for (const name of SPECIAL_NAMES) special[name] = permsAt(lists, r.u32());
  return { generation, nodes, lists, special };
}

/** Version 2: checks every record (`scanTree`) and builds only the root. */
function parseLazily(buf: Buffer, end: number): Store {
  const r = new Reader(buf, end);
  const { generation, nodes, lists, special } = readHead(r);
  const counts = new Map<number, number>();
  for (let i = r.u32(); i > 0; i--) {
    const domid = r.u32();
    const n = r.u32();
    if (n === 0 || counts.has(domid)) throw corrupt(`bad quota entry for domain ${domid}`);
    counts.set(domid, n);
  }
  const tree = r.offset;
  scanTree(new Reader(buf, end, tree), nodes, lists.length);
  const [, root] = new Records(buf, end, lists).children(tree, 1)[0]!;
  return Object.freeze({
    root,
    quota: addAll(EMPTY_QUOTA, counts),
    special: Object.freeze(special) as SpecialPerms,
    generation,
  });
}

/**
 * `scanTree(r, nodes, lists)` checks the tree's records without building anything: lengths within
 * the bytes, permission indexes within the table, only the root without a name, each node's
 * descendants exactly as long as it says and its `childBytes` the sum of its children's names, the
 * node count as announced and nothing after the tree.
 */
function scanTree(r: Reader, nodes: number, lists: number): void {
  // Per open node: where its descendants must end, children left, and their names' bytes so far.
  const ends: number[] = [];
  const left: number[] = [];
  const bytes: number[] = [];
  const expected: number[] = [];
  let seen = 0;
  do {
    if (++seen > nodes) throw corrupt(`more than the ${nodes} nodes announced`);
    const nameLength = r.u16();
    if ((ends.length === 0) !== (nameLength === 0)) throw corrupt(`bad node name at byte ${r.offset - 2}`);
    r.skip(nameLength);
    r.skip(r.u32());
    if (r.u32() >= lists) throw corrupt(`permission list out of range at byte ${r.offset - 4}`);
    const n = r.u32();
    if (ends.length > 0) bytes[bytes.length - 1]! += nameLength + 1;
    if (n > 0) {
      r.skip(4);
      expected.push(r.u32());
      ends.push(r.u32() + r.offset);
      left.push(n);
      bytes.push(0);
      continue;
    }
    // Close every node this record completes, innermost first.
    while (left.length > 0 && --left[left.length - 1]! === 0) {
      if (r.offset !== ends.pop()) throw corrupt(`a subtree's length disagrees with its records at byte ${r.offset}`);
      if (bytes.pop() !== expected.pop()) throw corrupt(`a node's child bytes disagree with its children at byte ${r.offset}`);
      left.pop();
    }
  } while (left.length > 0);
  if (seen !== nodes) throw corrupt(`${seen} nodes, ${nodes} announced`);
  if (r.offset !== r.end) throw corrupt(`${r.end - r.offset} bytes after the tree`);
}

/** A version 2 tree's records, checked by `scanTree`, read a node's children at a time. */
class Records {
  constructor(
    private readonly buf: Buffer,
    private readonly end: number,
    private readonly lists: readonly Perms[],
  ) {}

  /** The `count` sibling records from `at`: leaves built, the others `XsNode.unloaded`. */
  children(at: number, count: number): [string, XsNode][] {
    const r = new Reader(this.buf, this.end, at);
    const entries = new Array<[string, XsNode]>(count);
    for (let i = 0; i < count; i++) {
      const name = r.latin1(r.u16());
      const value = r.latin1(r.u32());
      const perms = this.lists[r.u32()]!;
      const n = r.u32();
      if (n === 0) {
        entries[i] = [name, XsNode.leaf(value, perms)];
        continue;
      }
      const domains = r.u32();
      const childBytes = r.u32();
      const length = r.u32();
      entries[i] = [name, XsNode.unloaded(value, perms, domains, childBytes, new Subtree(this, r.offset, length, n, name))];
      r.skip(length);
    }
    return entries;
  }

  map(at: number, count: number, parent: string): Children {
    const entries = this.children(at, count);
    const children: Children = ImmMap(entries);
    if (children.size !== count) throw corrupt(`duplicate child under ${parent}`);
    return children;
  }

  /**
   * `eachPerms(at, length, visit)` calls `visit(perms, slot)` for each record in those bytes (a
   * subtree's records are contiguous, in pre-order), `slot` being the offset of its permission
   * index; returns how many records there are. Nothing is built.
   */
  eachPerms(at: number, length: number, visit: (perms: Perms, slot: number) => void): number {
    const buf = this.buf;
    const end = at + length;
    let records = 0;
    for (let p = at; p < end; records++) {
      p += 2 + buf.readUInt16LE(p);
      p += 4 + buf.readUInt32LE(p);
      visit(this.lists[buf.readUInt32LE(p)]!, p);
      p += 4;
      p += buf.readUInt32LE(p) > 0 ? 16 : 4;
    }
    return records;
  }

  /** `copy(at, length, out, to)` copies those bytes into `out` at `to`. */
  copy(at: number, length: number, out: Buffer, to: number): void {
    this.buf.copy(out, to, at, at + length);
  }
}

/**
 * An unloaded node's children in a version 2 snapshot: `count` records from byte `at`, which with
 * all their descendants take `length` bytes. The encoder copies them (`copyable`).
 */
class Subtree implements Unread {
  constructor(
    readonly records: Records,
    readonly at: number,
    readonly length: number,
    readonly count: number,
    private readonly parent: string,
  ) {}

  read(): Children {
    return this.records.map(this.at, this.count, this.parent);
  }
}

/**
 * The unread children of `node` if the encoder may copy them from their snapshot's bytes, in one
 * step of at most about `nodesPerStep` nodes (64 bytes a node at most, a bound, not an estimate);
 * a larger subtree has its own children read (one level: the nodes below stay unread) and is
 * walked, so that copying never holds the event loop much longer than a step.
 */
function copyable(node: XsNode, nodesPerStep: number): Subtree | undefined {
  const u = node.unread;
  return u instanceof Subtree && u.length <= nodesPerStep * 64 ? u : undefined;
}

function permsAt(lists: readonly Perms[], i: number): Perms {
  const p = lists[i];
  if (p === undefined) throw corrupt(`permission list ${i} out of range`);
  return p;
}

/** Version 1: builds the whole tree, recounting the quota. */
function parse(buf: Buffer, end: number): Store {
  const r = new Reader(buf, end);
  const { generation, nodes, lists, special } = readHead(r);
  const perms = (i: number): Perms => permsAt(lists, i);

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
