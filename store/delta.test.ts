import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DOM0, guest, type Caller } from './caller.js';
import { checkStore } from './check.js';
import { applyDeltas, applySpan, deltaOf, type Delta } from './delta.js';
import { decodeDelta, encodeDelta } from './delta-codec.js';
import { forgetDomain } from './domain-cleanup.js';
import { XsError } from '../protocol/index.js';
import { DEFAULT_LIMITS } from './limits.js';
import { execute } from './operations.js';
import type { Change, StoreRequest } from './request.js';
import { advance, createStore, type Store } from './store.js';
import { Transaction, commit } from './transaction.js';

const LIMITS = { ...DEFAULT_LIMITS, nodes: Infinity };

describe('deltas (the write-ahead log records)', () => {
  it('replaying the deltas of random histories (requests, transactions, releases) rebuilds the store exactly', () => {
    const seg = fc.constantFrom('a', 'b', 'c', '5', 'x_y');
    const path = fc.array(seg, { minLength: 1, maxLength: 4 }).map((xs) => '/' + xs.join('/'));
    const value = fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a).toString('latin1'));
    const req: fc.Arbitrary<StoreRequest> = fc.oneof(
      fc.tuple(path, value).map(([p, v]): StoreRequest => ({ op: 'write', path: p, value: v })),
      path.map((p): StoreRequest => ({ op: 'mkdir', path: p })),
      path.map((p): StoreRequest => ({ op: 'rm', path: p })),
      fc
        .tuple(fc.oneof(path, fc.constant('@releaseDomain')), fc.constantFrom(['n0'], ['n5', 'r0'], ['b7'], ['r0', 'w5']))
        .map(([p, perms]): StoreRequest => ({ op: 'set-perms', path: p, perms })),
    );
    type Step = { kind: 'req'; req: StoreRequest; caller: Caller } | { kind: 'tx'; reqs: StoreRequest[] } | { kind: 'release'; domid: number };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.tuple(req, fc.constantFrom<Caller>(DOM0, guest(5), guest(7))).map(([r, caller]): Step => ({ kind: 'req', req: r, caller })),
      fc.array(req, { maxLength: 4 }).map((reqs): Step => ({ kind: 'tx', reqs })),
      fc.constantFrom(5, 7).map((domid): Step => ({ kind: 'release', domid })),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        const start = createStore();
        let s = start;
        const log: Delta[] = [];
        const install = (next: Store, changes?: readonly Change[]) => {
          if (next === s) return;
          // Through the record codec, as the log does; guided by the changes when they are given.
          const d = decodeDelta(encodeDelta(deltaOf(s, next, changes?.map((c) => c.path))));
          const one = applyDeltas(s, [d]);
          expect(one.root).toEqual(next.root);
          // Counted as the ops go, not recounted: the same as the live store's own count.
          expect(one.quota.equals(next.quota)).toBe(true);
          log.push(d);
          s = next;
        };
        for (const st of steps) {
          try {
            if (st.kind === 'req') {
              const out = execute(s, st.caller, LIMITS, st.req);
              install(advance(out.store, s), out.changes);
            } else if (st.kind === 'release') install(advance(forgetDomain(s, st.domid).store, s));
            else {
              const tx = new Transaction(s, DOM0, LIMITS);
              for (const r of st.reqs) {
                try {
                  tx.execute(r);
                } catch (e) {
                  if (!(e instanceof XsError)) throw e;
                }
              }
              const result = commit(s, tx);
              if (result.kind === 'committed') install(result.store, result.changes);
            }
          } catch (e) {
            if (!(e instanceof XsError)) throw e;
          }
        }
        const replayed = applyDeltas(start, log);
        expect(checkStore(replayed)).toEqual([]);
        expect(replayed.generation).toBe(s.generation);
        expect(replayed.special).toEqual(s.special);
        expect(replayed.quota.equals(s.quota)).toBe(true);
        expect(replayed.root).toEqual(s.root);
        // One delta for the whole span (a live update's pre-copy) gives the same version.
        if (s !== start) {
          const spanned = applySpan(start, decodeDelta(encodeDelta(deltaOf(start, s))));
          expect(checkStore(spanned)).toEqual([]);
          expect(spanned.generation).toBe(s.generation);
          expect(spanned.quota.equals(s.quota)).toBe(true);
          expect(spanned.root).toEqual(s.root);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('guided by a transaction\'s changes, still removes what an rm-then-recreate left behind', () => {
    let s = createStore();
    for (const p of ['/a/x/deep', '/a/keep']) s = advance(execute(s, DOM0, LIMITS, { op: 'write', path: p, value: 'v' }).store, s);
    const tx = new Transaction(s, DOM0, LIMITS);
    tx.execute({ op: 'rm', path: '/a' });
    tx.execute({ op: 'write', path: '/a/y', value: 'new' });
    const result = commit(s, tx);
    if (result.kind !== 'committed') throw new Error(result.kind);
    const d = deltaOf(s, result.store, result.changes.map((c) => c.path));
    const replayed = applyDeltas(s, [d]);
    expect([...replayed.root.children.get('a')!.children.keys()]).toEqual(['y']);
    expect(replayed.root).toEqual(result.store.root);
  });

  it('rejects a gap in generations and malformed records with EIO', () => {
    const s = createStore();
    expect(() => applyDeltas(s, [{ generation: 2, ops: [] }])).toThrow(/does not follow 0/);
    expect(() => applyDeltas(s, [{ generation: 1, ops: [{ kind: 'remove', path: '/no/such' }] }])).toThrow(/no parent/);
    for (const bad of ['{', '[]', '{"g":0,"ops":[]}', '{"g":1,"ops":[["s","//x","v",["n0"]]]}', '{"g":1,"ops":[["s","/x","v",["q0"]]]}', '{"g":1,"ops":[["s","/x","\\u0100",["n0"]]]}', '{"g":1,"ops":[["z"]]}']) {
      expect(() => decodeDelta(Buffer.from(bad)), bad).toThrow(XsError);
    }
  });
});
