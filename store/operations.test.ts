import { describe, expect, it } from 'vitest';
import { DOM0, guest, type Caller } from './caller.js';
import { XsError, type XsErrorCode } from '../protocol/index.js';
import { DEFAULT_LIMITS, type Limits } from './limits.js';
import { execute, type Outcome } from './operations.js';
import { formatPerms } from './perms.js';
import { owned } from './quota.js';
import type { Change, StoreReply, StoreRequest } from './request.js';
import { advance, createStore, type Store } from './store.js';
import { countOwners } from './subtree.js';
import { lookup } from './tree.js';

// ---------------------------------------------------------------------------------------------
// Helpers

const rd = (path: string): StoreRequest => ({ op: 'read', path });
const ls = (path: string): StoreRequest => ({ op: 'directory', path });
const gp = (path: string): StoreRequest => ({ op: 'get-perms', path });
const wr = (path: string, value: string): StoreRequest => ({ op: 'write', path, value });
const mk = (path: string): StoreRequest => ({ op: 'mkdir', path });
const rm = (path: string): StoreRequest => ({ op: 'rm', path });
const sp = (path: string, ...perms: string[]): StoreRequest => ({ op: 'set-perms', path, perms });

/** What a row expects: 'OK', an error code, or a reply with content. */
type Expect = 'OK' | XsErrorCode | { value: string } | { names: string[] } | { perms: string[] };
type Row = readonly [Caller, StoreRequest, Expect];

const val = (value: string): Expect => ({ value });
const names = (...n: string[]): Expect => ({ names: n });
const perms = (...p: string[]): Expect => ({ perms: p });

const g5 = guest(5);
const g6 = guest(6);
const g7 = guest(7);
const ro = (c: Caller): Caller => ({ ...c, readOnly: true });

/** The quota invariant: the per-domain counts are exactly the owners counted in the tree. */
function checkQuota(s: Store): void {
  const counted = Object.fromEntries([...countOwners(s.root)].map(([d, n]) => [String(d), n]));
  const kept = Object.fromEntries([...s.quota].map(([d, n]) => [String(d), n]));
  expect(kept).toEqual(counted);
}

/** Runs one request; the error code on failure. Non-XsError exceptions propagate (and fail). */
function attempt(s: Store, caller: Caller, req: StoreRequest, limits: Limits = DEFAULT_LIMITS): Outcome | XsErrorCode {
  try {
    return execute(s, caller, limits, req);
  } catch (e) {
    if (!(e instanceof XsError)) throw e;
    return e.code;
  }
}

function describeReply(r: StoreReply): Expect {
  switch (r.kind) {
    case 'ok':
      return 'OK';
    case 'value':
      return { value: r.value };
    case 'names':
      return { names: [...r.names] };
    case 'perms':
      return { perms: formatPerms(r.perms) };
  }
}

/**
 * Runs the rows in order on `s`, checking every reply or error, that a failed request changed
 * nothing, and the quota invariant after each. Returns the final store.
 */
function run(s: Store, rows: readonly Row[], limits: Limits = DEFAULT_LIMITS): Store {
  checkQuota(s);
  rows.forEach(([caller, req, want], i) => {
    const got = attempt(s, caller, req, limits);
    const label = `row ${i}: ${caller.privileged ? 'dom0' : `dom${caller.domid}`} ${req.op} ${req.path.slice(0, 60)}`;
    if (typeof got === 'string') {
      expect(got, label).toBe(want);
    } else {
      expect(describeReply(got.reply), label).toEqual(want);
      s = advance(got.store, s);
    }
    checkQuota(s);
  });
  return s;
}

function ok(s: Store, caller: Caller, req: StoreRequest, limits: Limits = DEFAULT_LIMITS): Outcome {
  const out = attempt(s, caller, req, limits);
  if (typeof out === 'string') throw new Error(`${req.op} ${req.path} failed with ${out}`);
  checkQuota(out.store);
  return out;
}

function apply(s: Store, caller: Caller, ...reqs: StoreRequest[]): Store {
  for (const r of reqs) s = advance(ok(s, caller, r).store, s);
  return s;
}

/**
 * A store with homes for guests 5, 6, 7 (each owning its home, as the toolstack sets it up) and a
 * dom0 directory /shared with one node per ACL shape.
 */
function world(): Store {
  let s = createStore();
  for (const d of [5, 6, 7]) s = apply(s, DOM0, mk(`/local/domain/${d}`), sp(`/local/domain/${d}`, `n${d}`));
  return apply(
    s,
    DOM0,
    wr('/shared/none', 'N'),
    wr('/shared/r7', 'R'),
    sp('/shared/r7', 'n0', 'r7'),
    wr('/shared/w7', 'W'),
    sp('/shared/w7', 'n0', 'w7'),
    wr('/shared/b7', 'B'),
    sp('/shared/b7', 'n0', 'b7'),
    wr('/shared/pub', 'P'),
    sp('/shared/pub', 'r0'),
    wr('/local/domain/5/n5', 'five'),
    sp('/local/domain/5/n5', 'n5'),
  );
}

