import { ImmMap } from './imm-map.js';
import { crc32 } from './crc32.js';
import { XsError } from '../protocol/index.js';
import { XsNode, type Children, type Unread } from './node.js';
import { SPECIAL_NAMES, type SpecialName } from './path.js';
import { DOM0_ONLY, samePerms, type AccessLetter, type PermEntry, type Perms } from './perms.js';
import { addAll, EMPTY_QUOTA } from './quota.js';
import type { SpecialPerms, Store } from './store.js';

/**
 * The snapshot codec: a whole store version as one compact, checksummed byte string, for the
 * persistence layer (a snapshot file) and for live update (handing the store to the next process).
 * Pure: it neither reads nor writes files.
 *
 * Layout (version 3), little-endian throughout:
 *   header   "NXSS" | version u16 (3) | reserved u16 | generation f64 | nodes u32 | perm lists u32
 *            | head length u32 (the bytes up to and including the head's checksum)
 *   perms    per list: entries u16, then per entry: letter u8 ('n' 'r' 'w' 'b'), domid u16
 *   special  per special name in `SPECIAL_NAMES` order: perm-list index u32
 *   quota    domains u32, then per domain: domid u32, nodes it owns u32
 *   root     value (u32 length, latin1 bytes: any byte 0..255, spec §4), perm-list index u32,
 *            children u32, and if there are some, the five "kids" fields below
 *   crc      crc32 of the head so far, u32
 *   tree     the root's region.
 * A node's region is its block, then the regions of its children that have children, in the
 * block's order. A block is its children's records: name (u16 length, bytes), value (u32
 * length, bytes), perm-list index u32, children u32, and when they have some, "kids": their
 * `domains` summary u32, their `childBytes` u32, their block's length u32 and crc32 u32, and their
 * region's length u32. So every byte after the head is under exactly one checksum, held by the
 * record (or the head) that points at it, and a node's children are one contiguous read.
 * Regions hold no absolute offsets: a region copied elsewhere is still valid.
 * Version 2 (read, no longer written): no head length, the tree in pre-order (each record
 * followed by its descendants; a node with children has `domains`, `childBytes` and its
 * descendants' length after `children`) and one crc32 of everything as a trailer. Version 1 as
 * version 2 without the quota and the three fields after `children`.
 *
 * Permission lists are written once and referenced by index: most nodes inherit their parent's
 * list by reference, so a tree of 10⁶ nodes has a handful of distinct lists, and decoding gives
 * back shared lists (the same memory shape the operations build).
 *
 * Opening a version 3 snapshot (`openSnapshot`, issue 16) reads and checks the head only: the
 * store's root, its generation, quota and summaries (stored, not recomputed). A node's children
 * are read when first used (`XsNode.unloaded`), from the source (a file read with pread, for a
 * start: server/persistence/snapshot-file.ts), their block's checksum checked before any of them
 * is built: a start costs the head, and each request what it touches. `check` reads and checks
 * the rest (the daemon runs it in the background after its first reply, and a damaged block is
 * the source's `damaged` before it is an EIO). `decodeSnapshot` (bytes in memory: a live
 * update's hand-over, tests) checks everything before it returns. The stored quota and summaries
 * are what the encoder had; `checkStore` (`xenstore-control check`) recounts them. Encoding a
 * store with unread subtrees copies their regions (checked, permission indexes and checksums
 * rewritten) rather than reading them.
 *
 * Version 2 (before issue 16's version 3) is decoded lazily too, from the whole bytes in
 * memory, after the whole checksum: its children are read together, in one pass over their
 * records, each skipping its subtree by its length. Encoding a store read from it reads its
 * nodes.
 *
 * Both directions are iterative (an explicit stack: XSA-418, client-chosen depth); encoding sizes
 * the output in a first walk and fills one buffer in a second.
 */
