import { joinStrings, PAYLOAD_MAX } from '../../protocol/index.js';
import { KEPT_SORTED } from '../../store/index.js';

/**
 * A directory's child list as the wire carries it (each name followed by a NUL, spec §7.5), and
 * its DIRECTORY_PART pages (spec §7.6).
 *
 * Made once per node version (see `listingOf`), so in code the JIT has not compiled yet (issue
 * 18: the first listing of a 20,000-child directory, 700 KB, held the loop 13-40 ms while a
 * write per name and a JavaScript hash loop ran, once, unoptimized). A listing of fewer than
 * `KEPT_SORTED` names is joined whole (protocol `joinStrings`) and its generation hashed by
 * OpenSSL when first paged. A larger one (store/child-names.ts keeps its name array through
 * its children's writes) is made by blocks of `BLOCK` names as pages ask for them, so no one turn
 * pays for all of it, and a DIRECTORY of it (E2BIG) costs a sum of lengths.
 */
export class Listing {
  /** The whole listing, when made. */
  private whole: Buffer | undefined;
  private genText: string | undefined;
  /** A large listing's blocks, as made, and the byte offset where entry i ends (after its NUL). */
  private blocks: (Buffer | undefined)[] | undefined;
  private ends: Float64Array | undefined;

  constructor(
    private readonly names: readonly string[],
    /** Paged by blocks, its generation drawn (a large node's own name list), not hashed. */
    private readonly large: boolean,
  ) {}

  /** The listing's size in bytes, without making it. */
  get size(): number {
    if (this.whole !== undefined) return this.whole.length;
    const ends = this.endsOf();
    return ends.length === 0 ? 0 : ends[ends.length - 1]!;
  }

  /** The whole listing (a DIRECTORY reply; used when it fits a message). */
  get bytes(): Buffer {
    return (this.whole ??= joinStrings(this.names));
  }

  /**
   * `<generation>` and its NUL, the first field of a DIRECTORY_PART reply, in decimal (libxenstore
   * keeps at most 23 bytes of it and compares them): a client restarts when the list it is
   * paging through changed, which is what the generation is for, with no counter kept per node.
   * A small listing's is 48 bits of its SHA-1 (a change detector, not a security measure), so a
   * child's value rewritten, which re-sorts a small directory's names, keeps it. A large one's is
   * drawn once per name list: the store keeps that list for as long as the names are the same,
   * through their values' writes (store/child-names.ts), and a different list gets a different
   * number (consecutive from a random start, so not one of the previous process's either, across
   * a live update). cxenstored's generation changes more often: on every write to the node.
   */
  get gen(): string {
    return (this.genText ??= `${this.large ? drawGeneration() : nodeCrypto().hash('sha1', this.bytes, 'buffer').readUIntLE(0, 6)}\0`);
  }

  /**
   * `part(offset)`: the DIRECTORY_PART reply from byte `offset` of the list: the generation, then
   * as many whole NUL-terminated entries as fit in a message (PAYLOAD_MAX), with an extra NUL once
   * the list is exhausted; `<gen>\0\0` from the end of the list on. A byte string: a page's
   * garbage stays on the JS heap, where the young generation collects it cheaply, rather than
   * one more buffer of its own (4 KB, allocated outside the heap) per page.
   */
  part(offset: number): string {
    const gen = this.gen;
    const total = this.size;
    if (offset >= total) return `${gen}\0`;
    // The last entry that fits: a reply keeps only whole entries (`room` counts the final NUL the
    // reply needs when it takes the rest of the list).
    const room = PAYLOAD_MAX - gen.length - 1;
    const stop = this.large ? this.lastEndLarge(offset, offset + room) : this.lastEndWhole(offset, offset + room);
    const entries = this.large ? this.textLarge(offset, stop) : this.bytes.toString('latin1', offset, stop);
    return stop >= total ? `${gen}${entries}\0` : `${gen}${entries}`;
  }

  /** The end of the last entry ending at or before `limit`, if after `offset`; else `offset`. */
  private lastEndWhole(offset: number, limit: number): number {
    const end = this.bytes.lastIndexOf(0, limit - 1) + 1;
    return end > offset ? end : offset;
  }

  private lastEndLarge(offset: number, limit: number): number {
    const ends = this.endsOf();
    // The last i with ends[i] <= limit (binary search).
    let lo = 0;
    let hi = ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ends[mid]! <= limit) lo = mid + 1;
      else hi = mid;
    }
    const end = lo === 0 ? 0 : ends[lo - 1]!;
    return end > offset ? end : offset;
  }

  /** Bytes [from, to) of a large listing, as a byte string, making the blocks they are in. */
  private textLarge(from: number, to: number): string {
    const ends = this.endsOf();
    const blocks = (this.blocks ??= new Array<Buffer | undefined>(Math.ceil(this.names.length / BLOCK)));
    let text = '';
    for (let b = (this.entryAt(from) / BLOCK) | 0; from < to; b++) {
      const first = b * BLOCK;
      const start = first === 0 ? 0 : ends[first - 1]!;
      const block = (blocks[b] ??= joinStrings(this.names.slice(first, first + BLOCK)));
      const end = Math.min(to, start + block.length);
      text += block.toString('latin1', from - start, end - start);
      from = end;
    }
    return text;
  }

  /** The entry byte `offset` is in (`offset` below the size). */
  private entryAt(offset: number): number {
    const ends = this.endsOf();
    let lo = 0;
    let hi = ends.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ends[mid]! <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private endsOf(): Float64Array {
    if (this.ends === undefined) {
      const names = this.names;
      const ends = new Float64Array(names.length);
      let end = 0;
      for (let i = 0; i < names.length; i++) ends[i] = end += names[i]!.length + 1;
      this.ends = ends;
    }
    return this.ends;
  }
}

/** Names per block of a large listing: a block is made in well under a millisecond. */
const BLOCK = 256;

/**
 * The next large listing's generation: from a random start, so that a restarted daemon does not
 * repeat the last one's. Drawn with the first large listing's.
 */
let nextGeneration: number | undefined;

function drawGeneration(): number {
  nextGeneration ??= nodeCrypto().randomInt(2 ** 47);
  return nextGeneration++;
}

/**
 * `node:crypto`, loaded when the first listing is paged (DIRECTORY_PART): as an ES import it cost
 * 5 ms (Node 22) to 11-14 ms (Node 24) of every cold start (issue 16), the facade reading every
 * export (webcrypto and the rest); `process.getBuiltinModule` returns the CommonJS module.
 */
function nodeCrypto(): typeof import('node:crypto') {
  return process.getBuiltinModule('node:crypto');
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
    // A frozen list is a node's own (store/node.ts); a fresh one (a transaction's view) is not
    // kept, and its generation must follow its content.
    const own = Object.isFrozen(names);
    l = new Listing(names, own && names.length >= KEPT_SORTED);
    if (own) LISTINGS.set(names, l);
  }
  return l;
}
