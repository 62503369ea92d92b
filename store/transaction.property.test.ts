import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DOM0, guest, type Caller } from './caller.js';
import { XsError } from '../protocol/index.js';
import { DEFAULT_LIMITS, type Limits } from './limits.js';
import type { XsNode } from './node.js';
import { forgetDomain } from './domain-cleanup.js';
import { execute } from './operations.js';
import { formatPerms } from './perms.js';
import { isUpdate, type Change, type StoreReply, type StoreRequest } from './request.js';
import { advance, createStore, type Store } from './store.js';
import { countOwners } from './subtree.js';
import { Transaction, commit } from './transaction.js';

/*
 * Transactions against a serial oracle. A test holds the live store; K transactions and some plain
 * updates run interleaved, one step at a time. The oracle is plain sequential `execute`: what a
 * transaction does must be what its requests do when run alone, at its start (for what it sees
 * while open, and for read-only commits) and at its commit point (for commits that install).
 *
 * The universe is tiny on purpose (a few paths, three values, a guest with a 5-node quota and
 * 1-byte values) so that conflicts, quota errors and permission errors are frequent.
 */

// ---------------------------------------------------------------------------------------------
// The model

const LIMITS: Limits = { ...DEFAULT_LIMITS, nodes: 5, valueSize: 1, permissions: 2, transactionOps: 6 };

const CALLERS: readonly Caller[] = [DOM0, guest(5), guest(6)];

/**
 * Paths grouped by disjoint subtrees, so that transactions often stay inside one or a few of them
 * (and what they observe is untouched by updates elsewhere: merge), or not (replay, conflicts).
 */
const GROUPS: readonly (readonly string[])[] = [
  ['/a', '/a/b', '/a/c', '/a/b/f', '/a/c/m'],
  ['/d', '/d/e', '/d/e/g'],
  ['/local/domain/5/h', '/local/domain/5/h/i', '/local/domain/5/k', 'h/j'],
];
const ALL_PATHS: readonly string[] = [...GROUPS.flat(), '/', '@releaseDomain'];

const VALUES = ['', 'x', 'xy'] as const; // 'xy' is over the guests' value size
const PERMS: readonly (readonly string[])[] = [
  ['n0'],
  ['r0'],
  ['n0', 'b5'],
  ['n5'],
  ['n5', 'b6'],
  ['b0'],
  ['n6'],
  ['n0', 'r5', 'w6'], // 3 entries: ENOSPC for guests
];

function initial(): Store {
  let s = createStore();
  const put = (req: StoreRequest) => {
    s = advance(execute(s, DOM0, LIMITS, req).store, s);
  };
  put({ op: 'write', path: '/a/b', value: 'x' });
  put({ op: 'set-perms', path: '/a', perms: ['n0', 'b5'] });
  put({ op: 'set-perms', path: '/a/b', perms: ['n0', 'b5'] });
  put({ op: 'write', path: '/d/e', value: '' });
  put({ op: 'set-perms', path: '/d', perms: ['r0'] });
  put({ op: 'mkdir', path: '/local/domain/6' });
  put({ op: 'set-perms', path: '/local/domain/6', perms: ['n6'] });
  put({ op: 'write', path: '/local/domain/5/h', value: 'x' });
  put({ op: 'set-perms', path: '/local/domain/5', perms: ['n5'] });
  put({ op: 'set-perms', path: '/local/domain/5/h', perms: ['n5', 'b6'] });
  return s;
}

const INITIAL = initial();

