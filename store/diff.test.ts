import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Map as ImmMap } from 'immutable';
import { DOM0 } from './caller.js';
import { diff, type Difference } from './diff.js';
import { XsError } from '../protocol/index.js';
import { DEFAULT_LIMITS } from './limits.js';
import { XsNode } from './node.js';
import { execute } from './operations.js';
import { DOM0_ONLY, formatPerms, parsePerms, type Perms } from './perms.js';
import type { StoreRequest } from './request.js';
import { createStore, fromRoot, type Store } from './store.js';

// ---------------------------------------------------------------------------------------------
// Brute force: both trees flattened to path -> (value, perms), compared path by path.

function flatten(root: XsNode): Map<string, string> {
  const out = new Map<string, string>();
  const stack: [string, XsNode][] = [['/', root]];
  while (stack.length > 0) {
    const [path, n] = stack.pop()!;
    out.set(path, `${JSON.stringify(n.value)} ${formatPerms(n.perms).join(',')}`);
    const prefix = path === '/' ? '/' : `${path}/`;
    for (const [name, child] of n.children) stack.push([`${prefix}${name}`, child]);
  }
  return out;
}

const parentOf = (path: string): string => {
  const i = path.lastIndexOf('/');
  return i === 0 ? '/' : path.slice(0, i);
};

function bruteDiff(a: XsNode, b: XsNode): Difference[] {
  const fa = flatten(a);
  const fb = flatten(b);
  const out: Difference[] = [];
  for (const [path, v] of fb) {
    const before = fa.get(path);
    if (before === undefined) out.push({ path, kind: 'added' });
    else if (before !== v) out.push({ path, kind: 'changed' });
  }
  // Removed: only the top of each removed subtree (its parent survives).
  for (const path of fa.keys()) if (!fb.has(path) && fb.has(parentOf(path))) out.push({ path, kind: 'removed' });
  return sortDiff(out);
}

const sortDiff = (d: readonly Difference[]): Difference[] =>
  [...d].sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : x.kind < y.kind ? -1 : 1));

// ---------------------------------------------------------------------------------------------
// Random trees: built from scratch (no sharing) or derived from another by operations (sharing).

const NAMES = ['a', 'b', 'c'];
const VALUES = ['', 'x', 'y'];
const PERMS: Perms[] = [DOM0_ONLY, parsePerms(['r0']), parsePerms(['n5', 'r6'])];

const segsArb = fc.array(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 4 });
const pathArb = segsArb.map((s) => `/${s.join('/')}`);

/** A tree built directly from nodes, at most `depth` levels below its root: nothing is shared. */
function treeArbOf(depth: number): fc.Arbitrary<XsNode> {
  const kids: fc.Arbitrary<[string, XsNode][]> =
    depth === 0
      ? fc.constant([])
      : fc.uniqueArray(fc.tuple(fc.constantFrom(...NAMES), treeArbOf(depth - 1)), {
          maxLength: 3,
          selector: ([name]) => name,
        });
  return fc
    .tuple(fc.constantFrom(...VALUES), fc.constantFrom(...PERMS), kids)
    .map(([v, p, k]) => new XsNode(v, p, ImmMap(k)));
}

const treeArb = treeArbOf(3);

const opArb: fc.Arbitrary<StoreRequest> = fc.oneof(
  fc.tuple(pathArb, fc.constantFrom(...VALUES)).map(([path, value]): StoreRequest => ({ op: 'write', path, value })),
  pathArb.map((path): StoreRequest => ({ op: 'rm', path })),
  pathArb.map((path): StoreRequest => ({ op: 'mkdir', path })),
  fc
    .tuple(pathArb, fc.constantFrom(...PERMS))
    .map(([path, p]): StoreRequest => ({ op: 'set-perms', path, perms: formatPerms(p) })),
);

/** Applies the operations as dom0, skipping the ones that fail: the result shares with `s`. */
function derive(s: Store, ops: readonly StoreRequest[]): Store {
  for (const op of ops) {
    try {
      s = execute(s, DOM0, DEFAULT_LIMITS, op).store;
    } catch (e) {
      if (!(e instanceof XsError)) throw e;
    }
  }
  return s;
}

describe('diff against a brute-force diff', () => {
  it('on independent random trees', () => {
    fc.assert(
      fc.property(treeArb, treeArb, (a, b) => {
        expect(sortDiff(diff(a, b))).toEqual(bruteDiff(a, b));
      }),
      { numRuns: 500 },
    );
  });

  it('on a random tree and a version derived from it by operations', () => {
    fc.assert(
      fc.property(treeArb, fc.array(opArb, { maxLength: 12 }), (root, ops) => {
        const a = fromRoot(root);
        const b = derive(a, ops);
        expect(sortDiff(diff(a.root, b.root))).toEqual(bruteDiff(a.root, b.root));
        expect(sortDiff(diff(b.root, a.root))).toEqual(bruteDiff(b.root, a.root));
      }),
      { numRuns: 500 },
    );
  });

  it('reports each path once', () => {
    fc.assert(
      fc.property(treeArb, treeArb, (a, b) => {
        const paths = diff(a, b).map((d) => d.path);
        expect(new Set(paths).size).toBe(paths.length);
      }),
      { numRuns: 200 },
    );
  });
});