const W = world();

// ---------------------------------------------------------------------------------------------

describe('initial store', () => {
  it('has /, /local, /tool, /tool/xenstored, all n0 and empty, at generation 0', () => {
    run(createStore(), [
      [DOM0, ls('/'), names('local', 'tool')],
      [DOM0, ls('/tool'), names('xenstored')],
      [DOM0, rd('/'), val('')],
      [DOM0, rd('/tool/xenstored'), val('')],
      [DOM0, gp('/'), perms('n0')],
      [DOM0, gp('/local'), perms('n0')],
      [DOM0, ls('/local'), names()],
    ]);
    expect(createStore().generation).toBe(0);
  });
});

describe('dom0: every operation', () => {
  it('read / write / mkdir / rm / directory / get-perms / set-perms', () => {
    run(createStore(), [
      [DOM0, wr('/a', 'hello'), 'OK'],
      [DOM0, rd('/a'), val('hello')],
      [DOM0, wr('/a', 'world'), 'OK'],
      [DOM0, rd('/a'), val('world')],
      [DOM0, mk('/a/b'), 'OK'],
      [DOM0, rd('/a/b'), val('')],
      [DOM0, ls('/a'), names('b')],
      [DOM0, ls('/a/b'), names()],
      [DOM0, gp('/a/b'), perms('n0')],
      [DOM0, sp('/a/b', 'r0', 'b3'), 'OK'],
      [DOM0, gp('/a/b'), perms('r0', 'b3')],
      [DOM0, rd('/a'), val('world')], // children do not touch the value
      [DOM0, rm('/a'), 'OK'],
      [DOM0, rd('/a'), 'ENOENT'],
      [DOM0, rd('/a/b'), 'ENOENT'],
      [DOM0, ls('/'), names('local', 'tool')],
    ]);
  });

  it('relative paths resolve under /local/domain/0', () => {
    run(createStore(), [
      [DOM0, wr('x/y', '1'), 'OK'],
      [DOM0, rd('/local/domain/0/x/y'), val('1')],
      [DOM0, rd('x/y'), val('1')],
      [DOM0, ls('/local/domain/0'), names('x')],
    ]);
  });

  it('missing nodes are ENOENT for every reading operation and set-perms', () => {
    run(createStore(), [
      [DOM0, rd('/nope'), 'ENOENT'],
      [DOM0, ls('/nope'), 'ENOENT'],
      [DOM0, gp('/nope'), 'ENOENT'],
      [DOM0, sp('/nope', 'n0'), 'ENOENT'],
      [DOM0, rd('/nope/deeper'), 'ENOENT'],
    ]);
  });

  it('invalid paths are EINVAL for every operation, including /local/domain/ (XSA-481)', () => {
    const bad = ['', '/a//b', '/a/', '/a b', '/a.b', '/local/domain/', '//', '/caf\u00e9', '/a\u0000'];
    const rows: Row[] = [];
    for (const path of bad) {
      for (const req of [rd(path), ls(path), gp(path), wr(path, 'v'), mk(path), rm(path), sp(path, 'n0')]) {
        rows.push([DOM0, req, 'EINVAL'], [g5, req, 'EINVAL']);
      }
    }
    run(W, rows);
  });

  it('@ names are EINVAL for read, write, mkdir, rm, directory', () => {
    run(createStore(), [
      [DOM0, rd('@releaseDomain'), 'EINVAL'],
      [DOM0, wr('@releaseDomain', 'x'), 'EINVAL'],
      [DOM0, mk('@introduceDomain'), 'EINVAL'],
      [DOM0, rm('@releaseDomain'), 'EINVAL'],
      [DOM0, ls('@releaseDomain'), 'EINVAL'],
    ]);
  });
});

describe('values', () => {
  it('WRITE of an empty value', () => {
    run(createStore(), [
      [DOM0, wr('/e', ''), 'OK'],
      [DOM0, rd('/e'), val('')],
      [DOM0, wr('/e', 'x'), 'OK'],
      [DOM0, wr('/e', ''), 'OK'],
      [DOM0, rd('/e'), val('')],
    ]);
  });

  it('values with NUL and every byte 0x00-0xff round-trip exactly', () => {
    const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('');
    const high = Array.from({ length: 128 }, (_, i) => String.fromCharCode(0x80 + i)).join('');
    run(W, [
      [DOM0, wr('/bin/nul', 'a\u0000b\u0000'), 'OK'],
      [DOM0, rd('/bin/nul'), val('a\u0000b\u0000')],
      [DOM0, wr('/bin/only-nul', '\u0000'), 'OK'],
      [DOM0, rd('/bin/only-nul'), val('\u0000')],
      [DOM0, wr('/bin/all', all), 'OK'],
      [DOM0, rd('/bin/all'), val(all)],
      [g5, wr('high', high), 'OK'],
      [g5, rd('high'), val(high)],
    ]);
    expect(all.length).toBe(256);
  });

  it('writing a value leaves the children and the permissions alone', () => {
    run(W, [
      [DOM0, wr('/shared', 'dir-value'), 'OK'],
      [DOM0, ls('/shared'), names('b7', 'none', 'pub', 'r7', 'w7')],
      [DOM0, gp('/shared/r7'), perms('n0', 'r7')],
      [DOM0, wr('/shared/r7', 'again'), 'OK'],
      [DOM0, gp('/shared/r7'), perms('n0', 'r7')],
    ]);
  });
});

