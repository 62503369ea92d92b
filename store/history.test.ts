import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DOM0 } from './caller.js';
import { History } from './history.js';
import { DEFAULT_LIMITS } from './limits.js';
import { execute } from './operations.js';
import { advance, createStore, type Store } from './store.js';

/** Versions with the given generations (each a distinct object, as commits make them). */
function versions(...generations: number[]): Store[] {
  const base = createStore();
  return generations.map((generation, i) => ({ ...base, generation, root: base.root.withValue(`v${i}`) }));
}

/** A chain of real committed versions: generation 0, 1, 2, ... */
function chain(n: number): Store[] {
  const out: Store[] = [createStore()];
  while (out.length < n) {
    const live = out[out.length - 1]!;
    out.push(advance(execute(live, DOM0, DEFAULT_LIMITS, { op: 'write', path: '/n', value: String(out.length) }).store, live));
  }
  return out;
}

describe('History', () => {
  it('needs a capacity of at least 1', () => {
    expect(() => new History(0)).toThrow(RangeError);
    expect(() => new History(-1)).toThrow(RangeError);
    expect(() => new History(Number.NaN)).toThrow(RangeError);
    expect(new History(1).capacity).toBe(1);
  });

  it('is empty at first', () => {
    const h = new History(3);
    expect(h.latest()).toBeUndefined();
    expect(h.oldest()).toBeUndefined();
    expect(h.at(0)).toBeUndefined();
  });

  it('keeps the last N versions and answers at(g) for each of them', () => {
    const vs = chain(10);
    expect(vs.map((s) => s.generation)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const h = new History(4);
    for (const s of vs) h.record(s);
    expect(h.latest()).toBe(vs[9]);
    expect(h.oldest()).toBe(vs[6]);
    for (let g = 6; g <= 9; g++) expect(h.at(g)).toBe(vs[g]);
    for (let g = 0; g < 6; g++) expect(h.at(g)).toBeUndefined();
    expect(h.at(100)).toBe(vs[9]); // later than everything: the latest is current
  });

  it('before it is full, keeps everything', () => {
    const vs = chain(3);
    const h = new History(5);
    for (const s of vs) h.record(s);
    expect(h.oldest()).toBe(vs[0]);
    expect(h.latest()).toBe(vs[2]);
    expect(h.at(0)).toBe(vs[0]);
    expect(h.at(1)).toBe(vs[1]);
  });

  it('at(g) between kept generations is the version current then', () => {
    const [a, b, c] = versions(2, 5, 9);
    const h = new History(3);
    h.record(a!);
    h.record(b!);
    h.record(c!);
    expect(h.at(1)).toBeUndefined();
    expect(h.at(2)).toBe(a);
    expect(h.at(4)).toBe(a);
    expect(h.at(5)).toBe(b);
    expect(h.at(8)).toBe(b);
    expect(h.at(9)).toBe(c);
  });

  it('recording the same version twice is ignored', () => {
    const vs = chain(3);
    const h = new History(2);
    h.record(vs[0]!);
    h.record(vs[1]!);
    h.record(vs[1]!);
    h.record(vs[1]!);
    expect(h.oldest()).toBe(vs[0]);
    expect(h.latest()).toBe(vs[1]);
  });

  it('rejects generations that do not increase', () => {
    const [a, b, c] = versions(3, 3, 1);
    const h = new History(4);
    h.record(a!);
    expect(() => h.record(b!)).toThrow(RangeError); // same generation, another version
    expect(() => h.record(c!)).toThrow(RangeError);
    expect(h.latest()).toBe(a);
    expect(h.oldest()).toBe(a);
  });

  it('behaves like the last N of a list (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 20 }),
        fc.integer({ min: 0, max: 100 }),
        (capacity, gaps, probe) => {
          let g = 0;
          const gens = gaps.map((d) => (g += d));
          const vs = versions(...gens);
          const h = new History(capacity);
          for (const s of vs) h.record(s);
          const kept = vs.slice(-capacity);
          expect(h.latest()).toBe(kept[kept.length - 1]);
          expect(h.oldest()).toBe(kept[0]);
          const want =
            kept.length === 0 || probe < kept[0]!.generation
              ? undefined
              : kept.filter((s) => s.generation <= probe).pop();
          expect(h.at(probe)).toBe(want);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('rewinds to a version: newer ones are forgotten and their generations can be given again', () => {
    const [v0, v1, v2, v3] = chain(4);
    const h = new History(8);
    for (const v of [v0!, v1!, v2!, v3!]) h.record(v);
    h.rewind(v1!);
    expect(h.latest()).toBe(v1);
    expect(h.at(3)).toBe(v1);
    expect(h.oldest()).toBe(v0);
    const again = advance(execute(v1!, DOM0, DEFAULT_LIMITS, { op: 'write', path: '/m', value: 'x' }).store, v1!);
    expect(again.generation).toBe(2);
    h.record(again);
    expect(h.at(2)).toBe(again);
  });

  it('rewinds to a version it no longer keeps', () => {
    const vs = chain(6);
    const h = new History(2);
    for (const v of vs) h.record(v);
    h.rewind(vs[1]!);
    expect(h.latest()).toBe(vs[1]);
    expect(h.oldest()).toBe(vs[1]);
  });
});
