import { domainBit, type XsNode } from './node.js';
import { withOwner, withoutDomain } from './perms.js';
import { addAll, adjust } from './quota.js';
import type { Change } from './request.js';
import type { Store } from './store.js';
import { countOwners, negate } from './subtree.js';
import { SPECIAL_NAMES } from './path.js';

/**
 * `forgetDomain(s, domid)` is what the store does when a domain is released or dies (spec §6.6,
 * XSA-322/417/419/483): every node the domain owns is removed with its subtree, every ACL entry
 * naming it is dropped (also from the special nodes), and its node count ends at zero, so that a
 * new domain reusing the domid inherits neither access nor a used-up quota; a special name or the
 * root it owned (neither can be removed) is given back to dom0. Returns the changes, one `remove` per
 * removed subtree, so watchers hear of it (cxenstored fires; oxenstored is silent).
 *
 * The walk skips every subtree whose `domains` summary says it cannot name the domain (node.ts), so
 * it visits the paths to the domain's nodes and ACL entries, plus the subtrees of the few domains whose
 * bits it shares, instead of the whole store as both Xen daemons do.
 */
export function forgetDomain(s: Store, domid: number): { store: Store; changes: Change[] } {
  const changes: Change[] = [];
  let quota = s.quota;
  const removedCounts: ReadonlyMap<number, number>[] = [];
  let root = rebuild(s.root, '/', domid, domainBit(domid), changes, removedCounts, true)!;
  for (const counts of removedCounts) quota = addAll(quota, negate(counts));
  // The root cannot be removed either: if the domain owned it, it goes back to dom0, count and all.
  if (domid !== 0 && root.perms[0]!.domid === domid) {
    root = root.withPerms(withOwner(root.perms, 0));
    quota = adjust(adjust(quota, domid, -1), 0, 1);
  }
  let special = s.special;
  for (const name of SPECIAL_NAMES) {
    // The special names cannot be removed: one the domain owned goes back to dom0, as cxenstored's
    // remove_domid_from_perm does, or the next domain reusing the id would own it (XSA-322).
    let p = withoutDomain(special[name], domid);
    if (p[0]!.domid === domid) p = withOwner(p, 0);
    if (p !== special[name]) special = Object.freeze({ ...special, [name]: p });
  }
  const next: Store =
    root === s.root && quota === s.quota && special === s.special
      ? s
      : { root, quota, special, generation: s.generation };
  return { store: next, changes };
}

/**
 * Rebuilds a subtree without the domain's nodes and ACL entries; the same node when nothing in it
 * mentions the domain. Recursion depth is bounded by the path-length rule (spec §3.3).
 */
function rebuild(
  node: XsNode,
  path: string,
  domid: number,
  bits: number,
  changes: Change[],
  removed: ReadonlyMap<number, number>[],
  isRoot: boolean,
): XsNode | undefined {
  // Dom0 has no bit (node.ts): its walk, should one ever be asked for, visits everything.
  if (domid !== 0 && (node.domains & bits) !== bits) return node;
  if (!isRoot && node.perms[0]!.domid === domid) {
    changes.push({ path, kind: 'remove' });
    removed.push(countOwners(node));
    return undefined;
  }
  let out = node.withPerms(withoutDomain(node.perms, domid));
  const prefix = path === '/' ? '/' : `${path}/`;
  for (const [name, child] of node.children) {
    const next = rebuild(child, `${prefix}${name}`, domid, bits, changes, removed, false);
    if (next === undefined) out = out.withoutChild(name);
    else if (next !== child) out = out.withChild(name, next);
  }
  return out;
}