describe('implicit parents', () => {
  it('WRITE creates missing parents with empty values and the nearest ancestor permissions (dom0)', () => {
    run(W, [
      [DOM0, sp('/shared', 'r0', 'w9'), 'OK'],
      [DOM0, wr('/shared/p/q/r', 'leaf'), 'OK'],
      [DOM0, rd('/shared/p'), val('')],
      [DOM0, rd('/shared/p/q'), val('')],
      [DOM0, rd('/shared/p/q/r'), val('leaf')],
      [DOM0, gp('/shared/p'), perms('r0', 'w9')],
      [DOM0, gp('/shared/p/q'), perms('r0', 'w9')],
      [DOM0, gp('/shared/p/q/r'), perms('r0', 'w9')],
      [DOM0, ls('/shared/p'), names('q')],
    ]);
  });

  it('dom0 creating below a guest home keeps the guest as owner and charges the guest', () => {
    const before = owned(W.quota, 5);
    const s = run(W, [
      [DOM0, wr('/local/domain/5/device/vif/0/state', '1'), 'OK'],
      [DOM0, gp('/local/domain/5/device'), perms('n5')],
      [DOM0, gp('/local/domain/5/device/vif/0/state'), perms('n5')],
      [g5, rd('device/vif/0/state'), val('1')],
    ]);
    expect(owned(s.quota, 5)).toBe(before + 4);
  });

  it('unprivileged creators own what they create, ACL entries are inherited', () => {
    const s = run(W, [
      [DOM0, mk('/open'), 'OK'],
      [DOM0, sp('/open', 'r0', 'b5', 'w6'), 'OK'],
      [g5, wr('/open/a/b', 'x'), 'OK'],
      [g5, gp('/open/a'), perms('r5', 'b5', 'w6')],
      [g5, gp('/open/a/b'), perms('r5', 'b5', 'w6')],
      [g6, wr('/open/c', 'y'), 'OK'],
      [g6, gp('/open/c'), perms('r6', 'b5', 'w6')],
      // 6 now owns /open/c: it may do anything there, 5 still has its b5 entry.
      [g6, sp('/open/c', 'n6'), 'OK'],
      [g5, rd('/open/c'), 'EACCES'],
      [g6, rd('/open/c'), val('y')],
    ]);
    expect(owned(s.quota, 5)).toBe(owned(W.quota, 5) + 2);
    expect(owned(s.quota, 6)).toBe(owned(W.quota, 6) + 1);
  });

  it('MKDIR creates parents the same way', () => {
    run(W, [
      [g5, mk('a/b/c'), 'OK'],
      [g5, ls('a'), names('b')],
      [g5, ls('a/b/c'), names()],
      [g5, gp('a/b'), perms('n5')],
      [g6, rd('/local/domain/5/a/b'), 'EACCES'],
    ]);
  });
});