const MAGIC = 0x5353584e; // "NXSS" read as u32 LE
const VERSION = 3;
/** Versions 1 and 2's header, and version 3's, which adds the head's length. */
const HEADER_V2 = 4 + 2 + 2 + 8 + 4 + 4;
const HEADER = HEADER_V2 + 4;
const TRAILER = 4;
/** A version 3 record's fields after `children` when there are some. */
const KIDS = 20;
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

/** How many children `node` has, without reading them when they are still in a snapshot's bytes. */
function childCount(node: XsNode): number {
  return node.unread?.count ?? node.children.size;
}

/**
 * `snapshotSteps(store, nodesPerStep)` encodes like `encodeSnapshot`, pausing (`yield`) after
 * every `nodesPerStep` nodes of each walk and every `nodesPerStep * 64` bytes copied; the
 * generator's return value is the bytes. A version is immutable, so the walk can be spread over
 * many turns of the event loop while requests go on changing the live store: a snapshot of 10⁶
 * nodes no longer stops the daemon for the second it takes (server/persistence/journal.ts).
 */
export function* snapshotSteps(store: Store, nodesPerStep: number): Generator<void, Buffer, void> {
  let budget = nodesPerStep;
  // Pass 1: size, node count and the table of distinct permission lists.
  const table = new PermTable();
  for (const name of SPECIAL_NAMES) table.index(store.special[name]);
  const rootKids = childCount(store.root);
  let size = HEADER + SPECIAL_NAMES.length * 4 + 4 + store.quota.size * 8 + TRAILER;
  size += 4 + store.root.value.length + 4 + 4 + (rootKids > 0 ? KIDS : 0);
  table.index(store.root.perms);
  let nodes = 1;
  const walk: XsNode[] = [store.root];
  while (walk.length > 0) {
    const node = walk.pop()!;
    const copy = copyable(node, nodesPerStep);
    if (copy !== undefined) {
      // The same bytes but for the permission indexes and checksums, rewritten in pass 2.
      size += copy.region;
      const copied = copy.scan((p) => table.index(p));
      nodes += copied;
      budget -= copied;
    } else {
      for (const [name, child] of node.children) {
        const n = childCount(child);
        size += 2 + name.length + 4 + child.value.length + 4 + 4 + (n > 0 ? KIDS : 0);
        nodes++;
        table.index(child.perms);
        if (n > 0) walk.push(child);
        if (--budget <= 0) {
          yield;
          budget = nodesPerStep;
        }
      }
    }
    if (budget <= 0) {
      yield;
      budget = nodesPerStep;
    }
  }
  if (nodes > 0xffffffff) throw new XsError('E2BIG', 'snapshot: too many nodes');
  for (const perms of table.lists) size += 2 + perms.length * 3;

  // Pass 2: fill the buffer: the head, then the root's region.
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  off = buf.writeUInt32LE(MAGIC, off);
  off = buf.writeUInt16LE(VERSION, off);
  off = buf.writeUInt16LE(0, off);
  off = buf.writeDoubleLE(store.generation, off);
  off = buf.writeUInt32LE(nodes, off);
  off = buf.writeUInt32LE(table.lists.length, off);
  const headSlot = off;
  off += 4;
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
  off = buf.writeUInt32LE(store.root.value.length, off);
  off = putLatin1(buf, store.root.value, off);
  off = buf.writeUInt32LE(table.index(store.root.perms), off);
  off = buf.writeUInt32LE(rootKids, off);
  let rootSlot = -1;
  if (rootKids > 0) {
    off = buf.writeUInt32LE(store.root.domains >>> 0, off);
    off = buf.writeUInt32LE(store.root.childBytes, off);
    rootSlot = off;
    off += 12;
  }
  const headEnd = off + TRAILER;
  buf.writeUInt32LE(headEnd, headSlot);
  off = headEnd;

  /**
   * A node whose block is being written (`entries` left to write; `end` -1 until done), then its
   * children with children, whose regions follow the block, `next` the one being written.
   */
  interface Open {
    readonly at: number;
    end: number;
    readonly slot: number;
    readonly entries: Iterator<[string, XsNode]>;
    readonly kids: XsNode[];
    readonly slots: number[];
    next: number;
  }
  // One record of a block; the child's block length, checksum and region are patched later.
  const record = (top: Open, name: string, child: XsNode) => {
    off = buf.writeUInt16LE(name.length, off);
    off = putLatin1(buf, name, off);
    off = buf.writeUInt32LE(child.value.length, off);
    off = putLatin1(buf, child.value, off);
    off = buf.writeUInt32LE(table.index(child.perms), off);
    const n = childCount(child);
    off = buf.writeUInt32LE(n, off);
    if (n > 0) {
      off = buf.writeUInt32LE(child.domains >>> 0, off);
      off = buf.writeUInt32LE(child.childBytes, off);
      top.kids.push(child);
      top.slots.push(off);
      off += 12;
    }
  };
  const patch = (slot: number, blockLength: number, crc: number, region: number) => {
    buf.writeUInt32LE(blockLength, slot);
    buf.writeUInt32LE(crc, slot + 4);
    buf.writeUInt32LE(region, slot + 8);
  };
  // Pass 1's choice again: a node read since (by a request, between steps) is walked instead,
  // which writes the same records, perhaps in another order, in as many bytes.
  const region = (node: XsNode, slot: number, open: Open[]) => {
    const copy = copyable(node, nodesPerStep);
    if (copy === undefined) {
      open.push({ at: off, end: -1, slot, entries: node.children.entries(), kids: [], slots: [], next: 0 });
      return;
    }
    const [crc, records] = copy.copyInto(buf, off, (p) => table.index(p));
    patch(slot, copy.block, crc, copy.region);
    off += copy.region;
    budget -= records;
  };
  const open: Open[] = [];
  if (rootKids > 0) region(store.root, rootSlot, open);
  while (open.length > 0) {
    const top = open[open.length - 1]!;
    if (top.end < 0) {
      const e = top.entries.next();
      if (e.done === true) top.end = off;
      else {
        record(top, e.value[0], e.value[1]);
        budget--;
      }
    } else if (top.next < top.kids.length) {
      const i = top.next++;
      region(top.kids[i]!, top.slots[i]!, open);
    } else {
      // Its children's regions are written and their slots (inside this block) patched.
      open.pop();
      patch(top.slot, top.end - top.at, crc32(buf.subarray(top.at, top.end)), off - top.at);
    }
    if (budget <= 0) {
      yield;
      budget = nodesPerStep;
    }
  }
  if (off !== size) throw new Error(`snapshot: wrote ${off} bytes of ${size}`);
  buf.writeUInt32LE(crc32(buf.subarray(0, headEnd - TRAILER)), headEnd - TRAILER);
  return buf;
}

