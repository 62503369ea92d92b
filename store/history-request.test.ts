import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { DOM0 } from './caller.js';
import { History } from './history.js';
import type { ConnectionName, Version } from './history-record.js';
import { treeAt } from './history-query.js';
import { RecordWriter } from './history-ring.js';
import { DEFAULT_LIMITS } from './limits.js';
import { execute } from './operations.js';
import type { StoreRequest } from './request.js';
import { advance, createStore, type Store } from './store.js';

/**
 * `History.recordRequest` writes a plain request's record at its commit, as the daemon calls it
 * for every request that changed something (issue 14): the records must be those `record` makes
 * of the same commits (all but the joined form's shorter bytes: history-codec.ts), the window
 * must rebuild every version kept, and its bounds and failures must hold whatever the commits.
 */

type Step =
  | { kind: 'write'; key: number; value: string; domid: number; connection: ConnectionName; id: number | undefined }
  | { kind: 'mkdir' | 'rm' | 'perms'; key: number }
  | { kind: 'tick' };

const KEYS = ['/a', '/a/b', '/c', '/d/e'];

/**
 * Runs `steps` on two histories with the same bounds: `h` is told each commit by `recordRequest`,
 * `ref` by `record`. `more`: histories of the caller's, told each commit as `h` is. Returns every
 * version made, by generation.
 */
function run(
  steps: readonly Step[],
  records = 1000,
  bytes?: number,
  span?: number,
  more: (initial: Store, now: number) => History[] = () => [],
): { h: History; ref: History; live: Store; versions: Store[] } {
  let live = createStore();
  let now = 1_000;
  const bounds = { records, ...(bytes === undefined ? {} : { bytes }), ...(span === undefined ? {} : { span }) };
  const h = new History(live, bounds, now);
  const ref = new History(live, bounds, now);
  const told = [h, ...more(live, now)];
  const versions: Store[] = [live];
  for (const step of steps) {
    if (step.kind === 'tick') {
      now += 7;
      continue;
    }
    const path = KEYS[step.key % KEYS.length]!;
    const req: StoreRequest =
      step.kind === 'write'
        ? { op: 'write', path, value: step.value }
        : step.kind === 'mkdir'
          ? { op: 'mkdir', path }
          : step.kind === 'rm'
            ? { op: 'rm', path }
            : { op: 'set-perms', path, perms: ['b0', `r${step.key}`] };
    let out;
    try {
      out = execute(live, DOM0, DEFAULT_LIMITS, req);
    } catch {
      continue; // refused (no such node): no commit
    }
    const next = advance(out.store, live);
    if (next === live) continue;
    const payload = step.kind === 'write' ? Buffer.from(`${path}\0${step.value}`, 'latin1') : undefined;
    const [domid, connection, id] = step.kind === 'write' ? [step.domid, step.connection, step.id] : [0, 'socket' as const, 1];
    for (const x of told) {
      x.recordRequest(live, next, now, domid, connection, id, req.op, path, out.changes.map((c) => c.path), out.touched, payload);
    }
    const who = id === undefined ? { domid, connection } : { domid, connection, id };
    ref.record(live, next, { time: now, who, requests: [{ op: req.op, path }] }, out.changes.map((c) => c.path), out.touched);
    versions[next.generation] = next;
    live = next;
  }
  return { h, ref, live, versions };
}

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      key: fc.nat(7),
      value: fc.string({ maxLength: 80, unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)) }),
      domid: fc.constantFrom(0, 3),
      connection: fc.constantFrom<ConnectionName>('socket', 'domain', 'http'),
      id: fc.option(fc.nat(1000), { nil: undefined }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('mkdir' as const, 'rm' as const, 'perms' as const), key: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'tick' as const }) },
);

