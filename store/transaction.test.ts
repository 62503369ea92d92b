import { describe, expect, it } from 'vitest';
import { DOM0, guest, type Caller } from './caller.js';
import { XsError, type XsErrorCode } from '../protocol/index.js';
import { DEFAULT_LIMITS, type Limits } from './limits.js';
import { execute } from './operations.js';
import { formatPerms } from './perms.js';
import { owned } from './quota.js';
import { LOGGED_REQUEST_OVERHEAD, requestBytes, type StoreReply, type StoreRequest } from './request.js';
import { advance, createStore, type Store } from './store.js';
import { countOwners } from './subtree.js';
import { Transaction, commit, type CommitPath, type CommitResult } from './transaction.js';
import { lookup } from './tree.js';
import type { XsNode } from './node.js';

// ---------------------------------------------------------------------------------------------
// Helpers

const rd = (path: string): StoreRequest => ({ op: 'read', path });
const ls = (path: string): StoreRequest => ({ op: 'directory', path });
const gp = (path: string): StoreRequest => ({ op: 'get-perms', path });
const wr = (path: string, value: string): StoreRequest => ({ op: 'write', path, value });
const mk = (path: string): StoreRequest => ({ op: 'mkdir', path });
const rm = (path: string): StoreRequest => ({ op: 'rm', path });
const sp = (path: string, ...perms: string[]): StoreRequest => ({ op: 'set-perms', path, perms });

const g1 = guest(1);
const g2 = guest(2);

function checkQuota(s: Store): void {
  const counted = Object.fromEntries([...countOwners(s.root)].map(([d, n]) => [String(d), n]));
  const kept = Object.fromEntries([...s.quota].map(([d, n]) => [String(d), n]));
  expect(kept).toEqual(counted);
}

/** A plain (non-transactional) update, as the server does it: execute, then advance. */
function plain(s: Store, caller: Caller, ...reqs: StoreRequest[]): Store {
  for (const r of reqs) s = advance(execute(s, caller, DEFAULT_LIMITS, r).store, s);
  checkQuota(s);
  return s;
}

/** The value at `path` in `s`, or undefined. */
function valueAt(s: Store, path: string): string | undefined {
  return lookup(s.root, path === '/' ? [] : path.slice(1).split('/'))?.value;
}

function begin(s: Store, caller: Caller = DOM0, limits: Limits = DEFAULT_LIMITS): Transaction {
  return new Transaction(s, caller, limits);
}

/** Runs requests in the transaction, all expected to succeed. */
function txDo(tx: Transaction, ...reqs: StoreRequest[]): StoreReply[] {
  return reqs.map((r) => tx.execute(r));
}

function txCode(tx: Transaction, req: StoreRequest): XsErrorCode | 'none' {
  try {
    tx.execute(req);
    return 'none';
  } catch (e) {
    if (!(e instanceof XsError)) throw e;
    return e.code;
  }
}

const value = (r: StoreReply): string => {
  if (r.kind !== 'value') throw new Error(`not a value: ${r.kind}`);
  return r.value;
};

/** Commits and expects the given path; returns the new live store (quota checked). */
function commits(live: Store, tx: Transaction, path: CommitPath): Store {
  const r = commit(live, tx);
  expect(r.kind).toBe('committed');
  if (r.kind !== 'committed') throw new Error('unreachable');
  expect(r.path).toBe(path);
  checkQuota(r.store);
  return r.store;
}

function conflicts(live: Store, tx: Transaction): void {
  const r: CommitResult = commit(live, tx);
  expect(r).toEqual({ kind: 'conflict' });
}

/** Guests 1 and 2 own their homes; /vm exists; /a holds /a/b. */
function world(): Store {
  let s = createStore();
  for (const d of [1, 2]) s = plain(s, DOM0, mk(`/local/domain/${d}`), sp(`/local/domain/${d}`, `n${d}`));
  return plain(s, DOM0, mk('/vm'), wr('/a/b', 'B'), wr('/c', 'C'));
}

const W = world();

// ---------------------------------------------------------------------------------------------