/** Short strings byte by byte: cheaper than `Buffer.write`'s argument handling for names. */
function putLatin1(buf: Buffer, s: string, off: number): number {
  const n = s.length;
  if (n > 32) return off + buf.write(s, off, 'latin1');
  for (let i = 0; i < n; i++) buf[off + i] = s.charCodeAt(i);
  return off + n;
}

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

/** `bufferSource(buf)` reads a snapshot held in memory. */
export function bufferSource(buf: Buffer): SnapshotSource {
  return { size: buf.length, read: (at, length) => buf.subarray(at, at + length) };
}

/** A snapshot opened by `openSnapshot`. */
export interface OpenedSnapshot {
  readonly store: Store;
  readonly version: number;
  /**
   * `check(recordsPerStep)` reads and checks every block (checksums, structure, the node count),
   * pausing (`yield`) once the blocks checked since the last pause hold `recordsPerStep` records
   * (a block may hold 10⁵ of them: counting blocks would not bound a step); damage is an EIO
   * (after `damaged`). Versions 1 and 2 were checked whole when opened: nothing to do.
   */
  check(recordsPerStep: number): Generator<void, void, void>;
}

/**
 * `decodeSnapshot(buf)` is the store the bytes hold, every checksum checked: for versions 2 and 3,
 * with the children of its nodes read on first use (above). Any damage (bad magic or version,
 * checksum mismatch, truncation, a malformed record, trailing bytes) is an `XsError` EIO naming
 * the problem, thrown here; nothing partial is ever returned. Two children of one node with the
 * same name, which only a faulty encoder could write under a good checksum, are an EIO when that
 * node's children are read.
 */
