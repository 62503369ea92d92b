import { joinStrings } from '../../protocol/index.js';

/** A directory's child list as the wire carries it, and its DIRECTORY_PART generation. */
export interface Listing {
  /** The names, each followed by a NUL (spec §7.5). */
  readonly bytes: Buffer;
  /** `<generation>` followed by its NUL, the first field of a DIRECTORY_PART reply (spec §7.6). */
  readonly gen: string;
}

/**
 * The listings made so far, keyed by the node version's cached name list (store/node.ts
 * `childNames`, the same array for as long as the node is unchanged): a listing is joined and
 * hashed once per node version, however many clients list it or page through it (issue 18: every
 * page of a 100,000-child directory was made again, 22 s to page through). Entries go with their
 * node: a weak map holds nothing alive.
 */
const LISTINGS = new WeakMap<readonly string[], Listing>();

export function listingOf(names: readonly string[]): Listing {
  let l = LISTINGS.get(names);
  if (l === undefined) {
    const bytes = joinStrings(names);
    l = { bytes, gen: `${listingHash(bytes)}\0` };
    // A frozen list is a node's own (store/node.ts); a fresh one (a transaction's view) is not kept.
    if (Object.isFrozen(names)) LISTINGS.set(names, l);
  }
  return l;
}

/** FNV-1a over the listing, 32 bits: a change detector, not a security measure. */
function listingHash(bytes: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193) >>> 0;
  return h;
}
