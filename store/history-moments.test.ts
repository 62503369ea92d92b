import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { DOM0 } from './caller.js';
import { History } from './history.js';
import type { Version, Who } from './history-record.js';
import { treeAt } from './history-query.js';
import { DEFAULT_LIMITS } from './limits.js';
import { execute } from './operations.js';
import { formatPerms } from './perms.js';
import type { StoreRequest } from './request.js';
import { advance, createStore, type Store } from './store.js';
import { Transaction, commit } from './transaction.js';

/**
 * `at` keeps the moments it rebuilt and starts the next one from the nearest of them (store/
 * history.ts): undoing the records after it from a newer one, or redoing those up to it from an
 * older one (history-record.ts `redoAll`). These check that every answer is still the tree as it
 * was, whatever order moments are asked in, and that the work is the records between.
 */

const WHO: Who = { domid: 0, connection: 'socket', id: 1 };

/** The whole tree and the special names' permissions as text: what a snapshot compares. */
function dump(v: Version): string[] {
  const t = treeAt(v, '/', 10_000)!;
  const special = Object.entries(v.special).map(([k, p]) => `${k} ${formatPerms(p).join(',')}`);
  return [...t.nodes.map((n) => `${n.path}=${n.value} ${formatPerms(n.perms).join(',')}`), ...special];
}

/** Applies `req` (or a transaction of `reqs`), recording it; the snapshot of every generation made. */
function apply(h: History, live: Store, reqs: StoreRequest[], snaps: Map<number, string[]>): Store {
  let next: Store;
  let hints: string[];
  try {
    if (reqs.length === 1) {
      const out = execute(live, DOM0, DEFAULT_LIMITS, reqs[0]!);
      next = advance(out.store, live);
      hints = out.changes.map((c) => c.path);
    } else {
      const tx = new Transaction(live, DOM0, DEFAULT_LIMITS);
      for (const r of reqs) tx.execute(r);
      const result = commit(live, tx);
      if (result.kind !== 'committed') return live;
      next = result.store;
      hints = result.changes.map((c) => c.path);
    }
  } catch {
    return live;
  }
  h.record(live, next, { time: next.generation, who: WHO, requests: [] }, hints);
  snaps.set(next.generation, dump(next));
  return next;
}

/** A window of `n` rewrites of one key: generation g wrote `v<g>`. */
function rewrites(n: number): { h: History; live: Store; snaps: Map<number, string[]> } {
  let live = createStore();
  const h = new History(live, {}, 0);
  const snaps = new Map<number, string[]>([[0, dump(live)]]);
  for (let i = 1; i <= n; i++) live = apply(h, live, [{ op: 'write', path: '/k', value: `v${i}` }], snaps);
  return { h, live, snaps };
}

/** How many records `at` read to answer (each decoded once per pass through `recordAt`). */
function decodes(h: History, f: () => void): number {
  const spy = vi.spyOn(h, 'recordAt');
  try {
    f();
    return spy.mock.calls.length;
  } finally {
    spy.mockRestore();
  }
}