describe('read-only commits', () => {
  it('always commit, even when what they read changed meanwhile, and install nothing', () => {
    const tx = begin(W);
    expect(value(tx.execute(rd('/a/b')))).toBe('B');
    txDo(tx, ls('/a'), gp('/a'));
    const live = plain(W, DOM0, wr('/a/b', 'changed'), rm('/c'));
    const r = commit(live, tx);
    expect(r).toEqual({ kind: 'committed', store: live, changes: [], path: 'read-only' });
    if (r.kind === 'committed') {
      expect(r.store).toBe(live);
      expect(r.store.generation).toBe(live.generation);
    }
  });

  it('a transaction whose writes changed nothing commits as read-only, with its events', () => {
    const tx = begin(W);
    txDo(tx, wr('/a/b', 'B'), mk('/a'), rm('/a/missing'));
    expect(tx.store).toBe(W);
    const live = plain(W, DOM0, wr('/c', 'C2'));
    const r = commit(live, tx);
    expect(r).toEqual({ kind: 'committed', store: live, changes: [{ path: '/a/b', kind: 'set' }], path: 'read-only' });
  });

  it('an empty transaction commits as read-only', () => {
    const tx = begin(W, g1);
    expect(commit(W, tx)).toEqual({ kind: 'committed', store: W, changes: [], path: 'read-only' });
  });
});

describe('fast path', () => {
  it('installs T2 when nothing was committed since the start', () => {
    const tx = begin(W);
    txDo(tx, wr('/a/b', 'new'), wr('/x/y', '1'), rm('/c'));
    const live = commits(W, tx, 'fast');
    expect(live.root).toBe(tx.store.root);
    expect(live.generation).toBe(W.generation + 1);
    expect(valueAt(live, '/a/b')).toBe('new');
    expect(valueAt(live, '/x/y')).toBe('1');
    expect(valueAt(live, '/c')).toBeUndefined();
  });
});

describe('merge', () => {
  it('two guests writing under their own homes both commit (check 21), sharing the rest', () => {
    const t1 = begin(W, g1);
    const t2 = begin(W, g2);
    txDo(t1, wr('x', 'one'), rd('x'));
    txDo(t2, wr('y', 'two'), mk('z/zz'));
    const l1 = commits(W, t1, 'fast');
    const l2 = commits(l1, t2, 'merge');
    expect(l2.generation).toBe(W.generation + 2);
    expect(valueAt(l2, '/local/domain/1/x')).toBe('one');
    expect(valueAt(l2, '/local/domain/2/y')).toBe('two');
    expect(valueAt(l2, '/local/domain/2/z/zz')).toBe('');
    // The merged subtree is the transaction's own; the other home is the live one.
    expect(lookup(l2.root, ['local', 'domain', '2'])).toBe(lookup(t2.store.root, ['local', 'domain', '2']));
    expect(lookup(l2.root, ['local', 'domain', '1'])).toBe(lookup(l1.root, ['local', 'domain', '1']));
    expect(lookup(l2.root, ['a'])).toBe(lookup(W.root, ['a']));
    expect(owned(l2.quota, 1)).toBe(owned(W.quota, 1) + 1);
    expect(owned(l2.quota, 2)).toBe(owned(W.quota, 2) + 3); // y, z, z/zz
  });

  it('merges a dom0 transaction past unrelated plain writes', () => {
    const tx = begin(W);
    txDo(tx, rd('/a/b'), wr('/a/b', 'tx'), wr('/a/new', 'n'));
    const live = plain(W, DOM0, wr('/c', 'outside'), wr('/vm/9', 'v'));
    const next = commits(live, tx, 'merge');
    expect(valueAt(next, '/a/b')).toBe('tx');
    expect(valueAt(next, '/a/new')).toBe('n');
    expect(valueAt(next, '/c')).toBe('outside');
    expect(valueAt(next, '/vm/9')).toBe('v');
    expect(next.generation).toBe(live.generation + 1);
  });

  it('carries the special permissions when only the transaction changed them', () => {
    const tx = begin(W);
    txDo(tx, sp('@releaseDomain', 'n0', 'r1'), wr('/a/b', 'x'));
    const live = plain(W, DOM0, wr('/c', 'outside'));
    const next = commits(live, tx, 'merge');
    expect(formatPerms(next.special['@releaseDomain'])).toEqual(['n0', 'r1']);
    expect(valueAt(next, '/c')).toBe('outside');
  });
});

