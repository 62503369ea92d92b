import type { XsNode } from './node.js';

/**
 * Walks over whole subtrees. Iterative (an explicit stack), never recursive, because the depth of a
 * subtree is chosen by clients (XSA-418: deep trees exhausted cxenstored's stack).
 */

/** `countOwners(node)` tallies the nodes of the subtree per owning domain. */
export function countOwners(node: XsNode): Map<number, number> {
  const counts = new Map<number, number>();
  const stack: XsNode[] = [node];
  while (stack.length > 0) {
    const n = stack.pop()!;
    const owner = n.perms[0]!.domid;
    counts.set(owner, (counts.get(owner) ?? 0) + 1);
    for (const child of n.children.values()) stack.push(child);
  }
  return counts;
}

/** `size(node)` is the number of nodes in the subtree, the node included. */
export function size(node: XsNode): number {
  let count = 0;
  const stack: XsNode[] = [node];
  while (stack.length > 0) {
    const n = stack.pop()!;
    count++;
    for (const child of n.children.values()) stack.push(child);
  }
  return count;
}

/** `negate(counts)` flips the sign of every count (what removing a subtree does to the quota). */
export function negate(counts: ReadonlyMap<number, number>): Map<number, number> {
  const out = new Map<number, number>();
  for (const [k, v] of counts) out.set(k, -v);
  return out;
}