export function decodeSnapshot(buf: Buffer): Store {
  const opened = openSnapshot(bufferSource(buf));
  const steps = opened.check(Infinity);
  while (steps.next().done !== true);
  return opened.store;
}

/**
 * `openSnapshot(source)` is the store a snapshot holds, reading as little as it can: for version
 * 3 only the head (its checksum checked; the file's size checked against the lengths it gives),
 * each node's children being read, and their block's checksum checked, when first used; versions
 * 1 and 2 are read whole and checked as `decodeSnapshot` does. Damage found here is an EIO.
 */
export function openSnapshot(source: SnapshotSource): OpenedSnapshot {
  const first = source.read(0, HEADER);
  if (first.length < HEADER_V2 + TRAILER) throw corrupt(`${source.size} bytes is shorter than a snapshot`);
  if (first.readUInt32LE(0) !== MAGIC) throw corrupt('not a snapshot (bad magic)');
  const version = first.readUInt16LE(4);
  if (version !== VERSION && version !== 2 && version !== 1) throw corrupt(`unsupported version ${version}`);
  if (version !== VERSION) {
    const buf = source.read(0, source.size);
    const body = buf.length - TRAILER;
    if (crc32(buf.subarray(0, body)) !== buf.readUInt32LE(body)) throw corrupt('checksum mismatch');
    return { store: guarded(() => (version === 1 ? parse(buf, body) : parseLazily(buf, body))), version, check: nothingLeft };
  }
  if (first.length < HEADER) throw corrupt(`${source.size} bytes is shorter than a snapshot`);
  const headEnd = first.readUInt32LE(HEADER_V2);
  if (headEnd < HEADER + TRAILER || headEnd > source.size) throw corrupt(`bad head length ${headEnd}`);
  const head = source.read(0, headEnd);
  if (head.length !== headEnd) throw corrupt('truncated head');
  const body = headEnd - TRAILER;
  if (crc32(head.subarray(0, body)) !== head.readUInt32LE(body)) throw corrupt('checksum mismatch in the head');
  return guarded(() => parseHead(source, head, body));
}

function* nothingLeft(): Generator<void, void, void> {}

function guarded<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof XsError) throw e;
    throw corrupt((e as Error).message); // a RangeError from a read past the end
  }
}

