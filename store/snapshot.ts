import { crc32 } from './crc32.js';
import { XsError } from '../protocol/index.js';
import { XsNode } from './node.js';
import { SPECIAL_NAMES } from './path.js';
import type { Perms } from './perms.js';
import { addAll, EMPTY_QUOTA } from './quota.js';
import { Blocks, copyable, Subtree3 } from './snapshot-blocks.js';
import { corrupt, HEADER, HEADER_V2, KIDS, LETTER_CODE, MAGIC, permsAt, readHead, readQuota, Reader, TRAILER, VERSION, type SnapshotSource } from './snapshot-format.js';
import { readVersion1, readVersion2 } from './snapshot-legacy.js';
import type { SpecialPerms, Store } from './store.js';

export type { SnapshotSource } from './snapshot-format.js';

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
 *
 * This file: the encoder, `openSnapshot` and version 3's head. What the versions share is in
 * snapshot-format.ts, version 3's blocks in snapshot-blocks.ts, versions 1 and 2 in
 * snapshot-legacy.ts.
 */

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
    return { store: guarded(() => (version === 1 ? readVersion1(buf, body) : readVersion2(buf, body))), version, check: nothingLeft };
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
