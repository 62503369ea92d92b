import { describe, expect, it } from 'vitest';
import { Map as ImmMap } from 'immutable';
import { DOM0, guest } from './caller.js';
import { DEFAULT_LIMITS } from './limits.js';
import { XsNode } from './node.js';
import { execute } from './operations.js';
import { DOM0_ONLY, parsePerms } from './perms.js';
import type { StoreRequest } from './request.js';
import { advance, fromRoot, type Store } from './store.js';
import { size } from './subtree.js';
import { Transaction, commit } from './transaction.js';

const DIRS = 100;
const LEAVES = 1000;
const N = 1 + DIRS + DIRS * LEAVES; // root + dirs + leaves = 100 101

/** `/dI/lJ` for I < DIRS, J < LEAVES, all `n0` except `/d7`, which guest 7 owns. */
function bigStore(): Store {
  const dirs: [string, XsNode][] = [];
  for (let i = 0; i < DIRS; i++) {
    const perms = i === 7 ? parsePerms(['n7']) : DOM0_ONLY;
    const leaves: [string, XsNode][] = [];
    for (let j = 0; j < LEAVES; j++) leaves.push([`l${j}`, XsNode.leaf(`v${i}.${j}`, perms)]);
    dirs.push([`d${i}`, new XsNode('', perms, ImmMap(leaves))]);
  }
  return fromRoot(new XsNode('', DOM0_ONLY, ImmMap(dirs)));
}

interface Sharing {
  /** Nodes of `before` that are the very same object at the same path in `after`. */
  shared: number;
  /** Paths of the nodes of `before` that are not (a different object, or gone). */
  fresh: string[];
}

/** Walks `before` and `after` side by side, comparing the node at every path of `before`. */
function compare(before: XsNode, after: XsNode): Sharing {
  const out: Sharing = { shared: 0, fresh: [] };
  const stack: [string, XsNode, XsNode | undefined][] = [['/', before, after]];
  while (stack.length > 0) {
    const [path, x, y] = stack.pop()!;
    if (x === y) out.shared++;
    else out.fresh.push(path);
    const prefix = path === '/' ? '/' : `${path}/`;
    for (const [name, child] of x.children) stack.push([`${prefix}${name}`, child, y?.children.get(name)]);
  }
  out.fresh.sort();
  return out;
}

function run(s: Store, req: StoreRequest, caller = DOM0): Store {
  return advance(execute(s, caller, DEFAULT_LIMITS, req).store, s);
}

describe('structural sharing on a 10^5-node tree', () => {
  const big = bigStore();

  it('the tree has the expected size', () => {
    expect(size(big.root)).toBe(N);
    expect(big.quota.get(0)).toBe(N - 1 - LEAVES);
    expect(big.quota.get(7)).toBe(1 + LEAVES);
  });

  it('writing one leaf copies exactly the nodes on its path; every other node is shared', () => {
    const after = run(big, { op: 'write', path: '/d42/l7', value: 'new' });
    const { shared, fresh } = compare(big.root, after.root);
    expect(fresh).toEqual(['/', '/d42', '/d42/l7']);
    expect(shared).toBe(N - 3);
    expect(size(after.root)).toBe(N);
    // The old version is untouched.
    expect(big.root.children.get('d42')!.children.get('l7')!.value).toBe('v42.7');
    expect(after.root.children.get('d42')!.children.get('l7')!.value).toBe('new');
    // The quota map did not change either: same object.
    expect(after.quota).toBe(big.quota);
    // A fresh node is really new (not an identical copy of the old one in place).
    expect(after.root.children.get('d42')).not.toBe(big.root.children.get('d42'));
  });

  it('the same holds the other way: every node of the new version but the path is an old one', () => {
    const after = run(big, { op: 'write', path: '/d99/l999', value: 'x' });
    const { shared, fresh } = compare(after.root, big.root);
    expect(fresh).toEqual(['/', '/d99', '/d99/l999']);
    expect(shared).toBe(N - 3);
  });

  it('creating a node shares everything but the path to its parent', () => {
    const after = run(big, { op: 'write', path: '/d3/new/deeper', value: 'x' });
    const { shared, fresh } = compare(big.root, after.root);
    expect(fresh).toEqual(['/', '/d3']);
    expect(shared).toBe(N - 2);
    expect(size(after.root)).toBe(N + 2);
  });

  it('removing a leaf shares every surviving node but the path', () => {
    const after = run(big, { op: 'rm', path: '/d5/l500' });
    const { shared, fresh } = compare(big.root, after.root);
    expect(fresh).toEqual(['/', '/d5', '/d5/l500']);
    expect(shared).toBe(N - 3);
  });

  it('a guest writing in its own directory shares the same way', () => {
    const after = run(big, { op: 'write', path: '/d7/l1', value: 'mine' }, guest(7));
    const { shared, fresh } = compare(big.root, after.root);
    expect(fresh).toEqual(['/', '/d7', '/d7/l1']);
    expect(shared).toBe(N - 3);
  });

  it('a no-op write returns the identical store', () => {
    const out = execute(big, DOM0, DEFAULT_LIMITS, { op: 'write', path: '/d42/l7', value: 'v42.7' });
    expect(out.store).toBe(big);
    expect(advance(out.store, big)).toBe(big);
    const mkdir = execute(big, DOM0, DEFAULT_LIMITS, { op: 'mkdir', path: '/d42/l7' });
    expect(mkdir.store).toBe(big);
  });

  it('committed transactions share too (fast path and merge)', () => {
    const t1 = new Transaction(big, DOM0, DEFAULT_LIMITS);
    t1.execute({ op: 'write', path: '/d10/l10', value: 'a' });
    const t2 = new Transaction(big, guest(7), DEFAULT_LIMITS);
    t2.execute({ op: 'write', path: '/d7/l2', value: 'b' });
    const c1 = commit(big, t1);
    if (c1.kind !== 'committed') throw new Error(c1.kind);
    expect(c1.path).toBe('fast');
    const c2 = commit(c1.store, t2);
    if (c2.kind !== 'committed') throw new Error(c2.kind);
    expect(c2.path).toBe('merge');
    const { shared, fresh } = compare(big.root, c2.store.root);
    expect(fresh).toEqual(['/', '/d10', '/d10/l10', '/d7', '/d7/l2']);
    expect(shared).toBe(N - 5);
  });
});