describe('replay', () => {
  it('a transaction over several subtrees merges when nothing it saw changed', () => {
    const tx = begin(W);
    txDo(tx, wr('/vm/1/name', 'guest1'), mk('/local/domain/1/device'), rd('/vm/1/name'));
    const live = plain(W, DOM0, wr('/vm/2/name', 'guest2'));
    const next = commits(live, tx, 'merge');
    expect(valueAt(next, '/vm/1/name')).toBe('guest1');
    expect(valueAt(next, '/vm/2/name')).toBe('guest2');
    expect(valueAt(next, '/local/domain/1/device')).toBe('');
    expect(next.generation).toBe(live.generation + 1);
  });

  it('reports the replayed changes', () => {
    const tx = begin(W);
    txDo(tx, wr('/vm/1', 'a'), wr('/c', 'b'));
    // /vm's permissions decided the creation of /vm/1: the merge declines, replay decides.
    const live = plain(W, DOM0, sp('/vm', 'n0', 'r1'));
    const r = commit(live, tx);
    expect(r.kind === 'committed' && r.path).toBe('replay');
    expect(r.kind === 'committed' && r.changes).toEqual([
      { path: '/vm/1', kind: 'set' },
      { path: '/c', kind: 'set' },
    ]);
  });

  it('serial semantics: "rm /a then write /a/x" removes a child added concurrently', () => {
    const tx = begin(W);
    txDo(tx, rm('/a'), wr('/a/x', 'X'));
    const live = plain(W, DOM0, wr('/a/y', 'Y'));
    const next = commits(live, tx, 'replay');
    expect(valueAt(next, '/a/x')).toBe('X');
    expect(valueAt(next, '/a/y')).toBeUndefined();
    expect(valueAt(next, '/a/b')).toBeUndefined();
    expect(lookup(next.root, ['a'])!.childNames()).toEqual(['x']);
  });

  it('two transactions removing the same subtree both commit, counts stay right (XSA-440)', () => {
    const s = plain(W, g1, wr('d/e/f', 'x'));
    expect(owned(s.quota, 1)).toBe(owned(W.quota, 1) + 3);
    const u1 = begin(s, g1);
    const u2 = begin(s, g1);
    const u3 = begin(s, g1);
    txDo(u1, rm('d'));
    txDo(u2, rm('d'));
    txDo(u3, rm('d/e'));
    const l1 = commits(s, u1, 'fast');
    // Removing a node that is already gone (its parent still there) is OK: same replies.
    const l2 = commits(l1, u2, 'replay');
    expect(l2).toBe(l1);
    // Removing d/e when d is gone is ENOENT now, OK then: conflict.
    conflicts(l2, u3);
    expect(owned(l2.quota, 1)).toBe(owned(W.quota, 1));
  });
});

describe('conflicts', () => {
  it('read A, outside write A, write B: conflict, live untouched (check 20)', () => {
    const tx = begin(W);
    expect(value(tx.execute(rd('/a/b')))).toBe('B');
    const live = plain(W, DOM0, wr('/a/b', 'outside'));
    tx.execute(wr('/c', 'from tx'));
    conflicts(live, tx);
    expect(valueAt(live, '/a/b')).toBe('outside');
    expect(valueAt(live, '/c')).toBe('C');
  });

  it('read-modify-write of the same node conflicts (test-xenstore "ta err")', () => {
    const tx = begin(W);
    const v = value(tx.execute(rd('/a/b')));
    tx.execute(wr('/a/b', `${v}+1`));
    const live = plain(W, DOM0, wr('/a/b', 'B2'));
    conflicts(live, tx);
  });

  it('a directory listing that gained a child conflicts', () => {
    const tx = begin(W);
    txDo(tx, ls('/a'), wr('/c', 'x'));
    const live = plain(W, DOM0, wr('/a/new', ''));
    conflicts(live, tx);
  });

  it('a request that failed and would now succeed conflicts', () => {
    const tx = begin(W, g1);
    expect(txCode(tx, rd('/local/domain/2/secret'))).toBe('EACCES');
    tx.execute(wr('x', '1'));
    const live = plain(W, DOM0, sp('/local/domain/2', 'n2', 'r1'), wr('/local/domain/2/secret', 's'));
    conflicts(live, tx);
  });

  it('a special permission read that changed conflicts', () => {
    const tx = begin(W);
    txDo(tx, gp('@releaseDomain'), wr('/a/b', 'x'));
    const live = plain(W, DOM0, sp('@releaseDomain', 'n0', 'r2'));
    conflicts(live, tx);
  });

  it('the same transaction commits when the outside change is undone by value', () => {
    const tx = begin(W);
    txDo(tx, rd('/a/b'), wr('/c', 'x'));
    const live = plain(W, DOM0, wr('/a/b', 'other'), wr('/a/b', 'B'));
    // Observations compare values, not node objects: nothing the read saw differs.
    const next = commits(live, tx, 'merge');
    expect(valueAt(next, '/c')).toBe('x');
  });
});

