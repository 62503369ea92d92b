import type { XsNode } from './node.js';
import { samePerms } from './perms.js';

/**
 * What changed between two versions of the tree: `added` for every node of b that a lacks,
 * `removed` for the top of every subtree of a that b lacks (its descendants went with it), and
 * `changed` for nodes whose value or permissions differ. Only differing subtrees are walked: a pair
 * of children that are the same object is skipped without looking inside, so the cost grows with
 * what changed, not with the tree. Iterative (XSA-418). Results are in path order per level.
 */
export interface Difference {
  readonly path: string;
  readonly kind: 'added' | 'removed' | 'changed';
}

export function diff(a: XsNode, b: XsNode, limit = Infinity): Difference[] {
  const out: Difference[] = [];
  const stack: [string, XsNode, XsNode][] = [['/', a, b]];
  // `limit` bounds the work of a query over history (history-query.ts): past it, the listing stops.
  while (stack.length > 0 && out.length < limit) {
    const [path, x, y] = stack.pop()!;
    if (x === y) continue;
    if (x.value !== y.value || !samePerms(x.perms, y.perms)) out.push({ path, kind: 'changed' });
    if (x.children === y.children) continue;
    const prefix = path === '/' ? '/' : `${path}/`;
    for (const [name, child] of y.children) {
      const before = x.children.get(name);
      if (before === undefined) addedSubtree(`${prefix}${name}`, child, out, limit);
      else if (before !== child) stack.push([`${prefix}${name}`, before, child]);
    }
    for (const name of x.children.keys()) {
      if (!y.children.has(name)) out.push({ path: `${prefix}${name}`, kind: 'removed' });
    }
  }
  return out;
}

/** `addedSubtree(path, node, out)` lists every node of a new subtree, parents first. */
export function addedSubtree(path: string, node: XsNode, out: Difference[], limit = Infinity): void {
  const stack: [string, XsNode][] = [[path, node]];
  while (stack.length > 0 && out.length < limit) {
    const [p, n] = stack.pop()!;
    out.push({ path: p, kind: 'added' });
    for (const [name, child] of n.children) stack.push([`${p}/${name}`, child]);
  }
}
