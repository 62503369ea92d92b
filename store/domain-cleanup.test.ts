import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Map as ImmMap } from 'immutable';
import { DOM0, guest, type Caller } from './caller.js';
import { XsError } from '../protocol/index.js';
import { DEFAULT_LIMITS } from './limits.js';
import { forgetDomain } from './domain-cleanup.js';
import { execute } from './operations.js';
import { formatPerms, parsePerms, type Perms } from './perms.js';
import { owned } from './quota.js';
import type { StoreReply, StoreRequest } from './request.js';
import { domainBit, XsNode } from './node.js';
import { advance, createStore, fromRoot, type Store } from './store.js';
import { countOwners } from './subtree.js';
import { lookup } from './tree.js';

const wr = (path: string, value: string): StoreRequest => ({ op: 'write', path, value });
const mk = (path: string): StoreRequest => ({ op: 'mkdir', path });
const sp = (path: string, ...perms: string[]): StoreRequest => ({ op: 'set-perms', path, perms });
const rd = (path: string): StoreRequest => ({ op: 'read', path });
const gp = (path: string): StoreRequest => ({ op: 'get-perms', path });

function checkQuota(s: Store): void {
  const counted = Object.fromEntries([...countOwners(s.root)].map(([d, n]) => [String(d), n]));
  const kept = Object.fromEntries([...s.quota].map(([d, n]) => [String(d), n]));
  expect(kept).toEqual(counted);
}

function apply(s: Store, caller: Caller, ...reqs: StoreRequest[]): Store {
  for (const r of reqs) s = advance(execute(s, caller, DEFAULT_LIMITS, r).store, s);
  checkQuota(s);
  return s;
}

function reply(s: Store, caller: Caller, req: StoreRequest): StoreReply | string {
  try {
    return execute(s, caller, DEFAULT_LIMITS, req).reply;
  } catch (e) {
    if (!(e instanceof XsError)) throw e;
    return e.code;
  }
}

const segs = (path: string): string[] => path.slice(1).split('/');
const at = (s: Store, path: string) => lookup(s.root, segs(path));
const permsAt = (s: Store, path: string) => formatPerms(at(s, path)!.perms);

/**
 * Domains 5 and 7 with homes; 7 also created nodes outside its home (under a dom0 directory it was
 * given write access to), dom0 nodes carry ACL entries for 7, and a node 7 owns sits inside 5's
 * home (5 gave 7 write access there).
 */
function world(): Store {
  let s = createStore();
  for (const d of [5, 7]) s = apply(s, DOM0, mk(`/local/domain/${d}`), sp(`/local/domain/${d}`, `n${d}`));
  s = apply(s, guest(7), wr('/local/domain/7/data/a', '1'), wr('/local/domain/7/data/b', '2'));
  s = apply(s, DOM0, mk('/pool'), sp('/pool', 'n0', 'w7'), wr('/secret', 's'), sp('/secret', 'n0', 'r7', 'b5', 'w7'));
  s = apply(s, DOM0, wr('/untouched/x', 'x'), wr('/untouched/y', 'y'));
  s = apply(s, guest(7), wr('/pool/by7/deep', 'z'));
  s = apply(s, guest(5), wr('/local/domain/5/shared', ''), sp('/local/domain/5/shared', 'n5', 'w7'));
  s = apply(s, guest(7), wr('/local/domain/5/shared/from7', 'f'));
  // A dom0 node inside 7's home (dom0 creates with the parent's owner: 7), and a 5-owned node there.
  s = apply(s, DOM0, wr('/local/domain/7/data/c', 'c'), sp('/local/domain/7/data/c', 'n5'));
  return s;
}

