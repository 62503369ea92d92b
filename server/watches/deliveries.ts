import { has, lookup, Need, relativeTo, type Caller, type Change, type Perms, type Store } from '../../store/index.js';
import type { WatchRegistry } from './registry.js';
import type { Watch } from './watch.js';

/** A watch's owner as matching sees it: who it acts as, read when the change happens. */
export interface Watcher {
  readonly caller: Caller;
}

/** One watch event to send: `watch` fired for `conn`, reporting `path` (spec §8.2). */
export interface Delivery<C> {
  readonly conn: C;
  readonly watch: Watch<C>;
  readonly path: string;
}

/** The deliveries of a change no watch matched: shared, so the common case allocates nothing. */
export const NO_DELIVERIES: readonly never[] = Object.freeze([]);

/**
 * `deliveries(watches, changes, before, after)` is the events a request or commit causes, in the
 * order they are sent (spec §8.2–8.5): watches on the node and its ancestors get the changed
 * path; on removal, watches strictly below it get their own path (oxenstored's rule, recorded in
 * the README). Unprivileged watchers only hear of nodes they could read, or whose parent they
 * could read, before or after the change (XSA-115).
 */
export function deliveries<C extends Watcher>(
  watches: WatchRegistry<C>,
  changes: readonly Change[],
  before: Store,
  after: Store,
): readonly Delivery<C>[] {
  // Allocated at the first match: a change nobody watches costs no array (the common case).
  let out: Delivery<C>[] | undefined;
  for (const change of changes) {
    // Special names are not tree paths: `/` is not their ancestor, and their watches fire only
    // for domain introduction and release (spec §3.1, §8.6), not for a change of their permissions.
    if (change.path.charCodeAt(0) === 0x40 /* @ */) continue;
    // One permission check per caller and change, not per watch: a guest's 128 watches on one
    // path cost one lookup (issue 18: a watcher that never reads made each of dom0's writes
    // check all of its watches).
    let heard: Caller | undefined;
    let hears = false;
    let relative: string | undefined;
    watches.forEachAbove(change.path, (w) => {
      if (w.depth !== undefined && levels(change.path) - levels(w.canonical) > w.depth) return;
      const caller = w.owner.caller;
      if (caller !== heard) {
        heard = caller;
        hears = mayHear(caller, change.path, before, change.kind === 'set' ? after : undefined);
        relative = undefined;
      }
      if (hears) {
        const path = w.relative ? (relative ??= relativeTo(change.path, caller.domid)) : change.path;
        (out ??= []).push({ conn: w.owner, watch: w, path });
      }
    });
    if (change.kind === 'remove') {
      watches.forEachBelow(change.path, (w) => {
        if (mayHear(w.owner.caller, w.canonical, before, undefined)) (out ??= []).push({ conn: w.owner, watch: w, path: w.path });
      });
    }
  }
  return out ?? NO_DELIVERIES;
}

/**
 * `specialDeliveries(watches, name, domid, perms)`: the events of `@introduceDomain` or
 * `@releaseDomain` for domain `domid`, to the watchers `perms` (the special name's) lets read
 * (spec §8.6). Xen 4.22 (`fire_special_watches`): a watch on the name without a depth gets the
 * name; with a depth of at least 1 it gets `<name>/<domid>`, and with depth 0 nothing; a watch
 * on `<name>/<domid>` gets `<name>/<domid>`, for that domain only.
 */
export function specialDeliveries<C extends Watcher>(
  watches: WatchRegistry<C>,
  name: string,
  domid: number,
  perms: Perms,
): readonly Delivery<C>[] {
  let out: Delivery<C>[] | undefined;
  const perDomain = `${name}/${domid}`;
  const push = (w: Watch<C>, path: string): void => {
    if (has(perms, w.owner.caller, Need.READ)) (out ??= []).push({ conn: w.owner, watch: w, path });
  };
  watches.forEachSpecial(name, (w) => {
    if (w.depth === undefined) push(w, name);
    else if (w.depth >= 1) push(w, perDomain);
  });
  watches.forEachSpecial(perDomain, (w) => push(w, perDomain));
  return out ?? NO_DELIVERIES;
}

/** Levels below the root: 0 for `/`, 1 for `/a`. */
function levels(path: string): number {
  if (path === '/') return 0;
  let n = 0;
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) n++;
  return n;
}

function mayHear(caller: Caller, path: string, before: Store, after: Store | undefined): boolean {
  if (caller.privileged) return true;
  const segs = path === '/' ? [] : path.slice(1).split('/');
  return readableNear(before, segs, caller) || (after !== undefined && readableNear(after, segs, caller));
}

/** True when the caller may read the node at `segs`, or its parent (XSA-115 delivery rule). */
function readableNear(s: Store, segs: readonly string[], caller: Caller): boolean {
  const node = lookup(s.root, segs);
  if (node !== undefined && has(node.perms, caller, Need.READ)) return true;
  if (segs.length === 0) return false;
  const parent = lookup(s.root, segs, segs.length - 1);
  return parent !== undefined && has(parent.perms, caller, Need.READ);
}