describe('permissions between domains', () => {
  it('n5 owned by 5 is readable and writable by 5, not by 6', () => {
    run(W, [
      [g5, rd('/local/domain/5/n5'), val('five')],
      [g5, wr('/local/domain/5/n5', 'v'), 'OK'],
      [g5, ls('/local/domain/5/n5'), names()],
      [g5, gp('/local/domain/5/n5'), perms('n5')],
      [g5, mk('/local/domain/5/n5'), 'OK'],
      [g6, rd('/local/domain/5/n5'), 'EACCES'],
      [g6, wr('/local/domain/5/n5', 'x'), 'EACCES'],
      [g6, ls('/local/domain/5/n5'), 'EACCES'],
      [g6, gp('/local/domain/5/n5'), 'EACCES'],
      [g6, mk('/local/domain/5/n5'), 'EACCES'],
      [g6, rm('/local/domain/5/n5'), 'EACCES'],
      [g6, sp('/local/domain/5/n5', 'b5'), 'EACCES'],
      [g6, wr('/local/domain/5/n5/child', 'x'), 'EACCES'],
      [g5, rd('/local/domain/5/n5'), val('v')],
      [g5, rm('/local/domain/5/n5'), 'OK'],
      [g5, rd('n5'), 'ENOENT'],
    ]);
  });

  it('r7 lets 7 read but not write', () => {
    run(W, [
      [g7, rd('/shared/r7'), val('R')],
      [g7, ls('/shared/r7'), names()],
      [g7, gp('/shared/r7'), perms('n0', 'r7')],
      [g7, wr('/shared/r7', 'x'), 'EACCES'],
      [g7, mk('/shared/r7'), 'EACCES'],
      [g7, mk('/shared/r7/sub'), 'EACCES'],
      [g7, rm('/shared/r7'), 'EACCES'],
      [g7, sp('/shared/r7', 'n0', 'b7'), 'EACCES'],
      [g6, rd('/shared/r7'), 'EACCES'],
    ]);
  });

  it('w7 lets 7 write but not read', () => {
    run(W, [
      [g7, rd('/shared/w7'), 'EACCES'],
      [g7, ls('/shared/w7'), 'EACCES'],
      [g7, gp('/shared/w7'), 'EACCES'],
      [g7, wr('/shared/w7', 'x'), 'OK'],
      [g7, mk('/shared/w7/sub'), 'OK'],
      [g7, rd('/shared/w7/sub'), val('')], // 7 owns what it created
      [g7, sp('/shared/w7', 'n0'), 'EACCES'], // not the owner
      [g6, wr('/shared/w7', 'x'), 'EACCES'],
      [DOM0, rd('/shared/w7'), val('x')],
      [g7, rm('/shared/w7'), 'OK'],
      [DOM0, rd('/shared/w7'), 'ENOENT'],
    ]);
  });

  it('b7 lets 7 read and write but not set permissions', () => {
    run(W, [
      [g7, rd('/shared/b7'), val('B')],
      [g7, wr('/shared/b7', 'x'), 'OK'],
      [g7, rd('/shared/b7'), val('x')],
      [g7, sp('/shared/b7', 'n0', 'b7'), 'EACCES'],
      [g6, rd('/shared/b7'), 'EACCES'],
      [g6, wr('/shared/b7', 'y'), 'EACCES'],
    ]);
  });

  it('entry 0 letter applies to everyone else: r0 is world-readable', () => {
    run(W, [
      [g5, rd('/shared/pub'), val('P')],
      [g6, rd('/shared/pub'), val('P')],
      [g5, wr('/shared/pub', 'x'), 'EACCES'],
    ]);
  });

  it('no traversal check: a readable node under an unreadable parent is readable', () => {
    run(W, [
      [g7, ls('/shared'), 'EACCES'],
      [g7, rd('/shared/r7'), val('R')],
    ]);
  });

  it('unprivileged operations on / are EACCES (XSA-353), RM / is EINVAL', () => {
    run(W, [
      [g5, rd('/'), 'EACCES'],
      [g5, ls('/'), 'EACCES'],
      [g5, gp('/'), 'EACCES'],
      [g5, wr('/', 'x'), 'EACCES'],
      [g5, mk('/'), 'EACCES'],
      [g5, sp('/', 'b5'), 'EACCES'],
      [g5, sp('/', 'n0', 'b5'), 'EACCES'],
      [g5, wr('/newtop', 'x'), 'EACCES'],
      [g5, rm('/'), 'EINVAL'],
      [DOM0, rm('/'), 'EINVAL'],
    ]);
  });

  it('SET_TARGET: a stub domain acts for its target', () => {
    const stub = guest(9, 5);
    run(W, [
      [stub, rd('/local/domain/5/n5'), val('five')],
      [stub, wr('/local/domain/5/n5', 'dm'), 'OK'],
      [stub, sp('/local/domain/5/n5', 'n5', 'r9'), 'OK'],
      [stub, sp('/local/domain/5/n5', 'n9'), 'EPERM'],
      [stub, rd('/local/domain/6'), 'EACCES'],
      [stub, wr('/local/domain/5/dm/x', '1'), 'OK'],
      [DOM0, gp('/local/domain/5/dm/x'), perms('n9')], // the stub itself is the creator
      [g5, rd('/local/domain/5/dm/x'), 'EACCES'], // and the target has no rights on it
    ]);
  });

  it('missing node: EACCES when the nearest existing ancestor lacks the access, else ENOENT', () => {
    run(W, [
      [g6, rd('/local/domain/5/missing'), 'EACCES'],
      [g6, rd('/local/domain/5/missing/deeper'), 'EACCES'],
      [g6, ls('/local/domain/5/missing'), 'EACCES'],
      [g6, gp('/local/domain/5/missing'), 'EACCES'],
      [g6, sp('/local/domain/5/missing', 'n6'), 'EACCES'],
      [g5, rd('/local/domain/5/missing'), 'ENOENT'],
      [g5, sp('/local/domain/5/missing', 'n5'), 'ENOENT'],
      [g7, rd('/shared/r7/missing'), 'ENOENT'], // r7 grants read on the ancestor
      [g7, rd('/shared/w7/missing'), 'EACCES'], // w7 does not
      [g7, sp('/shared/w7/missing', 'n7'), 'ENOENT'], // set-perms asks for write
      [g7, sp('/shared/r7/missing', 'n7'), 'EACCES'],
    ]);
  });
});

