import { Map as ImmMap } from 'immutable';
import { XsError } from '../protocol/index.js';
import { XsNode } from './node.js';
import { DOM0_ONLY, type Perms } from './perms.js';
import { fromRoot, type SpecialPerms, type Store } from './store.js';

/** One node of a flat listing: its absolute path, value (byte string) and permissions. */
export interface ListedNode {
  readonly path: string;
  readonly value: string;
  readonly perms: Perms;
}

/**
 * `toNodeList(store)` is every node, parents before children, from `/` (the order Xen's migration
 * stream needs: "parent NODE before child NODE"); children in the store's order.
 */
export function* toNodeList(store: Store): Generator<ListedNode> {
  const stack: [string, XsNode][] = [['/', store.root]];
  while (stack.length > 0) {
    const [path, node] = stack.pop()!;
    yield { path, value: node.value, perms: node.perms };
    const kids = [...node.children];
    for (let i = kids.length - 1; i >= 0; i--) {
      const [name, child] = kids[i]!;
      stack.push([path === '/' ? `/${name}` : `${path}/${name}`, child]);
    }
  }
}

interface Building {
  value: string;
  perms: Perms;
  children: Map<string, Building>;
}

/**
 * `fromNodeList(nodes, special)` is the store those nodes make, at generation 0 (a node listing
 * from another daemon, e.g. Xen's migration stream). Each node's parent must come before it
 * (EINVAL otherwise, cxenstored's "read parent error restoring node"); `/` may be listed (its
 * permissions and value replace the default empty root, n0); a path listed twice keeps the last.
 */
export function fromNodeList(nodes: Iterable<ListedNode>, special: Partial<SpecialPerms> = {}): Store {
  const root: Building = { value: '', perms: DOM0_ONLY, children: new Map() };
  for (const n of nodes) {
    if (n.perms.length === 0) throw new XsError('EINVAL', `node ${n.path} has no permissions`);
    if (n.path === '/') {
      root.value = n.value;
      root.perms = n.perms;
      continue;
    }
    if (n.path.charCodeAt(0) !== 0x2f || n.path.endsWith('/') || n.path.includes('//')) throw new XsError('EINVAL', `bad node path ${JSON.stringify(n.path)}`);
    const segs = n.path.slice(1).split('/');
    let at = root;
    for (let i = 0; i < segs.length - 1; i++) {
      const next = at.children.get(segs[i]!);
      if (next === undefined) throw new XsError('EINVAL', `node ${n.path} comes before its parent`);
      at = next;
    }
    const name = segs[segs.length - 1]!;
    const old = at.children.get(name);
    at.children.set(name, { value: n.value, perms: n.perms, children: old?.children ?? new Map() });
  }
  return fromRoot(freeze(root), 0, Object.freeze({ '@introduceDomain': DOM0_ONLY, '@releaseDomain': DOM0_ONLY, ...special }));
}

/** Builds the immutable nodes bottom-up, without recursion (paths may be 1000 levels deep). */
function freeze(top: Building): XsNode {
  const done = new Map<Building, XsNode>();
  const stack: Building[] = [top];
  while (stack.length > 0) {
    const b = stack[stack.length - 1]!;
    const pending = [...b.children.values()].filter((c) => !done.has(c));
    if (pending.length > 0) {
      stack.push(...pending);
      continue;
    }
    stack.pop();
    const kids = ImmMap<string, XsNode>().withMutations((m) => {
      for (const [name, c] of b.children) m.set(name, done.get(c)!);
    });
    done.set(b, b.children.size === 0 ? XsNode.leaf(b.value, b.perms) : new XsNode(b.value, b.perms, kids));
  }
  return done.get(top)!;
}