function requestArb(paths: fc.Arbitrary<string>): fc.Arbitrary<StoreRequest> {
  return fc.oneof(
    { weight: 3, arbitrary: paths.map((path): StoreRequest => ({ op: 'read', path })) },
    { weight: 2, arbitrary: paths.map((path): StoreRequest => ({ op: 'directory', path })) },
    { weight: 1, arbitrary: paths.map((path): StoreRequest => ({ op: 'get-perms', path })) },
    {
      weight: 4,
      arbitrary: fc
        .tuple(paths, fc.constantFrom(...VALUES))
        .map(([path, value]): StoreRequest => ({ op: 'write', path, value })),
    },
    { weight: 1, arbitrary: paths.map((path): StoreRequest => ({ op: 'mkdir', path })) },
    { weight: 2, arbitrary: paths.map((path): StoreRequest => ({ op: 'rm', path })) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(paths, fc.constantFrom(...PERMS))
        .map(([path, perms]): StoreRequest => ({ op: 'set-perms', path, perms })),
    },
  );
}

/** Indices of one or more groups: a transaction over several disjoint subtrees. */
const groupSet: fc.Arbitrary<number[]> = fc.subarray(
  GROUPS.map((_, i) => i),
  { minLength: 1, maxLength: 2 },
);

const pathsOf = (groups: readonly number[]): string[] => groups.flatMap((i) => GROUPS[i]!);

/**
 * Paths of one or two groups most of the time (with a special name now and then: the special
 * permissions are outside the tree), any path sometimes.
 */
const txPaths: fc.Arbitrary<fc.Arbitrary<string>> = fc.oneof(
  {
    weight: 3,
    arbitrary: groupSet.map((gs) =>
      fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...pathsOf(gs)) }, { weight: 1, arbitrary: fc.constant('@releaseDomain') }),
    ),
  },
  { weight: 1, arbitrary: fc.constant(fc.constantFrom(...ALL_PATHS)) },
);

interface TxSpec {
  readonly caller: Caller;
  readonly reqs: readonly StoreRequest[];
}

/** Guest 5 most often: it is the one with a quota to run out of and ACLs to use. */
const txCaller: fc.Arbitrary<Caller> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(DOM0) },
  { weight: 3, arbitrary: fc.constant(guest(5)) },
  { weight: 1, arbitrary: fc.constant(guest(6)) },
);

const txSpecArb: fc.Arbitrary<TxSpec> = fc.record({
  caller: txCaller,
  reqs: txPaths.chain((paths) => fc.array(requestArb(paths), { minLength: 0, maxLength: 7 })),
});

/** Nodes only plain updates touch: guest 5 spends or frees its quota there, outside any group. */
const QUOTA_PATHS = ['/local/domain/5/q', '/local/domain/5/q/r', '/local/domain/5/s'] as const;

/** A plain update, or the release of a domain (`forgetDomain`), between transaction steps. */
type PlainStep = { readonly caller: Caller; readonly req: StoreRequest } | { readonly forget: number };

/**
 * Plain updates: anything, plus kinds aimed at what a transaction depends on besides its subtree:
 * the special permissions (dom0 changing them), guest 5's node count, and domain release (which
 * removes nodes, strips ACL entries everywhere and resets a count).
 */
const plainArb: fc.Arbitrary<PlainStep> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      caller: fc.constantFrom(...CALLERS),
      req: requestArb(fc.constantFrom(...ALL_PATHS)).filter((r) => isUpdate(r.op)),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      caller: fc.constant(DOM0),
      req: fc.constantFrom(...PERMS).map((perms): StoreRequest => ({ op: 'set-perms', path: '@releaseDomain', perms })),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      caller: fc.constant(guest(5)),
      req: fc.oneof(
        fc.constantFrom(...QUOTA_PATHS).map((path): StoreRequest => ({ op: 'write', path, value: 'x' })),
        fc.constantFrom(...QUOTA_PATHS).map((path): StoreRequest => ({ op: 'rm', path })),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.constantFrom(5, 6).map((forget) => ({ forget })) },
);

interface Program {
  readonly txs: readonly TxSpec[];
  readonly plain: readonly PlainStep[];
  /** Each entry picks who moves next: transaction `i % (K + 1)`, or a plain update when `K`. */
  readonly schedule: readonly number[];
}