describe('isolation (check 19)', () => {
  it('outside writes are invisible inside the transaction', () => {
    const tx = begin(W);
    tx.execute(wr('/a/inside', 'in'));
    const live = plain(W, DOM0, wr('/a/b', 'outside'), wr('/outside', 'o'));
    expect(value(tx.execute(rd('/a/b')))).toBe('B');
    expect(txCode(tx, rd('/outside'))).toBe('ENOENT');
    expect(value(tx.execute(rd('/a/inside')))).toBe('in');
    // It read /a/b, which changed: it cannot commit, and live keeps the outside writes.
    conflicts(live, tx);
    expect(valueAt(live, '/a/b')).toBe('outside');
    expect(valueAt(live, '/a/inside')).toBeUndefined();
  });

  it('transaction writes are invisible outside until the commit, visible after', () => {
    const tx = begin(W, g1);
    txDo(tx, wr('x', 'tx'), rd('x'));
    let live = plain(W, g2, wr('y', 'plain'));
    expect(valueAt(live, '/local/domain/1/x')).toBeUndefined();
    expect(() => execute(live, g1, DEFAULT_LIMITS, rd('x'))).toThrow(XsError);
    live = commits(live, tx, 'merge');
    expect(execute(live, g1, DEFAULT_LIMITS, rd('x')).reply).toEqual({ kind: 'value', value: 'tx' });
    expect(valueAt(live, '/local/domain/2/y')).toBe('plain');
  });
});

describe('limits', () => {
  it('a guest transaction fails for good past transactionOps requests; commit says failed', () => {
    const limits: Limits = { ...DEFAULT_LIMITS, transactionOps: 3 };
    const tx = begin(W, g1, limits);
    txDo(tx, wr('a', '1'), rd('a'), wr('b', '2'));
    expect(txCode(tx, rd('a'))).toBe('ENOSPC');
    expect(tx.failed).toBe('ENOSPC');
    expect(txCode(tx, rd('a'))).toBe('ENOSPC');
    expect(commit(W, tx)).toEqual({ kind: 'failed', code: 'ENOSPC' });
  });

  it('failed requests count too', () => {
    const limits: Limits = { ...DEFAULT_LIMITS, transactionOps: 2 };
    const tx = begin(W, g1, limits);
    expect(txCode(tx, rd('nope'))).toBe('ENOENT');
    expect(txCode(tx, rd('nope'))).toBe('ENOENT');
    expect(txCode(tx, rd('nope'))).toBe('ENOSPC');
    expect(commit(W, tx)).toEqual({ kind: 'failed', code: 'ENOSPC' });
  });

  it('bytes: each logged request adds its strings, its outcome and the entry; refused ones add nothing', () => {
    const limits: Limits = { ...DEFAULT_LIMITS, transactionOps: 3 };
    const tx = begin(W, g1, limits);
    expect(tx.bytes).toBe(0);
    const big = 'v'.repeat(2000);
    tx.execute(wr('a', big));
    // The write's path and value, 'OK', the entry.
    expect(tx.bytes).toBe(requestBytes(wr('a', big)) + 2);
    expect(tx.bytes).toBe(LOGGED_REQUEST_OVERHEAD + 1 + 2000 + 2);
    const afterWrite = tx.bytes;
    // A READ keeps the value it saw, for replay: it costs that value too.
    tx.execute(rd('a'));
    expect(tx.bytes - afterWrite).toBe(LOGGED_REQUEST_OVERHEAD + 1 + 1 + 2000);
    // A failed request is logged with its error code.
    const beforeFail = tx.bytes;
    expect(txCode(tx, rd('nope'))).toBe('ENOENT');
    expect(tx.bytes - beforeFail).toBe(LOGGED_REQUEST_OVERHEAD + 4 + 'ENOENT'.length);
    // Past transactionOps nothing more is logged, so nothing more is held.
    const full = tx.bytes;
    expect(txCode(tx, wr('b', big))).toBe('ENOSPC');
    expect(tx.bytes).toBe(full);
  });

  it('requestBytes counts a SET_PERMS\'s permissions', () => {
    expect(requestBytes(sp('/x', 'n1', 'r2'))).toBe(LOGGED_REQUEST_OVERHEAD + 2 + 3 + 3);
    expect(requestBytes(mk('/abc'))).toBe(LOGGED_REQUEST_OVERHEAD + 4);
  });

  it('dom0 transactions have no request limit', () => {
    const limits: Limits = { ...DEFAULT_LIMITS, transactionOps: 3 };
    const tx = begin(W, DOM0, limits);
    for (let i = 0; i < 10; i++) tx.execute(wr('/many', String(i)));
    expect(tx.failed).toBeUndefined();
    commits(W, tx, 'fast');
  });

  it('node quota is checked against live at commit: no merge past the limit', () => {
    // Guest 1 owns its home plus two directories: 3 nodes. Limit 5.
    const limits: Limits = { ...DEFAULT_LIMITS, nodes: 5 };
    const s = plain(W, g1, mk('tx'), mk('plain'));
    expect(owned(s.quota, 1)).toBe(3);
    const tx = begin(s, g1, limits);
    txDo(tx, wr('tx/p', ''), wr('tx/q', '')); // 5 inside the transaction: allowed
    expect(txCode(tx, wr('tx/r', ''))).toBe('ENOSPC');
    // Meanwhile, outside the transaction's subtree, the guest creates one more node.
    const live = advance(execute(s, g1, limits, wr('plain/x', '')).store, s);
    expect(owned(live.quota, 1)).toBe(4);
    const r = commit(live, tx);
    expect(r.kind).toBe('conflict');
    expect(owned(live.quota, 1)).toBe(4);
  });

  it('a guest transaction merges when its own count is unchanged', () => {
    const limits: Limits = { ...DEFAULT_LIMITS, nodes: 5 };
    const s = plain(W, g1, mk('tx'), mk('plain'));
    const tx = begin(s, g1, limits);
    txDo(tx, wr('tx/p', ''), wr('tx/q', ''));
    const live = plain(s, g2, wr('other', ''));
    const next = commits(live, tx, 'merge');
    expect(owned(next.quota, 1)).toBe(5);
    expect(owned(next.quota, 2)).toBe(owned(s.quota, 2) + 1);
  });

  it('create/delete churn inside a transaction keeps the counts exact (XSA-421)', () => {
    const tx = begin(W, g1);
    for (let i = 0; i < 20; i++) txDo(tx, wr('churn/a/b', String(i)), rm('churn'));
    txDo(tx, wr('kept/x', 'x'));
    checkQuota(tx.store);
    const next = commits(W, tx, 'fast');
    expect(owned(next.quota, 1)).toBe(owned(W.quota, 1) + 2);
  });
});