describe('changes and identity', () => {
  const changesOf = (s: Store, c: Caller, req: StoreRequest): readonly Change[] => ok(s, c, req).changes;

  it('WRITE reports one set for the path, none for the implicit parents', () => {
    expect(changesOf(W, DOM0, wr('/x/y/z', '1'))).toEqual([{ path: '/x/y/z', kind: 'set' }]);
    expect(changesOf(W, g5, wr('a/b', '1'))).toEqual([{ path: '/local/domain/5/a/b', kind: 'set' }]);
  });

  it('writing the same value twice returns the SAME store but still reports a change', () => {
    const s1 = ok(W, DOM0, wr('/shared/none', 'N'));
    expect(s1.store).toBe(W);
    expect(s1.changes).toEqual([{ path: '/shared/none', kind: 'set' }]);
    const a = ok(W, g5, wr('n5', 'same'));
    const b = ok(a.store, g5, wr('n5', 'same'));
    expect(a.store).not.toBe(W);
    expect(b.store).toBe(a.store);
    expect(b.changes).toEqual([{ path: '/local/domain/5/n5', kind: 'set' }]);
    expect(advance(b.store, a.store)).toBe(a.store);
  });

  it('MKDIR of an existing node returns the same store and no change', () => {
    const out = ok(W, DOM0, mk('/shared/r7'));
    expect(out.store).toBe(W);
    expect(out.changes).toEqual([]);
    expect(out.reply).toEqual({ kind: 'ok' });
    const g = ok(W, g5, mk('n5'));
    expect(g.store).toBe(W);
    expect(g.changes).toEqual([]);
  });

  it('MKDIR of a new node reports one set', () => {
    const out = ok(W, DOM0, mk('/m/n'));
    expect(out.changes).toEqual([{ path: '/m/n', kind: 'set' }]);
    expect(lookup(out.store.root, ['m', 'n'])?.value).toBe('');
  });

  it('RM of a missing node with an existing parent is OK, same store, no change', () => {
    const out = ok(W, DOM0, rm('/shared/nothing'));
    expect(out.store).toBe(W);
    expect(out.changes).toEqual([]);
    const g = ok(W, g5, rm('nothing'));
    expect(g.store).toBe(W);
  });

  it('RM reports one remove for the top of the subtree and drops it all', () => {
    const s = apply(W, DOM0, wr('/t/a/b', '1'), wr('/t/a/c', '2'));
    const out = ok(s, DOM0, rm('/t/a'));
    expect(out.changes).toEqual([{ path: '/t/a', kind: 'remove' }]);
    expect(lookup(out.store.root, ['t'])?.childNames()).toEqual([]);
  });

  it('RM with a missing parent is ENOENT, RM / is EINVAL', () => {
    run(W, [
      [DOM0, rm('/nothing/here'), 'ENOENT'],
      [DOM0, rm('/shared/nothing/here'), 'ENOENT'],
      [g5, rm('nothing/here'), 'ENOENT'],
      [DOM0, rm('/'), 'EINVAL'],
    ]);
  });

  it('RM of a missing node needs write on the nearest existing ancestor', () => {
    run(W, [
      [g6, rm('/local/domain/5/nothing'), 'EACCES'],
      [g6, rm('/local/domain/5/nothing/here'), 'EACCES'],
      [g7, rm('/shared/w7/nothing'), 'OK'],
      [g7, rm('/shared/r7/nothing'), 'EACCES'],
    ]);
  });

  it('RM needs write on the node itself, not on its parent', () => {
    run(W, [
      [DOM0, wr('/shared/w7/kid', 'k'), 'OK'], // dom0-owned (inherits n0 w7)
      [DOM0, sp('/shared/w7/kid', 'n0'), 'OK'],
      [g7, rm('/shared/w7/kid'), 'EACCES'],
      [DOM0, wr('/shared/r7/kid', 'k'), 'OK'],
      [DOM0, sp('/shared/r7/kid', 'n0', 'w7'), 'OK'],
      [g7, rm('/shared/r7/kid'), 'OK'],
      [DOM0, ls('/shared/r7'), names()],
    ]);
  });

  it('SET_PERMS reports a set, same store when the list is equal by value', () => {
    const out = ok(W, DOM0, sp('/shared/r7', 'n0', 'r7'));
    expect(out.store).toBe(W);
    expect(out.changes).toEqual([{ path: '/shared/r7', kind: 'set' }]);
    const changed = ok(W, DOM0, sp('/shared/r7', 'n0', 'b7'));
    expect(changed.store).not.toBe(W);
    expect(changed.changes).toEqual([{ path: '/shared/r7', kind: 'set' }]);
  });

  it('reading operations never change the store', () => {
    for (const req of [rd('/shared/r7'), ls('/shared'), gp('/shared'), gp('@releaseDomain')]) {
      const out = ok(W, DOM0, req);
      expect(out.store).toBe(W);
      expect(out.changes).toEqual([]);
    }
  });

  it('execute never changes the generation; advance does, by one, only on change', () => {
    const out = ok(W, DOM0, wr('/g', '1'));
    expect(out.store.generation).toBe(W.generation);
    expect(advance(out.store, W).generation).toBe(W.generation + 1);
    expect(advance(ok(W, DOM0, rd('/shared')).store, W)).toBe(W);
  });
});