const programArb: fc.Arbitrary<Program> = fc.record({
  txs: fc.array(txSpecArb, { minLength: 1, maxLength: 4 }),
  plain: fc.array(plainArb, { maxLength: 8 }),
  schedule: fc.array(fc.nat(), { maxLength: 40 }),
});

/**
 * Transaction 0 over one or two groups (only their paths: no root, no special name); every other
 * transaction and every plain update over the remaining groups, as any caller.
 */
const disjointProgramArb: fc.Arbitrary<Program> = fc
  .tuple(
    fc.shuffledSubarray(
      GROUPS.map((_, i) => i),
      { minLength: 2, maxLength: GROUPS.length },
    ),
    fc.nat(),
  )
  .chain(([order, cut]) => {
    const mine = order.slice(0, 1 + (cut % (order.length - 1)));
    const others = pathsOf(order.slice(mine.length));
    const otherPath = fc.constantFrom(...others);
    const spec = (paths: readonly string[]): fc.Arbitrary<TxSpec> =>
      fc.record({ caller: txCaller, reqs: fc.array(requestArb(fc.constantFrom(...paths)), { minLength: 1, maxLength: 6 }) });
    return fc.record({
      txs: fc.tuple(spec(pathsOf(mine)), fc.array(spec(others), { maxLength: 2 })).map(([t0, rest]) => [t0, ...rest]),
      plain: fc.array(
        fc.record({ caller: fc.constantFrom(...CALLERS), req: requestArb(otherPath).filter((r) => isUpdate(r.op)) }),
        { maxLength: 8 },
      ),
      schedule: fc.array(fc.nat(), { maxLength: 40 }),
    });
  });

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * A reply or error as one comparable string. Anything thrown that is not an XsError propagates and
 * fails the property: (f) no untyped exception escapes the store, the commit included.
 */
function attempt(fn: () => StoreReply): string {
  try {
    const r = fn();
    return r.kind === 'perms' ? `perms:${formatPerms(r.perms).join(',')}` : JSON.stringify(r);
  } catch (e) {
    if (!(e instanceof XsError)) throw e;
    return `error:${e.code}`;
  }
}

interface Dump {
  v: string;
  p: string;
  c: Record<string, Dump>;
}

/** The tree by value: values, permissions, children (recursion is fine on this tiny tree). */
function dumpNode(n: XsNode): Dump {
  return {
    v: n.value,
    p: formatPerms(n.perms).join(','),
    c: Object.fromEntries(n.childNames().map((k) => [k, dumpNode(n.children.get(k)!)])),
  };
}

/** The whole store by value (tree, quota, special permissions), without the generation. */
function dump(s: Store) {
  return {
    tree: dumpNode(s.root),
    quota: [...s.quota].sort(([a], [b]) => a - b),
    special: Object.fromEntries(Object.entries(s.special).map(([k, p]) => [k, formatPerms(p).join(',')])),
  };
}

function checkQuota(s: Store): void {
  const counted = [...countOwners(s.root)].sort(([a], [b]) => a - b);
  expect([...s.quota].sort(([a], [b]) => a - b)).toEqual(counted);
}

interface Serial {
  replies: string[];
  store: Store;
  /** The watch events: one per path, in first-touch order, with the last kind (spec §8.7). */
  changes: Change[];
}

/** The oracle: the requests run alone, in order, on `s`. */
function serial(s: Store, caller: Caller, reqs: readonly StoreRequest[]): Serial {
  const replies: string[] = [];
  const changes: Change[] = [];
  for (const req of reqs) {
    replies.push(
      attempt(() => {
        const out = execute(s, caller, LIMITS, req);
        s = out.store;
        for (const c of out.changes) {
          const i = changes.findIndex((x) => x.path === c.path);
          if (i < 0) changes.push(c);
          else changes[i] = c;
        }
        return out.reply;
      }),
    );
  }
  return { replies, store: s, changes };
}