describe('deep trees (XSA-418)', () => {
  it('a transaction creating and removing a ~1000-level path merges', () => {
    const deep = `/${Array.from({ length: 1000 }, () => 'q').join('/')}`;
    const tx = begin(W);
    txDo(tx, wr(deep, 'bottom'), rd(deep), wr('/c', 'x'));
    const live = plain(W, DOM0, wr('/vm/1', 'other'));
    const next = commits(live, tx, 'merge');
    expect(valueAt(next, deep)).toBe('bottom');
    const rmTx = begin(next);
    txDo(rmTx, rm('/q'));
    const after = commits(next, rmTx, 'fast');
    expect(after.quota).toEqual(plain(live, DOM0, wr('/c', 'x')).quota);
  });
});

describe('changes and generations', () => {
  it('changes are deduplicated per path, in first-touch order, with the last kind', () => {
    const tx = begin(W);
    txDo(tx, wr('/x', '1'), wr('/y/z', '2'), wr('/x', '3'), sp('/y/z', 'n0'), rm('/y/z'), mk('/w'), rm('/x'), wr('/x', 'again'));
    expect(tx.changes()).toEqual([
      { path: '/x', kind: 'set' },
      { path: '/y/z', kind: 'remove' },
      { path: '/w', kind: 'set' },
    ]);
    const r = commit(W, tx);
    expect(r.kind === 'committed' && r.changes).toEqual(tx.changes());
  });

  it('mkdir of an existing node and rm of a missing one add no change', () => {
    const tx = begin(W);
    txDo(tx, mk('/a'), rm('/a/nothing'), wr('/c', 'v'));
    expect(tx.changes()).toEqual([{ path: '/c', kind: 'set' }]);
  });

  it('generation: +1 per committing change, +0 for read-only and conflicts', () => {
    let live = W;
    const g0 = live.generation;
    const ro = begin(live);
    ro.execute(rd('/a/b'));
    live = commits(live, ro, 'read-only');
    expect(live.generation).toBe(g0);

    const a = begin(live);
    const b = begin(live);
    const c = begin(live);
    a.execute(wr('/a/b', 'A'));
    b.execute(wr('/local/domain/1/b', 'B'));
    c.execute(rd('/a/b'));
    c.execute(wr('/c', 'C2'));
    live = commits(live, a, 'fast');
    expect(live.generation).toBe(g0 + 1);
    live = commits(live, b, 'merge');
    expect(live.generation).toBe(g0 + 2);
    conflicts(live, c);
    const d = begin(W);
    d.execute(wr('/vm/x', 'd'));
    d.execute(wr('/c', 'd'));
    live = commits(live, d, 'merge');
    expect(live.generation).toBe(g0 + 3);
  });

  it('a replayed transaction whose effect is already there installs nothing and keeps the generation', () => {
    const tx = begin(W);
    txDo(tx, wr('/vm/v', 'same'), wr('/c', 'same'));
    const live = plain(W, DOM0, wr('/vm/v', 'same'), wr('/c', 'same'));
    const r = commit(live, tx);
    expect(r.kind === 'committed' && r.path).toBe('replay');
    expect(r.kind === 'committed' && r.store).toBe(live);
  });
});