describe('DIRECTORY', () => {
  it('lists children sorted by byte order, whatever the creation order', () => {
    run(createStore(), [
      [DOM0, wr('/d/b', ''), 'OK'],
      [DOM0, wr('/d/a', ''), 'OK'],
      [DOM0, wr('/d/B', ''), 'OK'],
      [DOM0, wr('/d/_', ''), 'OK'],
      [DOM0, wr('/d/10', ''), 'OK'],
      [DOM0, wr('/d/9', ''), 'OK'],
      [DOM0, wr('/d/-', ''), 'OK'],
      [DOM0, wr('/d/@', ''), 'OK'],
      [DOM0, ls('/d'), names('-', '10', '9', '@', 'B', '_', 'a', 'b')],
      [DOM0, rm('/d/9'), 'OK'],
      [DOM0, ls('/d'), names('-', '10', '@', 'B', '_', 'a', 'b')],
      [DOM0, ls('/d/a'), names()],
    ]);
  });
});

describe('SET_PERMS / GET_PERMS', () => {
  it('the owner may change its ACL; only the privileged may change the owner (XSA-352)', () => {
    run(W, [
      [g5, sp('n5', 'r5', 'b6'), 'OK'],
      [g5, gp('n5'), perms('r5', 'b6')],
      [g6, rd('/local/domain/5/n5'), val('five')],
      [g5, sp('n5', 'n6'), 'EPERM'],
      [g5, sp('n5', 'n0'), 'EPERM'],
      [g5, gp('n5'), perms('r5', 'b6')],
      [DOM0, sp('/local/domain/5/n5', 'n6'), 'OK'],
      [g5, rd('n5'), 'EACCES'],
      [g6, rd('/local/domain/5/n5'), val('five')],
    ]);
  });

  it('more than 5 entries is ENOSPC for a guest, fine for dom0', () => {
    run(W, [
      [g5, sp('n5', 'n5', 'r1', 'r2', 'r3', 'r4'), 'OK'],
      [g5, sp('n5', 'n5', 'r1', 'r2', 'r3', 'r4', 'r6'), 'ENOSPC'],
      [g5, gp('n5'), perms('n5', 'r1', 'r2', 'r3', 'r4')],
      [DOM0, sp('/local/domain/5/n5', 'n5', 'r1', 'r2', 'r3', 'r4', 'r6', 'r7'), 'OK'],
      [g5, gp('n5'), perms('n5', 'r1', 'r2', 'r3', 'r4', 'r6', 'r7')],
    ]);
  });

  it('bad permission lists are EINVAL', () => {
    run(W, [
      [DOM0, sp('/shared'), 'EINVAL'],
      [DOM0, sp('/shared', 'x1'), 'EINVAL'],
      [DOM0, sp('/shared', 'r'), 'EINVAL'],
      [DOM0, sp('/shared', 'r-1'), 'EINVAL'],
      [DOM0, sp('/shared', 'r65536'), 'EINVAL'],
      [DOM0, sp('/shared', 'r0x10'), 'EINVAL'],
      [g5, sp('n5', 'n5', 'bogus'), 'EINVAL'],
      [DOM0, gp('/shared'), perms('n0')],
    ]);
  });

  it('on @releaseDomain / @introduceDomain: dom0 sets them, guests need the rights', () => {
    run(W, [
      [DOM0, gp('@releaseDomain'), perms('n0')],
      [DOM0, gp('@introduceDomain'), perms('n0')],
      [g5, gp('@releaseDomain'), 'EACCES'],
      [g5, sp('@releaseDomain', 'n0', 'r5'), 'EACCES'],
      [DOM0, sp('@releaseDomain', 'n0', 'r5'), 'OK'],
      [DOM0, gp('@releaseDomain'), perms('n0', 'r5')],
      [DOM0, gp('@introduceDomain'), perms('n0')],
      [g5, gp('@releaseDomain'), perms('n0', 'r5')],
      [g5, sp('@releaseDomain', 'n0', 'b5'), 'EACCES'], // read is not owner
      [g6, gp('@releaseDomain'), 'EACCES'],
      [DOM0, sp('@introduceDomain', 'n5'), 'OK'],
      [g5, sp('@introduceDomain', 'n5', 'r6'), 'OK'], // 5 owns it now
      [g5, sp('@introduceDomain', 'n6'), 'EPERM'],
      [g6, gp('@introduceDomain'), perms('n5', 'r6')],
    ]);
  });

  it('special permissions change the store but neither the tree nor the quota', () => {
    const out = ok(W, DOM0, sp('@releaseDomain', 'n0', 'r5'));
    expect(out.store.root).toBe(W.root);
    expect(out.store.quota).toBe(W.quota);
    expect(out.store.special['@introduceDomain']).toBe(W.special['@introduceDomain']);
    expect(formatPerms(out.store.special['@releaseDomain'])).toEqual(['n0', 'r5']);
    expect(out.changes).toEqual([{ path: '@releaseDomain', kind: 'set' }]);
    expect(ok(W, DOM0, sp('@releaseDomain', 'n0')).store).toBe(W);
  });

  it('other @ names are EINVAL, for get-perms and set-perms, from anyone', () => {
    run(W, [
      [DOM0, sp('@other', 'n0'), 'EINVAL'],
      [DOM0, gp('@other'), 'EINVAL'],
      [DOM0, sp('@', 'n0'), 'EINVAL'],
      [g5, sp('@releasedomain', 'n0'), 'EINVAL'],
      [g5, gp('@releaseDomain/x'), 'EINVAL'],
    ]);
  });
});