describe('forgetDomain', () => {
  const before = world();
  const { store: after, changes } = forgetDomain(before, 7);

  it('removes every node the domain owns with its subtree, one remove per top', () => {
    expect(changes.map((c) => c.kind)).toEqual(changes.map(() => 'remove'));
    expect(changes.map((c) => c.path).sort()).toEqual(['/local/domain/5/shared/from7', '/local/domain/7', '/pool/by7']);
    expect(at(after, '/local/domain/7')).toBeUndefined();
    expect(at(after, '/pool/by7')).toBeUndefined();
    expect(at(after, '/local/domain/5/shared/from7')).toBeUndefined();
    // Nodes of other owners inside a removed subtree go with it (they are inside the subtree).
    expect(owned(before.quota, 5)).toBe(owned(after.quota, 5) + 1); // /local/domain/7/data/c
  });

  it('leaves nodes of other owners where they are', () => {
    expect(at(after, '/pool')?.value).toBe('');
    expect(at(after, '/local/domain/5/shared')).toBeDefined();
    expect(at(after, '/secret')?.value).toBe('s');
  });

  it("strips the domain's ACL entries everywhere and keeps the others", () => {
    expect(permsAt(before, '/secret')).toEqual(['n0', 'r7', 'b5', 'w7']);
    expect(permsAt(after, '/secret')).toEqual(['n0', 'b5']);
    expect(permsAt(after, '/pool')).toEqual(['n0']);
    expect(permsAt(after, '/local/domain/5/shared')).toEqual(['n5']);
  });

  it("ends the domain's node count at zero, with the quota invariant intact", () => {
    expect(owned(before.quota, 7)).toBeGreaterThan(0);
    expect(owned(after.quota, 7)).toBe(0);
    expect(after.quota.has(7)).toBe(false);
    checkQuota(after);
  });

  it('keeps unrelated subtrees as the very same objects', () => {
    expect(at(after, '/untouched')).toBe(at(before, '/untouched'));
    expect(at(after, '/tool')).toBe(at(before, '/tool'));
    expect(at(after, '/local/domain/5')).not.toBe(at(before, '/local/domain/5')); // lost from7
  });

  it('does not touch the input version, nor the generation', () => {
    expect(at(before, '/local/domain/7/data/a')?.value).toBe('1');
    expect(after.generation).toBe(before.generation);
    expect(advance(after, before).generation).toBe(before.generation + 1);
  });

  it('returns the same store and no changes for a domain that has nothing', () => {
    const r = forgetDomain(before, 42);
    expect(r.store).toBe(before);
    expect(r.changes).toEqual([]);
    // Idempotent: forgetting 7 twice changes nothing the second time.
    const again = forgetDomain(after, 7);
    expect(again.store).toBe(after);
    expect(again.changes).toEqual([]);
  });

  it('strips the domain from the special permissions too', () => {
    const s = apply(before, DOM0, sp('@releaseDomain', 'n0', 'r7', 'r5'), sp('@introduceDomain', 'r0', 'b7'));
    const t = forgetDomain(s, 7).store;
    expect(formatPerms(t.special['@releaseDomain'])).toEqual(['n0', 'r5']);
    expect(formatPerms(t.special['@introduceDomain'])).toEqual(['r0']);
    // Untouched lists stay the same objects.
    const u = forgetDomain(t, 9).store;
    expect(u).toBe(t);
  });

  it('gives a special name the domain owned back to dom0, so a new domain with its id gets nothing', () => {
    // cxenstored's remove_domid_from_perm: an owner that goes away is replaced by the privileged
    // domain. Keeping the owner would hand @releaseDomain to the next domain reusing the id.
    const s = apply(before, DOM0, sp('@releaseDomain', 'n7', 'r5'), sp('@introduceDomain', 'b7'));
    const t = forgetDomain(s, 7).store;
    expect(formatPerms(t.special['@releaseDomain'])).toEqual(['n0', 'r5']);
    expect(formatPerms(t.special['@introduceDomain'])).toEqual(['b0']);
    const reborn = guest(7);
    expect(reply(t, reborn, gp('@releaseDomain'))).toBe('EACCES');
    expect(reply(t, reborn, sp('@releaseDomain', 'n7', 'r7'))).toBe('EACCES');
    expect(reply(t, guest(5), gp('@releaseDomain'))).toEqual({ kind: 'perms', perms: t.special['@releaseDomain'] });
  });

  it('gives the root back to dom0 if the domain owned it (the root cannot be removed)', () => {
    const s = apply(before, DOM0, sp('/', 'r7', 'b5'));
    const r = forgetDomain(s, 7);
    expect(formatPerms(r.store.root.perms)).toEqual(['r0', 'b5']);
    expect(owned(r.store.quota, 7)).toBe(0);
    checkQuota(r.store);
    expect(reply(r.store, guest(7), sp('/', 'b7'))).toBe('EACCES');
    expect(reply(r.store, guest(7), wr('/top', 'x'))).toBe('EACCES');
  });

  it('XSA-322: after forgetting 7, a new guest 7 cannot read what the old one was granted', () => {
    expect(reply(before, guest(7), rd('/secret'))).toEqual({ kind: 'value', value: 's' });
    expect(reply(after, guest(7), rd('/secret'))).toBe('EACCES');
    expect(reply(after, guest(7), wr('/secret', 'x'))).toBe('EACCES');
    expect(reply(after, guest(7), wr('/pool/again', 'x'))).toBe('EACCES');
    expect(reply(after, guest(5), rd('/secret'))).toEqual({ kind: 'value', value: 's' });
  });

  it('XSA-483: the new domain starts with a full quota', () => {
    let s = before;
    s = apply(s, guest(7), wr('/local/domain/7/more/a', ''), wr('/local/domain/7/more/b', ''));
    const used = owned(s.quota, 7);
    expect(used).toBeGreaterThan(5);
    const fresh = apply(forgetDomain(s, 7).store, DOM0, mk('/local/domain/7'), sp('/local/domain/7', 'n7'));
    expect(owned(fresh.quota, 7)).toBe(1);
  });

  it('handles a tree ~1000 levels deep (XSA-418)', () => {
    const deep = `/${Array.from({ length: 1000 }, () => 'z').join('/')}`;
    let s = apply(before, DOM0, wr(deep, 'x'), sp(deep, 'n0', 'r7'), sp('/z/z', 'n7'));
    expect(owned(s.quota, 7)).toBeGreaterThan(0);
    const r = forgetDomain(s, 7);
    expect(r.changes).toContainEqual({ path: '/z/z', kind: 'remove' });
    expect(lookup(r.store.root, ['z'])?.childNames()).toEqual([]);
    expect(owned(r.store.quota, 7)).toBe(0);
    checkQuota(r.store);
    s = apply(before, DOM0, wr(deep, 'x'), sp(deep, 'n0', 'r7'));
    const t = forgetDomain(s, 7).store;
    expect(formatPerms(lookup(t.root, deep.slice(1).split('/'))!.perms)).toEqual(['n0']);
  });

  it('reads of the forgotten domain nodes are ENOENT for dom0', () => {
    expect(reply(after, DOM0, rd('/local/domain/7/data/a'))).toBe('ENOENT');
    expect(reply(after, DOM0, rd('/pool/by7/deep'))).toBe('ENOENT');
  });
});