/** Mostly one author's rewrites of a few keys. */
const rewrites: fc.Arbitrary<Step> = fc.oneof(
  { weight: 24, arbitrary: fc.record({ kind: fc.constant('write' as const), key: fc.nat(3), value: fc.string({ maxLength: 40 }).map((v) => v.replace(/[^\x00-\xff]/g, '?')), domid: fc.constant(0), connection: fc.constant<ConnectionName>('socket'), id: fc.constant(1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('mkdir' as const, 'rm' as const, 'perms' as const), key: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'tick' as const }) },
);

const dump = (v: Version): unknown => treeAt(v, '/')?.nodes;

describe("history: a plain request's record, written at its commit", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('is the record `record` makes of the same commit: generation, time, author and changes', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 120 }), (steps) => {
        const { h, ref, live } = run(steps);
        expect(h.latest()).toBe(live);
        expect(h.size).toBe(live.generation);
        const strip = (x: History) => x.all().map(({ bytes: _, ...r }) => r);
        expect(strip(h)).toEqual(strip(ref));
      }),
      { numRuns: 200 },
    );
  });

  it("is given to `onRecord` once, in order, as kept, whatever the window keeps; none that `restore` copies", () => {
    fc.assert(
      fc.property(fc.oneof(fc.array(step, { maxLength: 120 }), fc.array(rewrites, { maxLength: 120 })), fc.integer({ min: 1, max: 5 }), (steps, records) => {
        // A window too small to keep them all: records go while they are given.
        const given: Buffer[] = [];
        const { h, live } = run(steps, 1000, undefined, undefined, (initial, now) => {
          const tiny = new History(initial, { records }, now);
          tiny.onRecord((buf, start, end) => given.push(Buffer.from(buf.subarray(start, end))));
          return [tiny];
        });
        expect(given).toHaveLength(live.generation);
        given.forEach((b, i) => expect(b).toEqual(h.encoded(i + 1)));
        const back = new History(live, {}, 0);
        back.onRecord(() => expect.unreachable('a record read back was given'));
        back.restore(given);
        expect(back.size).toBe(given.length);
      }),
      { numRuns: 150 },
    );
  });

  it('keeps a window that rebuilds every version it can answer, under any bounds, and rewinds to one', () => {
    fc.assert(
      fc.property(fc.oneof(fc.array(step, { maxLength: 150 }), fc.array(rewrites, { maxLength: 150 })), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 6000 }), fc.integer({ min: 1, max: 600 }), fc.nat(60), (steps, records, bytes, span, back) => {
        const { h, live, versions } = run(steps, records, bytes, span);
        // The bytes counted are the records' own, whole, and within the bounds (a record alone may pass the byte bound).
        const counted = (x: History): number => x.all().reduce((n, r) => n + r.bytes, 0);
        expect(h.bytes).toBe(counted(h));
        expect(h.size).toBeLessThanOrEqual(records);
        if (h.size > 1) expect(h.bytes).toBeLessThanOrEqual(bytes);
        expect(h.oldest().generation).toBe(live.generation - h.size);
        for (let g = h.oldest().generation; g <= live.generation; g++) expect(dump(h.at(g))).toEqual(dump(versions[g]!));
        // A rewind to an older version kept: the newest records go.
        const to = Math.max(h.oldest().generation, live.generation - back);
        const before = h.all();
        h.rewind(versions[to]!);
        expect(h.latest()).toBe(versions[to]);
        expect(h.bytes).toBe(counted(h));
        expect(h.all()).toEqual(before.slice(0, to - h.oldest().generation));
      }),
      { numRuns: 150 },
    );
  });

  it('carries the time of its commit, never before the last record kept', () => {
    const writes: Step[] = Array.from({ length: 30 }, (_, i) => ({ kind: 'write', key: i, value: `v${i}`, domid: 0, connection: 'socket', id: 1 }));
    const { h, live: last } = run(writes.flatMap((w, i) => (i % 10 === 9 ? [w, { kind: 'tick' as const }] : [w])));
    expect(h.all().map((r) => r.time)).toEqual([...Array(10).fill(1_000), ...Array(10).fill(1_007), ...Array(10).fill(1_014)]);
    // The wall clock stepping back (NTP) does not put a record before the one kept last.
    let live = last;
    for (const [i, time] of [5, 2_000, 1_500].entries()) {
      const out = execute(live, DOM0, DEFAULT_LIMITS, { op: 'write', path: '/a', value: `back${i}` });
      const next = advance(out.store, live);
      h.recordRequest(live, next, time, 0, 'socket', 1, 'write', '/a', undefined, out.touched, Buffer.from(`/a\0back${i}`, 'latin1'));
      live = next;
    }
    expect(h.all().slice(-3).map((r) => r.time)).toEqual([1_014, 2_000, 2_000]);
  });

  it('keeps the window within its count and its bytes, and rewritten values of any size within their memory', () => {
    const writes: Step[] = Array.from({ length: 300 }, (_, i) => ({ kind: 'write', key: i, value: 'x'.repeat(i % 50), domid: 0, connection: 'socket', id: 1 }));
    const { h, ref } = run(writes, 100);
    expect(h.size).toBe(100);
    expect(h.oldest()).toEqual(ref.oldest());
    // 240 rewrites of 600-byte values.
    const large: Step[] = Array.from({ length: 240 }, (_, i) => ({ kind: 'write', key: i % 3, value: String.fromCharCode(65 + (i % 26)).repeat(600), domid: 0, connection: 'socket', id: 1 }));
    for (const bytes of [90_000, 9000, 2000]) {
      const { h: small, live, versions } = run(large, 1000, bytes);
      expect(small.bytes).toBeLessThanOrEqual(bytes);
      expect(dump(small.at(small.oldest().generation))).toEqual(dump(versions[small.oldest().generation]!));
      expect(small.latest()).toBe(live);
      // Small bounds make 64 KiB chunks: three at most beside the records, and the index.
      expect(small.allocated).toBeLessThan(4 * 64 * 1024);
    }
  });

  it('refuses a commit that does not follow the latest, and starts again from it', () => {
    let live = createStore();
    const h = new History(live, {}, 0);
    const versions: Store[] = [live];
    for (let i = 0; i < 3; i++) {
      const out = execute(live, DOM0, DEFAULT_LIMITS, { op: 'write', path: '/k', value: `v${i}` });
      const next = advance(out.store, live);
      h.recordRequest(live, next, 5, 0, 'socket', 1, 'write', '/k', undefined, out.touched, Buffer.from(`/k\0v${i}`, 'latin1'));
      versions.push(next);
      live = next;
    }
    expect(h.size).toBe(3);
    const out = execute(versions[1]!, DOM0, DEFAULT_LIMITS, { op: 'write', path: '/k', value: 'late' });
    const stale = advance(out.store, versions[1]!);
    expect(() => h.recordRequest(versions[1]!, stale, 5, 0, 'socket', 1, 'write', '/k', undefined, out.touched, Buffer.from('/k\0late', 'latin1'))).toThrow(
      /history at 3 given 1 -> 2/,
    );
    // Its records no longer lead to the version the caller holds: the window starts again there.
    expect(h.size).toBe(0);
    expect(h.latest()).toBe(stale);
    expect(h.oldest().generation).toBe(stale.generation);
    const again = execute(stale, DOM0, DEFAULT_LIMITS, { op: 'write', path: '/k', value: 'next' });
    const next = advance(again.store, stale);
    h.recordRequest(stale, next, 6, 0, 'socket', 1, 'write', '/k', undefined, again.touched, Buffer.from('/k\0next', 'latin1'));
    expect(h.all().map((r) => r.changes[0]!.new)).toEqual(['next']);
  });

  it('starts again from the latest version when a record cannot be written', () => {
    const writes: Step[] = Array.from({ length: 4 }, (_, i) => ({ kind: 'write', key: 0, value: `v${i}`, domid: 0, connection: 'socket', id: 1 }));
    const { h, live } = run(writes);
    // The next record finds no memory for its bytes (a chunk's allocation failing).
    vi.spyOn(RecordWriter.prototype, 'room').mockImplementationOnce(() => {
      throw new RangeError('Array buffer allocation failed');
    });
    const out = execute(live, DOM0, DEFAULT_LIMITS, { op: 'write', path: '/a', value: 'lost' });
    const next = advance(out.store, live);
    expect(() => h.recordRequest(live, next, 9_000, 0, 'socket', 1, 'write', '/a', undefined, out.touched, Buffer.from('/a\0lost', 'latin1'))).toThrow(/allocation failed/);
    // Nothing half-kept: no records, the oldest answerable is the latest, and recording goes on.
    expect(h.size).toBe(0);
    expect(h.oldest().generation).toBe(next.generation);
    expect(h.latest()).toBe(next);
    const after = execute(next, DOM0, DEFAULT_LIMITS, { op: 'write', path: '/a', value: 'after' });
    const last = advance(after.store, next);
    h.recordRequest(next, last, 9_999, 0, 'socket', 1, 'write', '/a', undefined, after.touched, Buffer.from('/a\0after', 'latin1'));
    expect(h.all().map((r) => r.generation)).toEqual([last.generation]);
  });
});