describe('quotas', () => {
  /** W plus `n` nodes owned by 5 in its home (so 5 owns home + n5 + n + 1 for /local/domain/5/f). */
  function fill(s: Store, domid: number, total: number): Store {
    const c = guest(domid);
    let i = 0;
    const subdirs = new Set<number>();
    const dir = `/local/domain/${domid}/f`;
    s = apply(s, c, mk(dir));
    // One node per step. A directory's child names count against the node size (2048 bytes, as
    // cxenstored's record), so past 400 names the nodes go into subdirectories of 300.
    while (owned(s.quota, domid) < total) {
      const j = i - 400;
      if (j >= 0 && j % 300 === 0 && !subdirs.has(j)) {
        subdirs.add(j);
        s = apply(s, c, mk(`${dir}/s${j / 300}`));
        continue;
      }
      s = apply(s, c, wr(j < 0 ? `${dir}/${i}` : `${dir}/s${Math.floor(j / 300)}/${i}`, ''));
      i++;
    }
    expect(owned(s.quota, domid)).toBe(total);
    return s;
  }

  it("a guest's 1001st node is ENOSPC; freeing one makes room again", () => {
    const s = fill(W, 5, 1000);
    run(s, [
      [g5, wr('f/extra', 'x'), 'ENOSPC'],
      [g5, mk('f/extra'), 'ENOSPC'],
      [g5, wr('f/0', 'existing nodes may still be written'), 'OK'],
      [g5, rm('f/0'), 'OK'],
      [g5, wr('f/extra', 'x'), 'OK'],
      [g5, wr('f/extra2', 'x'), 'ENOSPC'],
      [g6, wr('other', 'x'), 'OK'], // other domains are not affected
      [DOM0, wr('/local/domain/5/f/by-dom0', 'x'), 'OK'], // dom0 is exempt, 5 is charged
    ]);
  });

  it('a single write creating several parents counts every one of them', () => {
    const s = fill(W, 5, 997);
    run(s, [
      [g5, wr('p/q/r/s', 'x'), 'ENOSPC'], // 4 new nodes: 1001
      [g5, mk('p/q/r/s'), 'ENOSPC'],
      [g5, rd('p'), 'ENOENT'], // nothing half-created
      [g5, wr('p/q/r', 'x'), 'OK'], // 3 new nodes: exactly 1000
      [g5, wr('p/q/z', 'x'), 'ENOSPC'],
    ]);
  });

  it('the limit is the configured one', () => {
    const limits: Limits = { ...DEFAULT_LIMITS, nodes: 4 };
    // 5 owns /local/domain/5 and /local/domain/5/n5 already.
    run(
      W,
      [
        [g5, wr('a/b', ''), 'OK'],
        [g5, wr('c', ''), 'ENOSPC'],
        [g5, rm('a'), 'OK'],
        [g5, wr('c/d', ''), 'OK'],
      ],
      limits,
    );
  });

  it('value size: E2BIG for guests beyond valueSize, dom0 exempt', () => {
    const max = 'v'.repeat(DEFAULT_LIMITS.valueSize);
    const over = `${max}v`;
    run(W, [
      [g5, wr('big', max), 'OK'],
      [g5, wr('big', over), 'E2BIG'],
      [g5, wr('new-big', over), 'E2BIG'],
      [g5, rd('new-big'), 'ENOENT'],
      [g5, rd('big'), val(max)],
      [g7, wr('/shared/w7', over), 'E2BIG'],
      [DOM0, wr('/local/domain/5/big', over), 'OK'],
      [DOM0, wr('/dom0-big', 'x'.repeat(100_000)), 'OK'],
      [g5, rd('big'), val(over)],
    ]);
  });

  it('permission is checked before the value size', () => {
    run(W, [[g6, wr('/local/domain/5/n5', 'x'.repeat(5000)), 'EACCES']]);
  });

  it('quota moves with an owner change and goes away with RM', () => {
    const s = apply(W, DOM0, wr('/q/a', ''), wr('/q/b', ''));
    const q5 = owned(s.quota, 5);
    const q0 = owned(s.quota, 0);
    const t = apply(s, DOM0, sp('/q/a', 'n5'));
    expect(owned(t.quota, 5)).toBe(q5 + 1);
    expect(owned(t.quota, 0)).toBe(q0 - 1);
    const u = apply(t, g5, wr('/q/a/x/y', ''));
    expect(owned(u.quota, 5)).toBe(q5 + 3);
    const v = apply(u, DOM0, rm('/q'));
    expect(owned(v.quota, 5)).toBe(q5);
    expect(owned(v.quota, 0)).toBe(q0 - 3); // /q/a went to 5; /q and /q/b went with RM
    checkQuota(v);
  });

  it('a domain with no nodes left has no quota entry', () => {
    const s = apply(W, DOM0, wr('/lone', ''), sp('/lone', 'n42'));
    expect(s.quota.get(42)).toBe(1);
    const t = apply(s, DOM0, rm('/lone'));
    expect(t.quota.has(42)).toBe(false);
  });
});

