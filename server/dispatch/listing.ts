import { hash } from 'node:crypto';
import { joinStrings, PAYLOAD_MAX } from '../../protocol/index.js';

/**
 * A directory's child list as the wire carries it, and its DIRECTORY_PART pages (spec §7.6).
 *
 * Made once per node version (see `listingOf`), so in code the JIT has not compiled yet: the
 * names are joined by runs (protocol `joinStrings`) and the generation is hashed by OpenSSL, at
 * memory speed whatever the JIT's state (issue 18: the first listing of a 20,000-child
 * directory, 700 KB, held the loop 13-40 ms while a write per name and a JavaScript hash loop
 * ran, once, unoptimized). A page is one copy out of `bytes`.
 */
export class Listing {
  private genBytes: Buffer | undefined;

  /** `new Listing(bytes)`: `bytes` the names, each followed by a NUL (spec §7.5). */
  constructor(readonly bytes: Buffer) {}

  /**
   * `<generation>` and its NUL, the first field of a DIRECTORY_PART reply: 48 bits of the
   * listing's SHA-1, in decimal (libxenstore keeps at most 23 bytes of it, and compares them).
   * A client restarts exactly when the list it is paging through changed, which is what the
   * generation is for, with no counter kept per node. A change detector, not a security measure.
   * Made when first asked for: DIRECTORY never needs it.
   */
  get gen(): Buffer {
    return (this.genBytes ??= Buffer.from(`${hash('sha1', this.bytes, 'buffer').readUIntLE(0, 6)}\0`, 'latin1'));
  }

  /**
   * `part(offset)`: the DIRECTORY_PART reply from byte `offset` of the list: the generation, then
   * as many whole NUL-terminated entries as fit in a message (PAYLOAD_MAX), with an extra NUL once
   * the list is exhausted; `<gen>\0\0` from the end of the list on.
   */
  part(offset: number): Buffer {
    const all = this.bytes;
    const gen = this.gen;
    if (offset >= all.length) return Buffer.concat([gen, NUL], gen.length + 1);
    // The last NUL that fits: entries end at NULs, and a reply keeps only whole ones (`room`
    // counts the final NUL the reply needs when it takes the rest of the list).
    const room = PAYLOAD_MAX - gen.length - 1;
    const end = all.lastIndexOf(0, offset + room - 1) + 1;
    const stop = end > offset ? end : offset;
    const last = stop >= all.length;
    const out = Buffer.allocUnsafe(gen.length + (stop - offset) + (last ? 1 : 0));
    gen.copy(out, 0);
    all.copy(out, gen.length, offset, stop);
    if (last) out[out.length - 1] = 0;
    return out;
  }
}

const NUL = Buffer.from([0]);

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
    l = new Listing(joinStrings(names));
    // A frozen list is a node's own (store/node.ts); a fresh one (a transaction's view) is not kept.
    if (Object.isFrozen(names)) LISTINGS.set(names, l);
  }
  return l;
}

