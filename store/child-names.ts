/**
 * A node's child names in the order DIRECTORY lists them (node.ts `childNames`), kept per child
 * map: the maps are immutable, so a listing made once serves every client and every page of that
 * version (issue 18: a listing of 100,000 children was sorted again for every page).
 *
 * A large directory's listing is not sorted again after a write either (issue 18: the first
 * listing of a 20,000-child directory, a sort of 20,000 names, held the loop 10-30 ms): a map of
 * `KEPT_SORTED` children or more carries its predecessor's sorted names forward. A child rewritten
 * keeps the same array (and so the same wire listing, server/dispatch/listing.ts); a child added
 * or removed is noted in a short chain over the last sorted array, and the chain is merged into a
 * new sorted array, in O(n + k log k) instead of a sort's O(n log n), when it is listed or once it
 * is n/8 long (so the work per write stays O(1) amortized, and a first listing O(n)). A
 * directory growing past `KEPT_SORTED` is sorted then, once. Smaller directories are sorted when
 * first listed: under a millisecond.
 *
 * Keyed by the map, not kept on the node: a value written to a directory keeps its listing, and
 * the nodes, made by the million and rarely listed, carry no field for it. Weak maps hold nothing
 * alive; a chain holds the sorted array it starts from.
 */

/** What a child map is to its listing: its size and its names. */
export interface NameSet {
  readonly size: number;
  keys(): IterableIterator<string>;
}

/** From this size on, a directory's sorted names follow its writes. */
export const KEPT_SORTED = 1024;

/** A chain of changes is merged once it is 1/MERGE_RATIO of the names: O(MERGE_RATIO) per write amortized. */
const MERGE_RATIO = 8;

/** One child added (`present`) or removed since `base` was sorted; `prev` the change before. */
interface Change {
  readonly base: readonly string[];
  readonly name: string;
  readonly present: boolean;
  readonly prev: Change | undefined;
  readonly length: number;
}

const SORTED = new WeakMap<NameSet, readonly string[]>();
const CHANGED = new WeakMap<NameSet, Change>();

/**
 * `childNames(map)`: its names sorted by byte value, the same frozen array for as long as the map
 * is unchanged (oxenstored's order; spec §4.1).
 */
export function childNames(map: NameSet): readonly string[] {
  let names = SORTED.get(map);
  if (names === undefined) {
    const change = CHANGED.get(map);
    // The default order compares UTF-16 code units: for byte strings (latin1), byte order.
    names = Object.freeze(change !== undefined ? merged(change) : [...map.keys()].sort());
    SORTED.set(map, names);
    if (change !== undefined) CHANGED.delete(map);
  }
  return names;
}

/**
 * `carry(before, after, name, present)`: `after` is `before` with child `name` added or rewritten
 * (`present`), or removed; a large map's sorted names follow (see above). O(1) unless the chain
 * is merged.
 */
export function carry(before: NameSet, after: NameSet, name: string, present: boolean): void {
  const large = Math.max(before.size, after.size);
  if (large < KEPT_SORTED) return;
  const names = SORTED.get(before);
  const change = names === undefined ? CHANGED.get(before) : undefined;
  if (before.size === after.size) {
    // A child rewritten: the same names.
    if (names !== undefined) SORTED.set(after, names);
    else if (change !== undefined) CHANGED.set(after, change);
    return;
  }
  if (names === undefined && change === undefined) {
    // Growing past the threshold: sorted once, here; a larger map not yet listed waits for its listing.
    if (before.size < KEPT_SORTED) childNames(after);
    return;
  }
  const next: Change = names !== undefined ? { base: names, name, present, prev: undefined, length: 1 } : { base: change!.base, name, present, prev: change, length: change!.length + 1 };
  CHANGED.set(after, next);
  if (next.length * MERGE_RATIO >= after.size) childNames(after);
}

/** The sorted names `change` and the changes before it make of their base: one merge. */
function merged(change: Change): string[] {
  const base = change.base;
  // Newest first; a stable sort by name keeps, for each name, its newest change first.
  const changes: Change[] = [];
  for (let c: Change | undefined = change; c !== undefined; c = c.prev) changes.push(c);
  changes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: string[] = [];
  let i = 0;
  for (let j = 0; j < changes.length; j++) {
    const c = changes[j]!;
    if (j > 0 && changes[j - 1]!.name === c.name) continue;
    while (i < base.length && base[i]! < c.name) out.push(base[i++]!);
    if (i < base.length && base[i] === c.name) i++;
    if (c.present) out.push(c.name);
  }
  while (i < base.length) out.push(base[i++]!);
  return out;
}