describe('deep trees (XSA-418)', () => {
  it('a path of ~1000 components can be written, read, listed and removed', () => {
    const deep = `/${Array.from({ length: 1023 }, () => 'a').join('/')}`; // 2046 bytes
    expect(deep.length).toBeLessThanOrEqual(DEFAULT_LIMITS.pathMax);
    const s = run(W, [
      [DOM0, wr(deep, 'bottom'), 'OK'],
      [DOM0, rd(deep), val('bottom')],
      [DOM0, ls(deep.slice(0, -2)), names('a')],
      [DOM0, wr(`${deep}/b`, 'x'), 'OK'], // exactly 2048 bytes
      [DOM0, rm(`${deep}/b`), 'OK'],
      [DOM0, wr(`${deep}/bc`, 'x'), 'EINVAL'], // 2049 bytes: over the limit
    ]);
    expect(owned(s.quota, 0)).toBe(owned(W.quota, 0) + 1023);
    const t = run(s, [
      [DOM0, rm('/a'), 'OK'],
      [DOM0, rd(deep), 'ENOENT'],
    ]);
    expect(t.quota).toEqual(W.quota);
  });
});

describe('read-only connections', () => {
  it('get EACCES on every update, privileged or not, and may still read', () => {
    const rows: Row[] = [];
    for (const c of [ro(DOM0), ro(g5)]) {
      const home = '/local/domain/5';
      rows.push(
        [c, wr(`${home}/n5`, 'x'), 'EACCES'],
        [c, wr(`${home}/new`, 'x'), 'EACCES'],
        [c, wr(`${home}/new/deep`, 'x'), 'EACCES'],
        [c, mk(`${home}/n5`), 'EACCES'],
        [c, mk(`${home}/new`), 'EACCES'],
        [c, rm(`${home}/n5`), 'EACCES'],
        [c, rm(`${home}/missing`), 'EACCES'],
        [c, sp(`${home}/n5`, 'n5'), 'EACCES'],
        [c, rd(`${home}/n5`), val('five')],
        [c, ls(home), names('n5')],
        [c, gp(`${home}/n5`), perms('n5')],
      );
    }
    rows.push([ro(DOM0), sp('@releaseDomain', 'n0'), 'EACCES'], [ro(DOM0), gp('@releaseDomain'), perms('n0')]);
    run(W, rows);
  });
});

describe('child names count against the node size (issue 18, cxenstored childlen)', () => {
  const name = (i: number): string => `${'x'.repeat(1000)}${i}`;

  it("a guest cannot grow a node's value and child names past 2048 bytes; dom0 can", () => {
    let s = apply(W, g5, mk('/local/domain/5/big'));
    // The first child is let in whatever its length (any valid path can be made), the second
    // 1002-byte name crosses 2048 with it.
    s = run(s, [
      [g5, wr(`/local/domain/5/big/${name(0)}`, ''), 'OK'],
      [g5, wr(`/local/domain/5/big/${name(1)}`, ''), 'OK'],
      [g5, wr(`/local/domain/5/big/${name(2)}`, ''), 'ENOSPC'],
      [g5, mk(`/local/domain/5/big/${name(2)}`), 'ENOSPC'],
      [g5, wr('/local/domain/5/big/short', ''), 'OK'],
      // The node's own value must fit beside its child names too.
      [g5, wr('/local/domain/5/big', 'v'.repeat(100)), 'ENOSPC'],
      [g5, wr('/local/domain/5/big', 'v'.repeat(30)), 'OK'],
      [DOM0, wr(`/local/domain/5/big/${name(3)}`, ''), 'OK'],
    ]);
    const big = lookup(s.root, ['local', 'domain', '5', 'big'])!;
    expect(big.childBytes).toBe(2 * 1002 + 1002 + 'short'.length + 1);
    // Removing a child gives its bytes back.
    s = run(s, [
      [g5, rm(`/local/domain/5/big/${name(1)}`), 'OK'],
      [g5, rm(`/local/domain/5/big/${name(3)}`), 'OK'],
      [g5, wr(`/local/domain/5/big/${name(2)}`, ''), 'OK'],
    ]);
    expect(lookup(s.root, ['local', 'domain', '5', 'big'])!.childBytes).toBe(2 * 1002 + 6);
  });

  it('a listing is made once per node version and kept on the node', () => {
    const s = apply(W, DOM0, wr('/l/b', ''), wr('/l/a', ''));
    const node = lookup(s.root, ['l'])!;
    const first = node.childNames();
    expect(first).toEqual(['a', 'b']);
    expect(node.childNames()).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    const next = lookup(apply(s, DOM0, wr('/l/c', '')).root, ['l'])!;
    expect(next.childNames()).toEqual(['a', 'b', 'c']);
    expect(next.childNames()).not.toBe(first);
  });
});