describe('diff examples', () => {
  const s0 = createStore();
  const at = (s: Store, ...reqs: StoreRequest[]) => derive(s, reqs);

  it('identical trees have no differences', () => {
    expect(diff(s0.root, s0.root)).toEqual([]);
    const copy = new XsNode(s0.root.value, s0.root.perms, s0.root.children);
    expect(diff(s0.root, copy)).toEqual([]);
  });

  it('added lists every new node, removed only the top', () => {
    const s1 = at(s0, { op: 'write', path: '/a/b/c', value: 'x' });
    expect(sortDiff(diff(s0.root, s1.root))).toEqual([
      { path: '/a', kind: 'added' },
      { path: '/a/b', kind: 'added' },
      { path: '/a/b/c', kind: 'added' },
    ]);
    expect(diff(s1.root, s0.root)).toEqual([{ path: '/a', kind: 'removed' }]);
  });

  it('changed for a value or a permission change, not for a child change', () => {
    const s1 = at(s0, { op: 'write', path: '/a/b', value: 'x' });
    const s2 = at(s1, { op: 'write', path: '/a', value: 'v' }, { op: 'set-perms', path: '/a/b', perms: ['r0'] });
    expect(sortDiff(diff(s1.root, s2.root))).toEqual([
      { path: '/a', kind: 'changed' },
      { path: '/a/b', kind: 'changed' },
    ]);
    const s3 = at(s1, { op: 'write', path: '/a/c', value: '' });
    expect(diff(s1.root, s3.root)).toEqual([{ path: '/a/c', kind: 'added' }]);
  });

  it('equal permissions in different list objects are not a change', () => {
    const a = XsNode.leaf('v', parsePerms(['n0', 'r1']));
    const b = XsNode.leaf('v', parsePerms(['n0', 'r1']));
    expect(diff(a, b)).toEqual([]);
    expect(diff(XsNode.leaf('v', DOM0_ONLY), XsNode.leaf('w', DOM0_ONLY))).toEqual([{ path: '/', kind: 'changed' }]);
  });
});

describe('diff does not descend into shared subtrees', () => {
  const DIRS = 100;
  const LEAVES = 1000;
  /** Nodes of the old tree whose contents diff (or anything) looked at. */
  const touched = new Set<XsNode>();

  /** A node whose value, perms and children reads are recorded. */
  function watched(value: string, perms: Perms, children: ImmMap<string, XsNode>): XsNode {
    const n = new XsNode(value, perms, children);
    Object.defineProperty(n, 'value', { get: () => (touched.add(n), value) });
    Object.defineProperty(n, 'perms', { get: () => (touched.add(n), perms) });
    Object.defineProperty(n, 'children', { get: () => (touched.add(n), children) });
    return n;
  }

  function big(): Store {
    const dirs: [string, XsNode][] = [];
    for (let i = 0; i < DIRS; i++) {
      const leaves: [string, XsNode][] = [];
      for (let j = 0; j < LEAVES; j++) leaves.push([`l${j}`, watched(`v${j}`, DOM0_ONLY, ImmMap())]);
      dirs.push([`d${i}`, watched('', DOM0_ONLY, ImmMap(leaves))]);
    }
    return fromRoot(watched('', DOM0_ONLY, ImmMap(dirs)));
  }

  it('one change in 10^5 nodes: one entry, and only the nodes on the path are looked at', () => {
    const before = big();
    const after = derive(before, [{ op: 'write', path: '/d42/l7', value: 'new' }]);
    touched.clear();
    const d = diff(before.root, after.root);
    expect(d).toEqual([{ path: '/d42/l7', kind: 'changed' }]);
    const oldPath = [before.root, before.root.children.get('d42')!, before.root.children.get('d42')!.children.get('l7')!];
    for (const n of touched) expect(oldPath).toContain(n);
    expect(touched.size).toBeLessThanOrEqual(3);
    expect(touched.size).toBeGreaterThan(0); // the instrumentation works
  });

  it('one added and one removed leaf: two entries, same bound', () => {
    const before = big();
    const after = derive(before, [
      { op: 'write', path: '/d3/new', value: '' },
      { op: 'rm', path: '/d9/l9' },
    ]);
    touched.clear();
    expect(sortDiff(diff(before.root, after.root))).toEqual([
      { path: '/d3/new', kind: 'added' },
      { path: '/d9/l9', kind: 'removed' },
    ]);
    const allowed = [before.root, before.root.children.get('d3')!, before.root.children.get('d9')!];
    for (const n of touched) expect(allowed).toContain(n);
  });
});
