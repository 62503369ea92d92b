import { ImmMap } from './imm-map.js';
import { XsNode, type Children, type Unread } from './node.js';
import type { Perms } from './perms.js';
import { addAll, EMPTY_QUOTA } from './quota.js';
import { corrupt, permsAt, readHead, readQuota, Reader } from './snapshot-format.js';
import type { SpecialPerms, Store } from './store.js';

/**
 * Snapshot versions 1 and 2 (snapshot.ts gives their layout), read but no longer written: a
 * store saved by an older build still starts. Both come whole in memory, their one checksum
 * checked by `openSnapshot` before they get here.
 */

/** Version 1: builds the whole tree, recounting the quota. */
export function readVersion1(buf: Buffer, end: number): Store {
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

/** Version 2: checks every record (`scanTree`) and builds only the root. */
export function readVersion2(buf: Buffer, end: number): Store {
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