describe('history: moments kept between queries', () => {
  it('answers every kept moment exactly, asked in any order, with subtrees removed and made again (property)', () => {
    const paths = ['/a', '/a/b', '/a/b/c', '/a/d', '/e', '/e/f'];
    const one = fc.oneof(
      fc.record({ op: fc.constant('write' as const), path: fc.constantFrom(...paths), value: fc.constantFrom('', 'x', 'y', 'z') }),
      fc.record({ op: fc.constant('mkdir' as const), path: fc.constantFrom(...paths) }),
      fc.record({ op: fc.constant('rm' as const), path: fc.constantFrom(...paths) }),
      fc.record({ op: fc.constant('set-perms' as const), path: fc.constantFrom(...paths), perms: fc.constantFrom(['n0'], ['n1', 'r0'], ['b2']) }),
      fc.record({ op: fc.constant('set-perms' as const), path: fc.constant('@releaseDomain'), perms: fc.constantFrom(['n0'], ['n0', 'r5']) }),
    );
    // A step: one request, or a transaction of a few (a record of many changes, some on one path twice).
    const step = fc.oneof(one.map((r) => [r as StoreRequest]), fc.array(one, { minLength: 2, maxLength: 4 }).map((rs) => rs as StoreRequest[]));
    // A query: a generation by its place among those made (0..1), or forgetting the kept moments.
    const query = fc.oneof({ weight: 9, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }) }, { weight: 1, arbitrary: fc.constant('forget' as const) });
    fc.assert(
      fc.property(
        fc.array(step, { maxLength: 40 }),
        fc.array(query, { maxLength: 30 }),
        fc.integer({ min: 1, max: 60 }),
        fc.constantFrom(1, 200, 2 ** 20),
        (steps, queries, records, span) => {
          let live = createStore();
          const h = new History(live, { records, span }, 0);
          const snaps = new Map<number, string[]>([[0, dump(live)]]);
          for (const s of steps) live = apply(h, live, s, snaps);
          const oldest = h.oldest().generation;
          for (const q of queries) {
            if (q === 'forget') {
              h.forgetMoments();
              continue;
            }
            const g = oldest + Math.floor(q * (live.generation - oldest + 1 - 1e-9));
            expect(dump(h.at(g))).toEqual(snaps.get(g));
          }
          // And every kept generation once more, newest first and then oldest first.
          for (let g = live.generation; g >= oldest; g--) expect(dump(h.at(g))).toEqual(snaps.get(g));
          for (let g = oldest; g <= live.generation; g++) expect(dump(h.at(g))).toEqual(snaps.get(g));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reads only the records between a kept moment and the one asked', () => {
    const { h, snaps } = rewrites(1000);
    expect(decodes(h, () => expect(dump(h.at(100))).toEqual(snaps.get(100)))).toBe(900);
    // The same moment again: kept.
    expect(decodes(h, () => h.at(100))).toBe(0);
    // The next ticks forward: redone from 100.
    expect(decodes(h, () => expect(dump(h.at(110))).toEqual(snaps.get(110)))).toBe(10);
    // Back a little: undone from 100, the nearest kept after it.
    expect(decodes(h, () => expect(dump(h.at(95))).toEqual(snaps.get(95)))).toBe(5);
    // Nearer the live version than any kept moment: undone from it.
    expect(decodes(h, () => expect(dump(h.at(990))).toEqual(snaps.get(990)))).toBe(10);
  });

  it('keeps four moments, the most recently used', () => {
    const { h } = rewrites(1000);
    for (const g of [100, 300, 500, 700]) h.at(g);
    h.at(100); // used again: 300 is now the least recently used
    h.at(900); // a fifth: 300 goes
    expect(decodes(h, () => h.at(100))).toBe(0);
    expect(decodes(h, () => h.at(300))).toBeGreaterThan(0);
  });

  it('drops kept moments once 4096 commits followed their last use, and when told to', () => {
    const r = rewrites(10);
    const { h, snaps } = r;
    let live = r.live;
    h.at(2);
    for (let i = 0; i < 4096; i++) live = apply(h, live, [{ op: 'write', path: '/k', value: `w${i}` }], snaps);
    expect(decodes(h, () => h.at(2))).toBe(0);
    for (let i = 0; i < 4097; i++) live = apply(h, live, [{ op: 'write', path: '/k', value: `u${i}` }], snaps);
    expect(decodes(h, () => expect(dump(h.at(2))).toEqual(snaps.get(2)))).toBe(live.generation - 2);
    h.forgetMoments();
    expect(decodes(h, () => h.at(2))).toBe(live.generation - 2);
  });

  it('forgets kept moments a rewind takes back, whose generations are made again differently', () => {
    const r = rewrites(20);
    const { h, snaps } = r;
    let live = r.live;
    const durable = live;
    h.at(10);
    live = apply(h, live, [{ op: 'write', path: '/k', value: 'lost' }], snaps);
    live = apply(h, live, [{ op: 'write', path: '/k', value: 'lost too' }], snaps);
    expect(h.at(21)).toBe(h.at(21));
    h.rewind(durable);
    live = durable;
    live = apply(h, live, [{ op: 'write', path: '/other', value: 'kept' }], snaps);
    live = apply(h, live, [{ op: 'write', path: '/k', value: 'again' }], snaps);
    expect(dump(h.at(21))).toEqual(snaps.get(21));
    expect(dump(h.at(21))).toContain('/other=kept n0');
    expect(dump(h.at(10))).toEqual(snaps.get(10));
  });

  it('does not redo from a kept moment older than the window', () => {
    let live = createStore();
    const h = new History(live, { records: 50 }, 0);
    const snaps = new Map<number, string[]>([[0, dump(live)]]);
    for (let i = 1; i <= 40; i++) live = apply(h, live, [{ op: 'write', path: `/k${i % 7}`, value: `v${i}` }], snaps);
    h.at(5);
    // The window moves past 5: its records after 5 go, so 5 can no longer be redone from.
    for (let i = 41; i <= 80; i++) live = apply(h, live, [{ op: 'write', path: `/k${i % 7}`, value: `v${i}` }], snaps);
    expect(() => h.at(5)).toThrow(/older than the oldest kept/);
    const oldest = h.oldest().generation;
    expect(dump(h.at(oldest))).toEqual(snaps.get(oldest));
    expect(dump(h.at(oldest + 1))).toEqual(snaps.get(oldest + 1));
  });

  it('rebuilds a moment a pass at a time while commits, rewinds and the window move on (property)', () => {
    const paths = ['/a', '/a/b', '/a/b/c', '/e', '/e/f'];
    const req = fc.oneof(
      fc.record({ op: fc.constant('write' as const), path: fc.constantFrom(...paths), value: fc.constantFrom('x', 'y', 'z') }),
      fc.record({ op: fc.constant('rm' as const), path: fc.constantFrom(...paths) }),
      fc.record({ op: fc.constant('set-perms' as const), path: fc.constantFrom(...paths), perms: fc.constantFrom(['n0'], ['b2']) }),
    );
    // Between two steps: nothing, a few commits, a rewind of the last few, or another query (which keeps moments).
    const between = fc.oneof(
      { weight: 3, arbitrary: fc.constant({ kind: 'none' as const }) },
      { weight: 4, arbitrary: fc.array(req, { minLength: 1, maxLength: 4 }).map((rs) => ({ kind: 'commit' as const, rs: rs as StoreRequest[] })) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }).map((n) => ({ kind: 'rewind' as const, n })) },
      { weight: 1, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }).map((q) => ({ kind: 'query' as const, q })) },
    );
    fc.assert(
      fc.property(
        fc.array(req, { minLength: 1, maxLength: 30 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(between, { maxLength: 40 }),
        fc.integer({ min: 5, max: 60 }),
        fc.constantFrom(1, 60, 200),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 3 }),
        (script, pick, betweens, records, span, before) => {
          let live = createStore();
          const h = new History(live, { records, span }, 0);
          const snaps = new Map<number, string[]>([[0, dump(live)]]);
          const stores: Store[] = [live];
          const step = (r: StoreRequest): void => {
            const next = apply(h, live, [r], snaps);
            if (next !== live) stores.push(next);
            live = next;
          };
          for (const r of script) step(r);
          const oldest = h.oldest().generation;
          const at = (q: number): number => oldest + Math.floor(q * (live.generation - oldest + 1 - 1e-9));
          // Moments kept before it: the rebuild may start from one, undoing or redoing.
          for (const q of before) h.at(at(q));
          const g = at(pick);
          const rebuild = h.rebuild(g);
          let i = 0;
          let rewinds = 0;
          for (;;) {
            let v;
            try {
              v = rebuild.step();
            } catch (e) {
              // Only when the window, or a rewind, took g away, or rewinds came again and again.
              if ((e as { code?: string }).code === 'EAGAIN') {
                expect(rewinds).toBeGreaterThan(3);
              } else {
                expect(g < h.oldest().generation || g > h.latest().generation).toBe(true);
                expect(String(e)).toMatch(/older than the oldest kept|after the latest/);
              }
              return;
            }
            if (v !== undefined) {
              // The moment g is now: after a rewind and new commits, the one made again.
              expect(v.generation).toBe(g);
              expect(dump(v)).toEqual(snaps.get(g));
              expect(dump(h.at(g))).toEqual(snaps.get(g));
              return;
            }
            const b = betweens[i++ % Math.max(1, betweens.length)] ?? { kind: 'none' as const };
            if (b.kind === 'commit') for (const r of b.rs) step(r);
            else if (b.kind === 'rewind' && stores.length > b.n && stores[stores.length - 1 - b.n]!.generation >= h.oldest().generation) {
              // The log lost its last writes (server/persistence/journal.ts): their generations are made again.
              stores.length -= b.n;
              live = stores[stores.length - 1]!;
              h.rewind(live);
              rewinds++;
            } else if (b.kind === 'query') {
              const o = h.oldest().generation;
              const q = o + Math.floor(b.q * (h.latest().generation - o + 1 - 1e-9));
              expect(dump(h.at(q))).toEqual(snaps.get(q));
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gives a rebuild up with EAGAIN when records are taken back again and again', () => {
    let live = createStore();
    const h = new History(live, { span: 1 }, 0);
    const snaps = new Map<number, string[]>();
    const stores: Store[] = [live];
    for (let i = 0; i < 100; i++) stores.push((live = apply(h, live, [{ op: 'write', path: '/k', value: `w${i}` }], snaps)));
    const r = h.rebuild(stores[10]!.generation);
    expect(r.step()).toBeUndefined();
    // A log that fails after every pass: the write is taken back, and made again.
    const fail = (): void => {
      h.rewind(stores[99]!);
      apply(h, stores[99]!, [{ op: 'write', path: '/k', value: 'again' }], snaps);
    };
    for (let i = 0; i < 3; i++) {
      fail();
      expect(r.step()).toBeUndefined();
    }
    fail();
    expect(() => r.step()).toThrow(/EAGAIN|taken back 4 times/);
  });

  it('goes on from the live version when the moment a rebuild redoes from leaves the window', () => {
    let live = createStore();
    const h = new History(live, { records: 10, span: 1 }, 0);
    const snaps = new Map<number, string[]>([[0, dump(live)]]);
    const write = (v: string): void => {
      live = apply(h, live, [{ op: 'write', path: '/k', value: v }], snaps);
    };
    for (let i = 1; i <= 20; i++) write(`v${i}`);
    h.at(12);
    // 14 is nearer 12 (kept) than the live version (20): redone from 12, a record a step.
    const r = h.rebuild(14);
    expect(decodes(h, () => expect(r.step()).toBeUndefined())).toBe(1);
    // Four commits: the window now starts after 14, past 13, where the rebuild is.
    for (let i = 21; i <= 24; i++) write(`v${i}`);
    expect(h.oldest().generation).toBe(14);
    let v: Version | undefined;
    while ((v = r.step()) === undefined);
    expect(dump(v)).toEqual(snaps.get(14));
  });
});