/** What forgetting domain `d` must leave, by brute force over the whole tree (no pruning). */
function forgotten(n: XsNode, d: number, isRoot: boolean): unknown {
  if (!isRoot && n.perms[0]!.domid === d) return undefined;
  let perms = formatPerms(n.perms.filter((e, i) => i === 0 || e.domid !== d));
  if (isRoot && n.perms[0]!.domid === d) perms = [`${perms[0]![0]}0`, ...perms.slice(1)];
  const kids: Record<string, unknown> = {};
  for (const name of n.childNames()) {
    const k = forgotten(n.children.get(name)!, d, false);
    if (k !== undefined) kids[name] = k;
  }
  return { perms, kids };
}

/** A tree by value: permissions and children, in the form `forgotten` gives. */
function byValue(n: XsNode): unknown {
  const kids: Record<string, unknown> = {};
  for (const name of n.childNames()) kids[name] = byValue(n.children.get(name)!);
  return { perms: formatPerms(n.perms), kids };
}

describe('forgetDomain on random trees (property)', () => {
  const D = 7;
  const PERMS: Perms[] = [['n0'], ['n7'], ['r0', 'b7'], ['n5', 'r7', 'w5'], ['b7', 'r5'], ['n5'], ['r5', 'w7', 'w7']].map(
    (p) => parsePerms(p),
  );

  function treeOf(depth: number): fc.Arbitrary<XsNode> {
    const kids: fc.Arbitrary<[string, XsNode][]> =
      depth === 0
        ? fc.constant([])
        : fc.uniqueArray(fc.tuple(fc.constantFrom('a', 'b', 'c'), treeOf(depth - 1)), {
            maxLength: 3,
            selector: ([name]) => name,
          });
    return fc.tuple(fc.constantFrom(...PERMS), kids).map(([p, k]) => new XsNode('', p, ImmMap(k)));
  }

  /** True when no node of the subtree mentions D (owner or ACL). */
  const clean = (n: XsNode): boolean =>
    n.perms.every((e) => e.domid !== D) && [...n.children.values()].every(clean);

  it('removes, strips, recounts and shares exactly as specified', () => {
    fc.assert(
      fc.property(treeOf(3), (root) => {
        const s = fromRoot(root);
        const { store, changes } = forgetDomain(s, D);
        expect(byValue(store.root)).toEqual(forgotten(root, D, true));
        expect(clean(store.root)).toBe(true);
        expect(owned(store.quota, D)).toBe(0);
        checkQuota(store);
        // One remove per top: the nodes owned by D with no ancestor owned by D.
        const tops: string[] = [];
        const walk = (n: XsNode, path: string, removed: boolean) => {
          const top = !removed && path !== '/' && n.perms[0]!.domid === D;
          if (top) tops.push(path);
          for (const [name, c] of n.children) walk(c, path === '/' ? `/${name}` : `${path}/${name}`, removed || top);
        };
        walk(root, '/', false);
        expect(changes.map((c) => c.path).sort()).toEqual(tops.sort());
        expect(changes.every((c) => c.kind === 'remove')).toBe(true);
        // Subtrees that never mentioned D are kept as the same objects.
        for (const [name, c] of root.children) if (clean(c)) expect(store.root.children.get(name)).toBe(c);
        if (clean(root)) expect(store).toBe(s);
      }),
      { numRuns: 500 },
    );
  });
});