/** Version 3's head: the store with an unread root, and the check of the rest. */
function parseHead(source: SnapshotSource, head: Buffer, end: number): OpenedSnapshot {
  const r = new Reader(head, end);
  const { generation, nodes, lists, special } = readHead(r, true);
  const counts = readQuota(r);
  const value = r.latin1(r.u32());
  const perms = permsAt(lists, r.u32());
  const n = r.u32();
  const blocks = new Blocks(source, lists);
  let root: XsNode;
  let top: Subtree3 | undefined;
  if (n === 0) {
    if (source.size !== head.length) throw corrupt(`${source.size - head.length} bytes after the tree`);
    root = XsNode.leaf(value, perms);
  } else {
    const domains = r.u32();
    const childBytes = r.u32();
    const block = r.u32();
    const crc = r.u32();
    const region = r.u32();
    if (block === 0 || region < block) throw corrupt('bad root region');
    if (head.length + region !== source.size) {
      throw corrupt(head.length + region > source.size ? 'truncated' : `${source.size - head.length - region} bytes after the tree`);
    }
    top = new Subtree3(blocks, head.length, block, crc, region, n, childBytes, '');
    root = XsNode.unloaded(value, perms, domains, childBytes, top);
  }
  if (r.offset !== end) throw corrupt(`${end - r.offset} bytes after the root`);
  const store: Store = Object.freeze({
    root,
    quota: addAll(EMPTY_QUOTA, counts),
    special: Object.freeze(special) as SpecialPerms,
    generation,
  });
  return { store, version: VERSION, check: (recordsPerStep) => blocks.checkAll(top, nodes, recordsPerStep) };
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
function readHead(r: Reader, v3 = false): { generation: number; nodes: number; lists: Perms[]; special: Record<SpecialName, Perms> } {
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

/** Version 2: checks every record (`scanTree`) and builds only the root. */
function parseLazily(buf: Buffer, end: number): Store {
  const r = new Reader(buf, end);
  const { generation, nodes, lists, special } = readHead(r);
  const counts = readQuota(r);
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

/** The stored per-domain node counts (versions 2 and 3). */
function readQuota(r: Reader): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = r.u32(); i > 0; i--) {
    const domid = r.u32();
    const n = r.u32();
    if (n === 0 || counts.has(domid)) throw corrupt(`bad quota entry for domain ${domid}`);
    counts.set(domid, n);
  }
  return counts;
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
}

/**
 * An unloaded node's children in a version 2 snapshot: `count` records from byte `at`, which with
 * all their descendants take `length` bytes. The encoder reads them (it writes version 3).
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

/** One record of a version 3 block, as `eachRecord` reads it (reused: checking allocates nothing). */
interface Rec {
  /** `name` and `value` are offsets within the block; `permSlot`, `slot` and `regionAt` in the block's `base` coordinates. */
  name: number;
  nameLength: number;
  value: number;
  valueLength: number;
  permSlot: number;
  perms: number;
  kids: number;
  domains: number;
  childBytes: number;
  /** Where the child's block length, checksum and region length are (its checksum at `slot + 4`). */
  slot: number;
  block: number;
  crc: number;
  region: number;
  /** Where the child's region starts, in the same coordinates as the block's `base`. */
  regionAt: number;
}

/** Where a node's children are in a version 3 snapshot (a `Subtree3`, or the same fields). */
interface Region {
  readonly at: number;
  readonly block: number;
  readonly crc: number;
  readonly region: number;
  readonly count: number;
  readonly childBytes: number;
}

/**
 * `eachRecord(b, base, where, lists, each)` reads the `where.count` records of the block `b`
 * (which starts at `base`), checking them (lengths within the block, permission indexes within
 * the `lists` table, names not empty, the children's regions exactly filling the node's, its
 * `childBytes` the sum of the names), and calls `each` with each.
 */
function eachRecord(b: Buffer, base: number, where: Region, lists: number, each: (rec: Rec) => void): void {
  const r = new Reader(b, b.length);
  const rec = REC;
  let regionAt = base + where.block;
  let names = 0;
  for (let i = 0; i < where.count; i++) {
    rec.nameLength = r.u16();
    if (rec.nameLength === 0) throw corrupt(`empty node name at byte ${base + r.offset - 2}`);
    rec.name = r.offset;
    r.skip(rec.nameLength);
    rec.valueLength = r.u32();
    rec.value = r.offset;
    r.skip(rec.valueLength);
    rec.permSlot = base + r.offset;
    rec.perms = r.u32();
    if (rec.perms >= lists) throw corrupt(`permission list out of range at byte ${rec.permSlot}`);
    rec.kids = r.u32();
    if (rec.kids > 0) {
      rec.domains = r.u32();
      rec.childBytes = r.u32();
      rec.slot = base + r.offset;
      rec.block = r.u32();
      rec.crc = r.u32();
      rec.region = r.u32();
      if (rec.block === 0 || rec.region < rec.block) throw corrupt(`bad region at byte ${rec.slot}`);
      rec.regionAt = regionAt;
      regionAt += rec.region;
    }
    names += rec.nameLength + 1;
    each(rec);
  }
  if (r.offset !== b.length) throw corrupt(`${b.length - r.offset} bytes after the records of a block at byte ${base}`);
  if (regionAt !== base + where.region) throw corrupt(`a region's length disagrees with its blocks at byte ${base}`);
  if (names !== where.childBytes) throw corrupt(`a node's child bytes disagree with its children at byte ${base}`);
}
/**
 * `checkBlock(b, where, lists, regions)` checks a block as `eachRecord` does, without building or
 * calling anything per record (the background check of 10⁶ records: issue 16), pushing the
 * regions of the children with children on `regions`; returns how many records it holds.
 */
function checkBlock(b: Buffer, where: Region, lists: number, regions: Region[]): number {
  const end = b.length;
  const base = where.at;
  let p = 0;
  let regionAt = base + where.block;
  let names = 0;
  for (let i = 0; i < where.count; i++) {
    if (p + 2 > end) throw corrupt(`truncated block at byte ${base}`);
    const nameLength = b.readUInt16LE(p);
    if (nameLength === 0) throw corrupt(`empty node name at byte ${base + p}`);
    p += 2 + nameLength;
    if (p + 4 > end) throw corrupt(`truncated block at byte ${base}`);
    p += 4 + b.readUInt32LE(p);
    if (p + 8 > end) throw corrupt(`truncated block at byte ${base}`);
    if (b.readUInt32LE(p) >= lists) throw corrupt(`permission list out of range at byte ${base + p}`);
    const kids = b.readUInt32LE(p + 4);
    p += 8;
    if (kids > 0) {
      if (p + KIDS > end) throw corrupt(`truncated block at byte ${base}`);
      const block = b.readUInt32LE(p + 8);
      const region = b.readUInt32LE(p + 16);
      if (block === 0 || region < block) throw corrupt(`bad region at byte ${base + p + 8}`);
      regions.push({ at: regionAt, block, crc: b.readUInt32LE(p + 12), region, count: kids, childBytes: b.readUInt32LE(p + 4) });
      regionAt += region;
      p += KIDS;
    }
    names += nameLength + 1;
  }
  if (p !== end) throw corrupt(`${end - p} bytes after the records of a block at byte ${base}`);
  if (regionAt !== base + where.region) throw corrupt(`a region's length disagrees with its blocks at byte ${base}`);
  if (names !== where.childBytes) throw corrupt(`a node's child bytes disagree with its children at byte ${base}`);
  return where.count;
}

const REC: Rec = { name: 0, nameLength: 0, value: 0, valueLength: 0, permSlot: 0, perms: 0, kids: 0, domains: 0, childBytes: 0, slot: 0, block: 0, crc: 0, region: 0, regionAt: 0 };

/** A version 3 snapshot's blocks, read from its source when asked for, each checked first. */
class Blocks {
  constructor(
    readonly source: SnapshotSource,
    readonly lists: readonly Perms[],
  ) {}

  /** Damage found after the open: the source's owner hears of it, then it is thrown. */
  damage(e: unknown): XsError {
    const err = e instanceof XsError ? e : corrupt((e as Error).message);
    this.source.damaged?.(err);
    return err;
  }

  /** `checked(bytes, at, where)`: the block at `at` (within `bytes`, which start at `base`), its checksum checked. */
  static block(bytes: Buffer, at: number, where: Region, base: number): Buffer {
    if (at + where.block > bytes.length) throw corrupt(`truncated at byte ${base + bytes.length}`);
    const b = bytes.subarray(at, at + where.block);
    if (crc32(b) !== where.crc) throw corrupt(`checksum mismatch in the block at byte ${base + at}`);
    return b;
  }

  /**
   * `walk(where, visit, onBlock)` reads the whole region `where` at once and checks every block
   * in it, parents before children, calling `visit(rec, bytes)` per record and `onBlock(at,
   * length, crcSlot)` per block (offsets within the returned bytes; `crcSlot` -1 for the first).
   */
  walk(where: Region, visit: (rec: Rec) => void, onBlock?: (at: number, length: number, crcSlot: number) => void): Buffer {
    const bytes = this.source.read(where.at, where.region);
    try {
      const stack: { at: number; where: Region; crcSlot: number }[] = [{ at: 0, where: { ...where, at: 0 }, crcSlot: -1 }];
      while (stack.length > 0) {
        const { at, where: w, crcSlot } = stack.pop()!;
        const b = Blocks.block(bytes, at, w, where.at);
        onBlock?.(at, w.block, crcSlot);
        eachRecord(b, at, w, this.lists.length, (rec) => {
          visit(rec);
          if (rec.kids > 0) {
            const child = { at: rec.regionAt, block: rec.block, crc: rec.crc, region: rec.region, count: rec.kids, childBytes: rec.childBytes };
            stack.push({ at: rec.regionAt, where: child, crcSlot: rec.slot + 4 });
          }
        });
      }
    } catch (e) {
      throw this.damage(e);
    }
    return bytes;
  }

  /**
   * `checkAll(top, nodes, recordsPerStep)` checks every block below the root region `top` (see
   * `OpenedSnapshot.check`), one read per block, and that there are `nodes` records in all.
   */
  *checkAll(top: Region | undefined, nodes: number, recordsPerStep: number): Generator<void, void, void> {
    let seen = 1;
    let budget = recordsPerStep;
    const stack: Region[] = top === undefined ? [] : [top];
    const lists = this.lists.length;
    while (stack.length > 0) {
      const w = stack.pop()!;
      try {
        seen += checkBlock(Blocks.block(this.source.read(w.at, w.block), 0, w, w.at), w, lists, stack);
        if (seen > nodes) throw corrupt(`more than the ${nodes} nodes announced`);
      } catch (e) {
        throw this.damage(e);
      }
      budget -= w.count;
      if (budget <= 0) {
        yield;
        budget = recordsPerStep;
      }
    }
    if (seen !== nodes) throw this.damage(corrupt(`${seen} nodes, ${nodes} announced`));
  }
}

/**
 * An unloaded node's children in a version 3 snapshot: its region, `region` bytes from `at`,
 * begins with their block (`block` bytes, checksum `crc`), the regions of those with children
 * after it. Read on first use, the block checked first; the encoder copies the whole region
 * (`copyInto`), checking it too, so damage is never carried into a new snapshot's checksums.
 */
/** Blocks of fewer children are read whole on first use: one pass builds them all cheaply. */
const FIND_FROM = 64;
/**
 * `find` scans of one block before its children are read whole: one, for the first request after
 * a start. A second name asked for under the same directory (a client listing it, a recovery
 * replaying its log) reads the block whole, as without `find`: one scan wasted at most.
 */
export const FINDS = 1;

class Subtree3 implements Unread, Region {
  constructor(
    private readonly blocks: Blocks,
    readonly at: number,
    readonly block: number,
    readonly crc: number,
    readonly region: number,
    readonly count: number,
    readonly childBytes: number,
    private readonly parent: string,
  ) {}

  /** Children `find` built, by name: `read` puts these very nodes in the map. */
  private found: Map<string, XsNode> | undefined;
  /** How many times `find` scanned the block (at most `FINDS`). */
  private finds = 0;

  read(): Children {
    const blocks = this.blocks;
    const lists = blocks.lists;
    const found = this.found;
    this.found = undefined;
    // Set into the map as the records are read, not through an array of entries that `ImmMap`
    // would wrap in a sequence first: the first request after a start runs this unoptimised.
    let children: Children;
    try {
      const b = Blocks.block(blocks.source.read(this.at, this.block), 0, this, this.at);
      children = ImmMap<string, XsNode>().withMutations((m) =>
        eachRecord(b, this.at, this, lists.length, (rec) => {
          const name = b.toString('latin1', rec.name, rec.name + rec.nameLength);
          m.set(name, found?.get(name) ?? this.node(b, rec, name));
        }),
      );
    } catch (e) {
      throw blocks.damage(e);
    }
    if (children.size !== this.count) throw blocks.damage(corrupt(`duplicate child under ${this.parent || '/'}`));
    return children;
  }

  /**
   * `find(name)` (Unread): the child `name`, from one pass over the block that compares names
   * and builds only the node that matches (every record still checked as `read` checks it). For
   * a block of `FIND_FROM` children or more, `FINDS` times per node at most (a name found is
   * kept and not scanned for again): a client asking again and again for names under a large
   * directory not read yet (each a scan of the block rather than a map lookup) gets the whole
   * map built after that, as without `find`.
   */
  find(name: string): XsNode | null | undefined {
    const hit = this.found?.get(name);
    if (hit !== undefined) return hit;
    if (this.count < FIND_FROM || this.finds >= FINDS) return undefined;
    this.finds++;
    const blocks = this.blocks;
    let node: XsNode | null = null;
    try {
      const b = Blocks.block(blocks.source.read(this.at, this.block), 0, this, this.at);
      const n = name.length;
      eachRecord(b, this.at, this, blocks.lists.length, (rec) => {
        if (node !== null || rec.nameLength !== n) return;
        // Names are latin1 (`read` decodes them so): byte i is character i.
        for (let i = 0; i < n; i++) if (b[rec.name + i] !== name.charCodeAt(i)) return;
        node = this.node(b, rec, name);
      });
    } catch (e) {
      throw blocks.damage(e);
    }
    if (node !== null) (this.found ??= new Map()).set(name, node);
    return node;
  }

  /** The node of the record `rec` of block `b`, named `name`. */
  private node(b: Buffer, rec: Rec, name: string): XsNode {
    const value = b.toString('latin1', rec.value, rec.value + rec.valueLength);
    const perms = this.blocks.lists[rec.perms]!;
    return rec.kids === 0
      ? XsNode.leaf(value, perms)
      : XsNode.unloaded(value, perms, rec.domains, rec.childBytes, new Subtree3(this.blocks, rec.regionAt, rec.block, rec.crc, rec.region, rec.kids, rec.childBytes, name));
  }

  /** `scan(visit)` checks the region and calls `visit` with each record's permissions; returns how many records. */
  scan(visit: (perms: Perms) => void): number {
    const lists = this.blocks.lists;
    let records = 0;
    this.blocks.walk(this, (rec) => {
      visit(lists[rec.perms]!);
      records++;
    });
    return records;
  }

  /**
   * `copyInto(out, to, index)` copies the region, checked, into `out` at `to` with each permission
   * index rewritten (`index` of its list) and each block's checksum recomputed, children's first
   * (a block holds its children's checksums); returns the first block's checksum and how many
   * records were copied.
   */
  copyInto(out: Buffer, to: number, index: (perms: Perms) => number): [number, number] {
    const lists = this.blocks.lists;
    const slots: number[] = [];
    const blocks: number[] = [];
    const bytes = this.blocks.walk(
      this,
      (rec) => slots.push(rec.permSlot),
      (at, length, crcSlot) => blocks.push(at, length, crcSlot),
    );
    bytes.copy(out, to);
    for (const slot of slots) out.writeUInt32LE(index(lists[bytes.readUInt32LE(slot)]!), to + slot);
    // `walk` visits parents before children: backwards, every child's checksum is written before
    // its parent's block is summed.
    let crc = 0;
    for (let i = blocks.length - 3; i >= 0; i -= 3) {
      const at = to + blocks[i]!;
      crc = crc32(out.subarray(at, at + blocks[i + 1]!));
      const slot = blocks[i + 2]!;
      if (slot >= 0) out.writeUInt32LE(crc, to + slot);
    }
    return [crc, slots.length];
  }
}

/**
 * The unread children of `node` if the encoder may copy them from their snapshot's bytes (version
 * 3), in one step of at most about `nodesPerStep` nodes (a record is at least 14 bytes: 64 a node
 * is a bound on the work, not an estimate); a larger subtree has its own children read (one level:
 * the nodes below stay unread) and is walked, so that copying never holds the event loop much
 * longer than a step.
 */
function copyable(node: XsNode, nodesPerStep: number): Subtree3 | undefined {
  const u = node.unread;
  return u instanceof Subtree3 && u.region <= nodesPerStep * 64 ? u : undefined;
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