// ---------------------------------------------------------------------------------------------
// The merge step: what each request observes, and what the merge builds.

/** The tree by value (value, perms, children), for comparing a commit with a serial run. */
function treeOf(n: XsNode): unknown {
  return [n.value, formatPerms(n.perms).join(','), n.childNames().map((k) => [k, treeOf(n.children.get(k)!)])];
}

/** The requests run alone on `s`, in order: the serial oracle (errors are part of the run). */
function serialOn(s: Store, caller: Caller, reqs: readonly StoreRequest[]): Store {
  for (const r of reqs) {
    try {
      s = execute(s, caller, DEFAULT_LIMITS, r).store;
    } catch (e) {
      if (!(e instanceof XsError)) throw e;
    }
  }
  return s;
}

/** Commits and, when committed, checks the result equals running the requests alone on `live`. */
function commitChecked(live: Store, tx: Transaction, reqs: readonly StoreRequest[]): CommitPath | 'conflict' | 'failed' {
  const r = commit(live, tx);
  if (r.kind !== 'committed') return r.kind;
  const alone = serialOn(live, tx.caller, reqs);
  expect(treeOf(r.store.root)).toEqual(treeOf(alone.root));
  expect([...r.store.quota].sort()).toEqual([...alone.quota].sort());
  checkQuota(r.store);
  return r.path;
}

