import { ImmMap } from './imm-map.js';
import { crc32 } from './crc32.js';
import { XsError } from '../protocol/index.js';
import { XsNode, type Children, type Unread } from './node.js';
import type { Perms } from './perms.js';
import { corrupt, KIDS, Reader, type SnapshotSource } from './snapshot-format.js';

/**
 * Version 3's blocks (layout: snapshot.ts): a node's children read from the snapshot's source
 * when first used, each block's checksum checked before any of its records is built; the
 * background check of every block; and the encoder's copy of a region not read yet.
 */

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
export class Blocks {
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

/** Blocks of fewer children are read whole on first use: one pass builds them all cheaply. */
const FIND_FROM = 64;
/**
 * `find` scans of one block before its children are read whole: one, for the first request after
 * a start. A second name asked for under the same directory (a client listing it, a recovery
 * replaying its log) reads the block whole, as without `find`: one scan wasted at most.
 */
export const FINDS = 1;

/**
 * An unloaded node's children in a version 3 snapshot: its region, `region` bytes from `at`,
 * begins with their block (`block` bytes, checksum `crc`), the regions of those with children
 * after it. Read on first use, the block checked first; the encoder copies the whole region
 * (`copyInto`), checking it too, so damage is never carried into a new snapshot's checksums.
 */
export class Subtree3 implements Unread, Region {
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
export function copyable(node: XsNode, nodesPerStep: number): Subtree3 | undefined {
  const u = node.unread;
  return u instanceof Subtree3 && u.region <= nodesPerStep * 64 ? u : undefined;
}
