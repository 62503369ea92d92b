import type { XsNode } from './node.js';

/**
 * Path-copying access to the trie. Paths are segment arrays; `i` walks them by index rather than
 * by slicing (immutable-js `updateInDeeply`). Depth is bounded by the path-length rule (spec §3.3:
 * at most ~1 000 components), far below V8's stack, so plain recursion along one path is safe;
 * walks over whole subtrees (see `subtree.ts`) are iterative (XSA-418).
 */

/** `lookup(root, segs, n)` is the node at the first `n` segments (all by default), or undefined. */
export function lookup(root: XsNode, segs: readonly string[], n: number = segs.length): XsNode | undefined {
  let node: XsNode | undefined = root;
  for (let i = 0; i < n && node !== undefined; i++) node = node.child(segs[i]!);
  return node;
}

/**
 * `deepestExisting(root, segs)` is the number of leading segments that exist: `segs.length` when
 * the node itself exists, 0 when only the root does.
 */
export function deepestExisting(root: XsNode, segs: readonly string[]): number {
  let node = root;
  for (let i = 0; i < segs.length; i++) {
    const next = node.child(segs[i]!);
    if (next === undefined) return i;
    node = next;
  }
  return segs.length;
}

/**
 * `update(root, segs, n, fn)` replaces the node at the first `n` segments by `fn(node)`, copying
 * only the nodes on the path; `fn` returning undefined removes that node. Returns `root` itself
 * when `fn` returns its argument. The nodes on the path must exist (callers check).
 */
export function update(
  root: XsNode,
  segs: readonly string[],
  n: number,
  fn: (node: XsNode) => XsNode | undefined,
): XsNode | undefined {
  return updateFrom(root, segs, 0, n, fn);
}

function updateFrom(
  node: XsNode,
  segs: readonly string[],
  i: number,
  n: number,
  fn: (node: XsNode) => XsNode | undefined,
): XsNode | undefined {
  if (i === n) return fn(node);
  const name = segs[i]!;
  const child = node.children.get(name);
  if (child === undefined) throw new Error(`tree.update: missing node at ${segs.slice(0, i + 1).join('/')}`);
  const next = updateFrom(child, segs, i + 1, n, fn);
  if (next === child) return node;
  return next === undefined ? node.withoutChild(name) : node.withChild(name, next);
}

/** `replace(root, segs, node)` puts `node` at `segs` (whose parent must exist). */
export function replace(root: XsNode, segs: readonly string[], node: XsNode | undefined): XsNode {
  if (segs.length === 0) {
    if (node === undefined) throw new Error('tree.replace: cannot remove the root');
    return node;
  }
  const last = segs[segs.length - 1]!;
  return update(root, segs, segs.length - 1, (parent) =>
    node === undefined ? parent.withoutChild(last) : parent.withChild(last, node),
  )!;
}
