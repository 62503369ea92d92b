import { ImmMap } from './imm-map.js';

/**
 * Nodes owned per domain, as an immutable map (oxenstored `quota.ml`). A transaction keeps its own
 * copy, and merging it back is `dest + (mod - orig)` per domain, with `mod - orig` summed from the
 * requests' own counts (transaction.ts), never by comparing two whole maps. A domain at zero has no
 * entry, so two quotas with the same counts are equal maps.
 */
export type Quota = ImmMap<number, number>;

export const EMPTY_QUOTA: Quota = ImmMap<number, number>();

/** `owned(q, domid)` is how many nodes the domain owns. */
export function owned(q: Quota, domid: number): number {
  return q.get(domid, 0);
}

/** `adjust(q, domid, delta)` adds `delta` (may be negative) to the domain's count. */
export function adjust(q: Quota, domid: number, delta: number): Quota {
  if (delta === 0) return q;
  const n = q.get(domid, 0) + delta;
  return n === 0 ? q.delete(domid) : q.set(domid, n);
}

/** `addAll(q, counts)` applies a table of deltas. */
export function addAll(q: Quota, counts: ReadonlyMap<number, number>): Quota {
  let out = q;
  for (const [domid, delta] of counts) out = adjust(out, domid, delta);
  return out;
}