describe('the subtree domain summary that prunes the walk (node.ts `domains`)', () => {
  const PERMS = ['n0', 'n7', 'n38', 'r0|b7', 'n5|r7|w5', 'n0|r38', 'b7|r5'].map((p) => parsePerms(p.split('|')));
  const NAMES = ['a', 'b', 'c'];
  const pathArb = fc.array(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`);
  const opArb: fc.Arbitrary<StoreRequest> = fc.oneof(
    pathArb.map((path): StoreRequest => wr(path, 'v')),
    pathArb.map((path): StoreRequest => ({ op: 'rm', path })),
    fc.tuple(pathArb, fc.constantFrom(...PERMS)).map(([path, p]): StoreRequest => sp(path, ...formatPerms(p))),
  );

  /** Every node's summary covers every domain named in its subtree (it may say more). */
  function covers(n: XsNode): number {
    let bits = 0;
    for (const e of n.perms) bits |= domainBit(e.domid);
    for (const c of n.children.values()) bits |= covers(c);
    expect(n.domains & bits).toBe(bits);
    return bits;
  }

  it('stays a cover through writes, creations, removals and permission changes, and forgetting any domain (7 and 38 share a bit) is exact', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 25 }), fc.constantFrom(5, 7, 38), (ops, d) => {
        let s = createStore();
        for (const op of ops) {
          try {
            s = advance(execute(s, DOM0, DEFAULT_LIMITS, op).store, s);
          } catch (e) {
            if (!(e instanceof XsError)) throw e;
          }
          covers(s.root);
        }
        const { store } = forgetDomain(s, d);
        covers(store.root);
        expect(byValue(store.root)).toEqual(forgotten(s.root, d, true));
      }),
      { numRuns: 400 },
    );
  });

  it('a leaf names only its own domains; dom0 has no bit', () => {
    expect(XsNode.leaf('', parsePerms(['n0'])).domains).toBe(0);
    expect(XsNode.leaf('', parsePerms(['n7', 'r38'])).domains).toBe(domainBit(7) | domainBit(38));
    expect(XsNode.leaf('', parsePerms(['n5'])).domains).toBe((1 << 5) | 1);
    // 7 and 38 share one bit (7), not both: a node naming 7 does not say 'maybe' for 38.
    expect(domainBit(7) & domainBit(38)).toBe(1 << 7);
    expect(domainBit(7) === domainBit(38)).toBe(false);
  });
});