// ---------------------------------------------------------------------------------------------
// The run

const tally = { 'read-only': 0, fast: 0, merge: 0, replay: 0, conflict: 0, failed: 0, forgets: 0, steps: 0, strict: 0 };

interface Open {
  readonly spec: TxSpec;
  tx?: Transaction;
  next: number;
  done: boolean;
  /** The reply of every request, in order. */
  readonly seen: string[];
  /** Reads since the last update request, for the repeatable-read check. */
  readonly reads: Map<string, string>;
}

/**
 * `strict`: transaction 0 works on subtrees no other transaction or plain update touches, so
 * nothing it observed can change, and it must commit without replay unless it depends on what the
 * store keeps outside the tree (its own node count, the special permissions).
 */
function runProgram(p: Program, strict = false): void {
  let live = INITIAL;
  const open: Open[] = p.txs.map((spec) => ({ spec, next: 0, done: false, seen: [], reads: new Map() }));
  let plainNext = 0;
  const K = open.length;

  const step = (who: number): void => {
    tally.steps++;
    if (who === K) {
      const op = p.plain[plainNext++];
      if (op === undefined) return;
      if ('forget' in op) {
        live = advance(forgetDomain(live, op.forget).store, live);
        tally.forgets++;
      } else {
        attempt(() => {
          const out = execute(live, op.caller, LIMITS, op.req);
          live = advance(out.store, live);
          return out.reply;
        });
      }
    } else {
      const o = open[who]!;
      if (o.done) return;
      if (o.tx === undefined) o.tx = new Transaction(live, o.spec.caller, LIMITS);
      else if (o.next < o.spec.reqs.length) txRequest(o);
      else live = finish(o, live, strict && who === 0);
    }
    checkQuota(live); // (e)
  };

  for (const i of p.schedule) step(i % (K + 1));
  for (let i = 0; i < K; i++) {
    while (!open[i]!.done) step(i);
  }
}

function txRequest(o: Open): void {
  const req = o.spec.reqs[o.next++]!;
  const tx = o.tx!;
  const reply = attempt(() => tx.execute(req));
  o.seen.push(reply);
  checkQuota(tx.store);
  // (d) repeatable reads: the same read with no update in between gives the same reply (until
  // the transaction fails for good on its request limit, after which everything is ENOSPC).
  if (isUpdate(req.op) || tx.failed !== undefined) o.reads.clear();
  else {
    const key = `${req.op} ${req.path}`;
    const before = o.reads.get(key);
    if (before !== undefined) expect(reply, `repeated ${key}`).toBe(before);
    o.reads.set(key, reply);
  }
}

/**
 * The groups /a and /d share their parent, /. A guest's creation whose deepest existing ancestor
 * is / observes /'s child names (they count against the node size, operations.ts `checkRecord`),
 * so another group's creation or removal there is a real change to what it saw: its commit may
 * replay (and then succeeds, or answers EAGAIN only when a reply would differ).
 */
function rootNamesSeen(caller: Caller, reqs: readonly StoreRequest[], live: Store, base: Store): boolean {
  if (caller.privileged) return false;
  const creates = reqs.some((r) => (r.op === 'write' || r.op === 'mkdir') && /^\/[ad](\/|$)/.test(r.path));
  const names = (s: Store) => [...s.root.children.keys()].sort().join('/');
  return creates && names(live) !== names(base);
}