describe('what a request observes (merge declines exactly when it changed)', () => {
  it.each<[string, StoreRequest[], StoreRequest[], CommitPath | 'conflict']>([
    ['READ observes the value', [rd('/a/b')], [wr('/a/b', 'L')], 'conflict'],
    ['READ does not observe the children', [rd('/a')], [wr('/a/new', 'L')], 'merge'],
    ['DIRECTORY observes the child names', [ls('/a')], [wr('/a/new', 'L')], 'conflict'],
    ['DIRECTORY: a child removed is a change', [ls('/a')], [rm('/a/b')], 'conflict'],
    ['DIRECTORY does not observe the value', [ls('/a')], [wr('/a', 'L')], 'merge'],
    ["DIRECTORY does not observe the children's values", [ls('/a')], [wr('/a/b', 'L'), wr('/a/b/deeper', 'L')], 'merge'],
    ['GET_PERMS observes the perms', [gp('/a')], [sp('/a', 'n0', 'r1')], 'conflict'],
    ['GET_PERMS does not observe the value', [gp('/a')], [wr('/a', 'L')], 'merge'],
    ['WRITE of an existing node does not observe its value (last writer wins)', [wr('/a/b', 'T')], [wr('/a/b', 'L')], 'merge'],
    ['WRITE of an existing node observes its perms', [wr('/a/b', 'T')], [sp('/a/b', 'n0', 'r2')], 'replay'],
    ['a creation observes the missing child', [wr('/a/x/y', 'T')], [wr('/a/x', 'L')], 'replay'],
    ["a creation observes the ancestor's perms", [wr('/a/x/y', 'T')], [sp('/a', 'n0', 'r2')], 'replay'],
    ['a creation does not observe its siblings', [wr('/a/x/y', 'T')], [wr('/a/y', 'L'), rm('/a/b')], 'merge'],
    ['a READ of a missing node observes its absence', [rd('/a/x')], [wr('/a/x', 'L')], 'conflict'],
    ['MKDIR of an existing node observes only its perms', [mk('/a')], [wr('/a', 'L'), wr('/a/z', 'L')], 'merge'],
    ['RM observes the whole subtree it removes', [rm('/a')], [wr('/a/b/deep', 'L')], 'replay'],
    ['RM of a missing node observes its absence', [rm('/a/x')], [wr('/a/x', 'L')], 'replay'],
    ['SET_PERMS observes the perms, not the value', [sp('/a/b', 'n0', 'r1')], [wr('/a/b', 'L')], 'merge'],
    ['an invalid path observes nothing', [rd('/a//b')], [wr('/a/b', 'L'), wr('/a', 'L')], 'merge'],
  ])('%s', (_name, txReqs, outside, want) => {
    const reqs = [...txReqs, wr('/c', 'T')]; // a write elsewhere, so that it is not read-only
    const tx = begin(W);
    for (const r of reqs) txCode(tx, r);
    const live = plain(W, DOM0, ...outside);
    expect(commitChecked(live, tx, reqs)).toBe(want);
  });

  it('a read of a node whose child the transaction wrote still observes its value', () => {
    const reqs = [wr('/a/b', 'T'), rd('/a'), wr('/c', 'T')];
    const tx = begin(W);
    txDo(tx, ...reqs);
    expect(commitChecked(plain(W, DOM0, wr('/a', 'L')), tx, reqs)).toBe('conflict');
  });

  it('what the transaction wrote itself is not observed: a read after its own write', () => {
    const reqs = [wr('/a/b', 'T'), rd('/a/b'), sp('/a/b', 'n0', 'r1'), gp('/a/b')];
    const tx = begin(W);
    txDo(tx, ...reqs);
    // Serially after the outside write, the transaction still reads its own value and perms.
    expect(commitChecked(plain(W, DOM0, wr('/a/b', 'L')), tx, reqs)).toBe('merge');
  });

  it.each<[string, StoreRequest, CommitPath]>([
    // A guest's creation must fit beside its parent's child names (operations.ts `checkRecord`).
    ["a guest's creation observes its parent's child names", wr('/local/domain/1/y', 'T'), 'replay'],
    ["a guest's READ of a missing node does not", rd('/local/domain/1/y'), 'merge'],
  ])('%s', (_name, req, want) => {
    // /local/domain/1/s is dom0's: removing it changes the home's names, not guest 1's count.
    const s = plain(W, DOM0, mk('/local/domain/1/s'), sp('/local/domain/1/s', 'n0'), mk('/local/domain/1/a'));
    const reqs = [req, wr('/local/domain/1/a', 'T')]; // a write, so that it is not read-only
    const tx = begin(s, g1);
    for (const r of reqs) txCode(tx, r);
    expect(commitChecked(plain(s, DOM0, rm('/local/domain/1/s')), tx, reqs)).toBe(want);
  });

  it('reads inside a subtree the transaction created observe nothing', () => {
    const reqs = [wr('/a/x/y', 'T'), ls('/a/x'), rd('/a/x/y'), gp('/a/x'), wr('/c', 'T')];
    const tx = begin(W);
    txDo(tx, ...reqs);
    expect(commitChecked(plain(W, DOM0, wr('/a/b', 'L'), wr('/vm/v', 'L')), tx, reqs)).toBe('merge');
  });
});

