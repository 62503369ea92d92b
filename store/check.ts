import type { XsNode } from './node.js';
import type { Store } from './store.js';

const NAME = /^[A-Za-z0-9_@-]+$/;

/**
 * `checkStore(s)` verifies the invariants every operation maintains and returns what is wrong
 * (empty when all is well): each node has a permission list, each child name is a valid path
 * component, and the per-domain node counts equal a recount of the tree. For `xenstore-control
 * check` (spec §7.16) and tests. Iterative (XSA-418); costs one walk of the tree.
 */
export function checkStore(s: Store): string[] {
  const problems: string[] = [];
  const counts = new Map<number, number>();
  const stack: [string, XsNode][] = [['/', s.root]];
  while (stack.length > 0) {
    const [path, node] = stack.pop()!;
    if (node.perms.length === 0) {
      problems.push(`${path}: no permissions`);
      continue;
    }
    const owner = node.perms[0]!.domid;
    counts.set(owner, (counts.get(owner) ?? 0) + 1);
    for (const [name, child] of node.children) {
      if (!NAME.test(name)) problems.push(`${path}: bad child name ${JSON.stringify(name)}`);
      stack.push([path === '/' ? `/${name}` : `${path}/${name}`, child]);
    }
  }
  for (const [domid, n] of counts) {
    const recorded = s.quota.get(domid, 0);
    if (recorded !== n) problems.push(`domain ${domid}: quota records ${recorded} nodes, tree has ${n}`);
  }
  for (const [domid, n] of s.quota) {
    if (!counts.has(domid)) problems.push(`domain ${domid}: quota records ${n} nodes, tree has 0`);
  }
  return problems;
}