/** Commits `o` against `live`, checks the outcome against the oracle, returns the next live store. */
function finish(o: Open, live: Store, strict: boolean): Store {
  o.done = true;
  const tx = o.tx!;
  const { caller, reqs } = o.spec;
  const limitHit = !caller.privileged && reqs.length > LIMITS.transactionOps;
  const counted = limitHit ? LIMITS.transactionOps : reqs.length;

  // What the transaction saw while open is the oracle run alone on its start version (isolation).
  const atStart = serial(tx.base, caller, reqs.slice(0, counted));
  expect(o.seen.slice(0, counted)).toEqual(atStart.replies);
  expect(o.seen.slice(counted)).toEqual(reqs.slice(counted).map(() => 'error:ENOSPC'));
  expect(dump(tx.store)).toEqual(dump(atStart.store));

  const before = dump(live);
  const globals = tx.dependsOnGlobals(live);
  const result = commit(live, tx);
  if (strict && !globals && !rootNamesSeen(caller, reqs, live, tx.base)) {
    // Nothing it observed changed: never refused, never replayed.
    expect(result.kind === 'committed' ? result.path : result.kind).toMatch(/^(read-only|fast|merge|failed)$/);
    tally.strict++;
  }
  expect(dump(live)).toEqual(before); // commit never modifies the live version

  if (limitHit) {
    expect(result).toEqual({ kind: 'failed', code: 'ENOSPC' });
    tally.failed++;
    return live;
  }
  expect(result.kind).not.toBe('failed');

  const atCommit = serial(live, caller, reqs);
  if (result.kind === 'conflict') {
    // (c) live untouched (the caller keeps `live`), and the conflict is real: run alone at the
    // commit point, the requests would not have given the replies the client saw.
    expect(atCommit.replies).not.toEqual(o.seen);
    tally.conflict++;
    return live;
  }
  if (result.kind !== 'committed') throw new Error(`unexpected ${result.kind}`);
  tally[result.path]++;

  if (result.path === 'read-only') {
    // (b) serialized at its start: nothing installed.
    expect(dump(tx.store)).toEqual(dump(tx.base));
    expect(result.store).toBe(live);
    expect(result.changes).toEqual(atStart.changes);
    return live;
  }
  // (a) commit-point serializability: same replies, same resulting store, as running alone now.
  expect(o.seen).toEqual(atCommit.replies);
  expect(dump(result.store)).toEqual(dump(atCommit.store));
  expect(result.changes).toEqual(atCommit.changes);
  if (result.path === 'fast') expect(live).toBe(tx.base);
  // Exactly one generation per installed change, none when nothing changed. (A merge may find
  // that a transaction's net effect is nothing — it created and removed the same node — where the
  // serial run builds an equal but new version: equal by value is what matters.)
  if (result.store === live) expect(dump(atCommit.store)).toEqual(before);
  else expect(result.store.generation).toBe(live.generation + 1);
  return result.store;
}

// ---------------------------------------------------------------------------------------------

describe('transactions against a serial oracle', () => {
  afterAll(() => {
    // Printed for whoever tunes the generator; the assertions are in the last test.
    console.log(`transaction.property tally: ${JSON.stringify(tally)}`);
  });

  it('the initial store satisfies the model assumptions', () => {
    checkQuota(INITIAL);
    expect(INITIAL.quota.get(5)).toBe(2); // /local/domain/5 and /h: 3 more nodes allowed
  });

  it('interleaved transactions and plain updates are serializable', () => {
    for (const k of Object.keys(tally) as (keyof typeof tally)[]) tally[k] = 0;
    fc.assert(
      fc.property(programArb, (p) => runProgram(p)),
      { numRuns: 2000 },
    );
    // Not vacuous: every commit path, conflicts and request-limit failures actually occurred.
    for (const k of ['read-only', 'fast', 'merge', 'replay', 'conflict', 'failed'] as const) {
      expect(tally[k], k).toBeGreaterThan(0);
    }
  });

  it('a transaction whose subtrees nobody else touches commits without replay, and serializably', () => {
    for (const k of Object.keys(tally) as (keyof typeof tally)[]) tally[k] = 0;
    fc.assert(fc.property(disjointProgramArb, (p) => runProgram(p, true)), { numRuns: 1000 });
    expect(tally.strict).toBeGreaterThan(0);
    expect(tally.merge).toBeGreaterThan(0);
  });
});
