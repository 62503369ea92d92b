import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DOM0, guest, type Caller } from './caller.js';
import { checkStore } from './check.js';
import { XsError } from '../protocol/index.js';
import { DEFAULT_LIMITS } from './limits.js';
import { execute } from './operations.js';
import type { StoreRequest } from './request.js';
import { decodeSnapshot, encodeSnapshot, snapshotSteps } from './snapshot.js';
import { advance, createStore, type Store } from './store.js';

const LIMITS = { ...DEFAULT_LIMITS, nodes: Infinity };

function apply(s: Store, req: StoreRequest, caller: Caller = DOM0): Store {
  try {
    return advance(execute(s, caller, LIMITS, req).store, s);
  } catch (e) {
    if (e instanceof XsError) return s; // a refused request changes nothing
    throw e;
  }
}

function roundTrip(s: Store): Store {
  const back = decodeSnapshot(encodeSnapshot(s));
  expect(checkStore(back)).toEqual([]);
  expect(back).toEqual(s);
  return back;
}

describe('snapshot codec', () => {
  it('round-trips the initial store', () => {
    roundTrip(createStore());
  });

  it('round-trips every byte value, permissions, special names and the generation', () => {
    let s = createStore();
    let all = '';
    for (let b = 0; b < 256; b++) all += String.fromCharCode(b);
    s = apply(s, { op: 'write', path: '/local/domain/5/bytes', value: all });
    s = apply(s, { op: 'write', path: '/local/domain/5/empty', value: '' });
    s = apply(s, { op: 'set-perms', path: '/local/domain/5', perms: ['n5', 'r0', 'b7', 'w65535'] });
    s = apply(s, { op: 'write', path: '/local/domain/5/mine', value: 'g' }, guest(5));
    s = apply(s, { op: 'set-perms', path: '@releaseDomain', perms: ['r0', 'r5'] });
    s = apply(s, { op: 'mkdir', path: '/a-b_c@d/E/9' });
    const back = roundTrip(s);
    expect(back.generation).toBe(s.generation);
    expect(back.generation).toBeGreaterThan(0);
    expect(back.quota.get(5)).toBe(s.quota.get(5));
    expect(back.root.children.get('local')!.children.get('domain')!.children.get('5')!.children.get('bytes')!.value).toBe(all);
  });

  it('shares one permission list between nodes that had equal lists', () => {
    let s = createStore();
    for (let i = 0; i < 5; i++) s = apply(s, { op: 'write', path: `/x/${i}`, value: String(i) });
    const back = decodeSnapshot(encodeSnapshot(s));
    const kids = [...back.root.children.get('x')!.children.values()];
    expect(new Set(kids.map((k) => k.perms)).size).toBe(1);
  });

  it('in slices (snapshotSteps) gives the very same bytes, pausing as often as asked', () => {
    let s = createStore();
    for (let i = 0; i < 300; i++) s = apply(s, { op: 'write', path: `/d${i % 7}/k${i}`, value: `v${i}` });
    const whole = encodeSnapshot(s);
    const steps = snapshotSteps(s, 10);
    let pauses = 0;
    let r = steps.next();
    while (r.done !== true) {
      pauses++;
      r = steps.next();
    }
    expect(r.value.equals(whole)).toBe(true);
    // ~310 nodes, walked twice, 10 per step; then the checksum in 640-byte slices.
    expect(pauses).toBeGreaterThanOrEqual(Math.floor((2 * 310) / 10));
  });

  it('round-trips a deep chain without recursion limits (XSA-418)', () => {
    let s = createStore();
    const path = '/' + Array.from({ length: 600 }, (_, i) => `d${i}`).join('/');
    s = apply(s, { op: 'write', path, value: 'deep' });
    roundTrip(s);
  });

  it('round-trips stores built by random operations (fast-check)', () => {
    const seg = fc.constantFrom('a', 'b', 'c', 'local', 'domain', '5', '7', 'x_y');
    const path = fc.array(seg, { minLength: 1, maxLength: 5 }).map((xs) => '/' + xs.join('/'));
    const value = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a).toString('latin1'));
    const perms = fc.array(fc.tuple(fc.constantFrom('n', 'r', 'w', 'b'), fc.constantFrom(0, 5, 7, 65535)), {
      minLength: 1,
      maxLength: 4,
    });
    const req: fc.Arbitrary<StoreRequest> = fc.oneof(
      fc.tuple(path, value).map(([p, v]): StoreRequest => ({ op: 'write', path: p, value: v })),
      path.map((p): StoreRequest => ({ op: 'mkdir', path: p })),
      path.map((p): StoreRequest => ({ op: 'rm', path: p })),
      fc
        .tuple(fc.oneof(path, fc.constant('@introduceDomain')), perms)
        .map(([p, ps]): StoreRequest => ({ op: 'set-perms', path: p, perms: ps.map(([a, d]) => `${a}${d}`) })),
    );
    const step = fc.tuple(req, fc.constantFrom<Caller>(DOM0, guest(5), guest(7)));
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        let s = createStore();
        for (const [r, caller] of steps) s = apply(s, r, caller);
        roundTrip(s);
      }),
      { numRuns: 200 },
    );
  });

  it('detects any flipped byte, truncation or trailing garbage, never returning a partial tree', () => {
    let s = createStore();
    for (let i = 0; i < 20; i++) s = apply(s, { op: 'write', path: `/t/${i % 4}/${i}`, value: `v${i}` });
    const good = encodeSnapshot(s);
    for (let at = 0; at < good.length; at++) {
      const bad = Buffer.from(good);
      bad[at] = bad[at]! ^ 0x40;
      expect(() => decodeSnapshot(bad), `byte ${at}`).toThrow(XsError);
    }
    for (const len of [0, 10, good.length - 1]) {
      expect(() => decodeSnapshot(good.subarray(0, len))).toThrow(/corrupt snapshot/);
    }
    expect(() => decodeSnapshot(Buffer.concat([good, Buffer.from([0])]))).toThrow(/corrupt snapshot/);
    try {
      decodeSnapshot(Buffer.concat([good.subarray(0, 40), Buffer.alloc(good.length - 40)]));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(XsError);
      expect((e as XsError).code).toBe('EIO');
    }
  });
});