describe('merge', () => {
  it('VM start: creations under three subtrees others also create under merge, sharing by reference', () => {
    const vmStart = (d: number): StoreRequest[] => [
      wr(`/local/domain/${d + 2}/name`, `vm${d}`),
      wr(`/local/domain/${d + 2}/device/vbd/51712/state`, '1'),
      wr(`/local/domain/0/backend/vbd/${d + 2}/51712/state`, '1'),
      wr(`/vm/u${d}/name`, `vm${d}`),
      rd(`/local/domain/${d + 2}/name`),
      rd(`/vm/u${d}/name`),
    ];
    const base = plain(W, DOM0, mk('/local/domain/0/backend/vbd'));
    const txs = [0, 1, 2].map((d) => {
      const tx = begin(base);
      txDo(tx, ...vmStart(d));
      return tx;
    });
    let live = commits(base, txs[0]!, 'fast');
    for (const d of [1, 2]) {
      expect(commitChecked(live, txs[d]!, vmStart(d))).toBe('merge');
      live = commits(live, txs[d]!, 'merge');
    }
    expect(lookup(live.root, ['local', 'domain', '0', 'backend', 'vbd'])!.childNames()).toEqual(['2', '3', '4']);
    expect(lookup(live.root, ['vm'])!.childNames()).toEqual(['u0', 'u1', 'u2']);
    // What a transaction created is its own subtree, taken whole; what it did not touch is live's.
    expect(lookup(live.root, ['vm', 'u2'])).toBe(lookup(txs[2]!.store.root, ['vm', 'u2']));
    expect(lookup(live.root, ['vm', 'u1'])).toBe(lookup(txs[1]!.store.root, ['vm', 'u1']));
    expect(lookup(live.root, ['a'])).toBe(lookup(W.root, ['a']));
  });

  it('rm then recreate: takes the transaction\'s subtree whole when nobody touched it', () => {
    const reqs = [rm('/a'), wr('/a/x', 'X')];
    const tx = begin(W);
    txDo(tx, ...reqs);
    const live = plain(W, DOM0, wr('/vm/other', 'o'));
    expect(commitChecked(live, tx, reqs)).toBe('merge');
    const next = commits(live, tx, 'merge');
    expect(lookup(next.root, ['a'])).toBe(lookup(tx.store.root, ['a']));
    expect(lookup(next.root, ['a'])!.childNames()).toEqual(['x']);
    expect(valueAt(next, '/vm/other')).toBe('o');
  });

  it('rm then recreate: a child added meanwhile is removed, as serial order demands (no merge)', () => {
    const reqs = [rm('/a'), wr('/a/x', 'X')];
    const tx = begin(W);
    txDo(tx, ...reqs);
    const live = plain(W, DOM0, wr('/a/y', 'Y'));
    expect(commitChecked(live, tx, reqs)).toBe('replay');
    expect(lookup(commits(live, tx, 'replay').root, ['a'])!.childNames()).toEqual(['x']);
  });

  it('a write of the value the node already had still overwrites what live holds', () => {
    const reqs = [wr('/a/b', 'B'), wr('/c', 'T')]; // /a/b is 'B' at the start
    const tx = begin(W);
    txDo(tx, ...reqs);
    const live = plain(W, DOM0, wr('/a/b', 'L'));
    expect(commitChecked(live, tx, reqs)).toBe('merge');
    expect(valueAt(commits(live, tx, 'merge'), '/a/b')).toBe('B');
  });

  it('a DIRECTORY listing merges past changes to other directories, not past one to its own', () => {
    const reqs = [ls('/local/domain/0/backend/vbd'), wr('/local/domain/0/backend/vbd/7/state', '1')];
    const base = plain(W, DOM0, mk('/local/domain/0/backend/vbd/5'));
    const tx = begin(base);
    txDo(tx, ...reqs);
    expect(commitChecked(plain(base, DOM0, wr('/local/domain/0/backend/vbd/5/state', '4'), wr('/vm/x', '')), tx, reqs)).toBe('merge');
    expect(commitChecked(plain(base, DOM0, wr('/local/domain/0/backend/vbd/6/state', '1')), tx, reqs)).toBe('conflict');
  });

  it('perms changed on an ancestor between start and commit: the creation inherits the new ones', () => {
    const reqs = [wr('/a/x', 'X'), wr('/c', 'T')];
    const tx = begin(W);
    txDo(tx, ...reqs);
    const live = plain(W, DOM0, sp('/a', 'n0', 'r1'));
    // The merge would install /a/x with T1's perms of /a: it declines, and replay inherits r1.
    expect(commitChecked(live, tx, reqs)).toBe('replay');
    const next = commits(live, tx, 'replay');
    expect(formatPerms(lookup(next.root, ['a', 'x'])!.perms)).toEqual(['n0', 'r1']);
  });

  it('perms taken away from a guest on an ancestor between start and commit: conflict', () => {
    const reqs = [wr('x/y', 'T')];
    const tx = begin(W, g1);
    txDo(tx, ...reqs);
    const live = plain(W, DOM0, sp('/local/domain/1', 'n0'));
    expect(commitChecked(live, tx, reqs)).toBe('conflict');
  });

  it('quota after a merge: live + what the transaction created and removed, per domain', () => {
    const s = plain(W, g1, wr('old/a', ''), wr('old/b', ''));
    const reqs = [wr('/local/domain/1/new/p/q', ''), rm('/local/domain/1/old'), wr('/vm/dom0-owned', '')];
    const tx = begin(s, DOM0);
    txDo(tx, ...reqs);
    // Meanwhile guest 2 creates 2 nodes and guest 1 one more, outside what the transaction saw.
    const live = plain(s, g2, wr('more/x', ''));
    const live2 = plain(live, g1, wr('other', ''));
    expect(commitChecked(live2, tx, reqs)).toBe('merge');
    const next = commits(live2, tx, 'merge');
    // new/p/q inherit n1 (the owner of /local/domain/1): +3 for guest 1; old, old/a, old/b: -3.
    expect(owned(next.quota, 1)).toBe(owned(live2.quota, 1) + 3 - 3);
    expect(owned(next.quota, 2)).toBe(owned(live2.quota, 2));
    expect(owned(next.quota, 0)).toBe(owned(live2.quota, 0) + 1);
  });
});
