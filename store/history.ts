import type { Store } from './store.js';

/**
 * The last `capacity` committed versions, by generation. Cheap: versions share every subtree they
 * did not change, so keeping N of them costs the nodes on N commit paths, not N trees. A later
 * feature reads a past version (point-in-time reads) or diffs two of them (`diff.ts`).
 */
export class History {
  private readonly ring: (Store | undefined)[];
  private newest = -1;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('history capacity must be at least 1');
    this.ring = new Array<Store | undefined>(capacity).fill(undefined);
  }

  /** `record(s)` keeps `s`; generations must increase (the same version twice is ignored). */
  record(s: Store): void {
    const last = this.newest < 0 ? undefined : this.ring[this.newest % this.capacity];
    if (last === s) return;
    if (last !== undefined && s.generation <= last.generation) {
      throw new RangeError(`generation ${s.generation} after ${last.generation}`);
    }
    this.newest++;
    this.ring[this.newest % this.capacity] = s;
  }

  /** `at(generation)` is the version current at that generation, if still kept. */
  at(generation: number): Store | undefined {
    let best: Store | undefined;
    for (const s of this.ring) {
      if (s !== undefined && s.generation <= generation && (best === undefined || s.generation > best.generation)) {
        best = s;
      }
    }
    // A generation older than everything kept cannot be answered: the oldest kept may be later.
    const oldest = this.oldest();
    return oldest !== undefined && generation >= oldest.generation ? best : undefined;
  }

  /**
   * `rewind(s)` forgets every version newer than `s` and makes `s` the newest: the live store went
   * back to `s` (a log write failed, server/persistence/journal.ts), and the generations after it
   * will be given again to other versions.
   */
  rewind(s: Store): void {
    const kept = this.ring.filter((v): v is Store => v !== undefined && v.generation < s.generation).sort((a, b) => a.generation - b.generation);
    this.ring.fill(undefined);
    this.newest = -1;
    for (const v of kept) this.record(v);
    this.record(s);
  }

  /** The oldest and newest versions kept. */
  oldest(): Store | undefined {
    if (this.newest < 0) return undefined;
    const first = Math.max(0, this.newest - this.capacity + 1);
    return this.ring[first % this.capacity];
  }

  latest(): Store | undefined {
    return this.newest < 0 ? undefined : this.ring[this.newest % this.capacity];
  }
}
