import { Map as ImmMap } from 'immutable';

/**
 * Nodes owned per domain, as an immutable map (oxenstored `quota.ml`): a transaction keeps its own
 * copy and merging it back is `dest + (mod - orig)` per domain. A domain at zero has no entry, so
 * two quotas with the same counts are equal maps.
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

/**
 * `merge(orig, mod, dest)` is `dest + (mod - orig)`: what a transaction that started at `orig` and
 * ended at `mod` changed, applied on top of the live `dest`. Cost grows with the domains that
 * changed, not with all domains.
 */
export function merge(orig: Quota, mod: Quota, dest: Quota): Quota {
  if (orig === mod) return dest;
  if (orig === dest) return mod;
  let out = dest;
  for (const domid of changedDomains(orig, mod)) {
    out = adjust(out, domid, mod.get(domid, 0) - orig.get(domid, 0));
  }
  return out;
}

/** `changedDomains(a, b)` lists the domains whose counts differ. */
export function changedDomains(a: Quota, b: Quota): number[] {
  if (a === b) return [];
  const out: number[] = [];
  for (const [domid, n] of b) if (a.get(domid, 0) !== n) out.push(domid);
  for (const domid of a.keys()) if (!b.has(domid)) out.push(domid);
  return out;
}
