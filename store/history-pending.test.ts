import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { DOM0 } from './caller.js';
import { History } from './history.js';
import type { ConnectionName } from './history-record.js';
import { blameOf, logOf, treeAt } from './history-query.js';
import { RecordWriter } from './history-ring.js';
import { DEFAULT_LIMITS } from './limits.js';
import { execute } from './operations.js';
import type { StoreRequest } from './request.js';
import { advance, createStore, type Store } from './store.js';

/**
 * History keeps the records of plain WRITEs that rewrote a value as pending and writes them all at
 * once when the daemon's turn ends (`settle`, issue 14). What a reader sees must not depend on when
 * that happens: these tests compare a history settled only where the script says against one
 * settled after every commit, byte for byte.
 */

type Step =
  | { kind: 'write'; key: number; value: string; domid: number; connection: ConnectionName; id: number | undefined }
  | { kind: 'mkdir' | 'rm' | 'perms'; key: number }
  | { kind: 'tick' }
  | { kind: 'settle' };

const KEYS = ['/a', '/a/b', '/c', '/d/e'];

/**
 * Runs `steps` on three histories: `lazy` settles where a step says, `eager` after every commit,
 * and `ref` is told each commit by `record`, which keeps nothing pending (its records lack only
 * the joined form's shorter bytes: history-codec.ts).
 */
function run(
  steps: readonly Step[],
  records = 1000,
  bytes?: number,
  span?: number,
  more: (initial: Store, now: number) => History[] = () => [],
): { lazy: History; eager: History; ref: History; live: Store; seen: number[] } {
  let live = createStore();
  let now = 1_000;
  const bounds = { records, ...(bytes === undefined ? {} : { bytes }), ...(span === undefined ? {} : { span }) };
  // `more`: histories of the caller's, told each commit as `lazy` is.
  const lazy = new History(live, bounds, now);
  const eager = new History(live, bounds, now);
  const ref = new History(live, bounds, now);
  const told = [lazy, eager, ...more(live, now)];
  const seen: number[] = [];
  for (const step of steps) {
    if (step.kind === 'tick') {
      now += 7;
      continue;
    }
    if (step.kind === 'settle') {
      lazy.settle();
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
    for (const h of told) {
      h.recordRequest(live, next, now, domid, connection, id, req.op, path, out.changes.map((c) => c.path), out.touched, payload);
    }
    const who = id === undefined ? { domid, connection } : { domid, connection, id };
    ref.record(live, next, { time: now, who, requests: [{ op: req.op, path }] }, out.changes.map((c) => c.path), out.touched);
    eager.settle();
    seen.push(lazy.pendingCommits);
    live = next;
  }
  return { lazy, eager, ref, live, seen };
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
  { weight: 1, arbitrary: fc.constant({ kind: 'settle' as const }) },
);

/** Mostly one author's rewrites: long batches. */
const batchy: fc.Arbitrary<Step> = fc.oneof(
  { weight: 24, arbitrary: fc.record({ kind: fc.constant('write' as const), key: fc.nat(3), value: fc.string({ maxLength: 40 }).map((v) => v.replace(/[^\x00-\xff]/g, '?')), domid: fc.constant(0), connection: fc.constant<ConnectionName>('socket'), id: fc.constant(1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('mkdir' as const, 'rm' as const, 'perms' as const), key: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'tick' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'settle' as const }) },
);

describe('history: records kept pending until the turn ends', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('writes the same records, byte for byte, whenever it settles', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 120 }), (steps) => {
        const { lazy, eager, ref, live } = run(steps);
        // Read first without settling by hand: every reader settles.
        expect(lazy.size).toBe(eager.size);
        expect(lazy.latest()).toBe(live);
        expect(lazy.pendingCommits).toBe(0);
        expect(lazy.bytes).toBe(eager.bytes);
        expect(lazy.all()).toEqual(eager.all());
        for (let g = lazy.oldest().generation + 1; g <= live.generation; g++) expect(lazy.encoded(g)).toEqual(eager.encoded(g));
        // And they are the records `record` makes: same generations, times, authors and changes.
        const strip = (h: History) => h.all().map(({ bytes: _, ...r }) => r);
        expect(strip(lazy)).toEqual(strip(ref));
      }),
      { numRuns: 200 },
    );
  });

  it("gives `onRecord` every commit's record once, in order, as written, whatever the window keeps; none that `restore` copies", () => {
    fc.assert(
      fc.property(fc.oneof(fc.array(step, { maxLength: 120 }), fc.array(batchy, { maxLength: 120 })), fc.integer({ min: 1, max: 5 }), (steps, records) => {
        // A window too small for a turn's batch: records go while the batch is settled, as they are given.
        let tiny: History | undefined;
        const given: Buffer[] = [];
        const { eager, live } = run(steps, 1000, undefined, undefined, (initial, now) => {
          tiny = new History(initial, { records }, now);
          tiny.onRecord((buf, start, end) => given.push(Buffer.from(buf.subarray(start, end))));
          return [tiny];
        });
        tiny!.settle();
        expect(given).toHaveLength(live.generation);
        given.forEach((b, i) => expect(b).toEqual(eager.encoded(i + 1)));
        // Records read back from disk are not given again.
        const back = new History(live, {}, 0);
        back.onRecord(() => expect.unreachable('a record read back was given'));
        back.restore(given);
        expect(back.size).toBe(given.length);
      }),
      { numRuns: 150 },
    );
  });

  it('keeps the same window, byte for byte, under any bounds, and answers `at` and rewinds alike', () => {
    // Small windows: the oldest records go while a turn's wait to be written, several at once when
    // a batch is settled, and `at` spans few bytes, so its passes begin and end inside a batch.
    const dump = (h: History, g: number): unknown => treeAt(h.at(g), '/')?.nodes;
    fc.assert(
      fc.property(fc.oneof(fc.array(step, { maxLength: 150 }), fc.array(batchy, { maxLength: 150 })), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 6000 }), fc.integer({ min: 1, max: 600 }), fc.nat(60), (steps, records, bytes, span, back) => {
        const { lazy, eager, live } = run(steps, records, bytes, span);
        // The bytes counted are the records' own, whole, however they are kept.
        const counted = (h: History): number => h.all().reduce((n, r) => n + r.bytes, 0);
        expect(lazy.oldest()).toEqual(eager.oldest());
        expect(lazy.bytes).toBe(eager.bytes);
        expect(lazy.bytes).toBe(counted(lazy));
        expect(lazy.all()).toEqual(eager.all());
        for (let g = lazy.oldest().generation; g <= live.generation; g++) expect(dump(lazy, g)).toEqual(dump(eager, g));
        // A rewind to an older version kept: the newest records go, a batch's last ones or others.
        const to = Math.max(lazy.oldest().generation, live.generation - back);
        const durable = eager.at(to);
        lazy.rewind(durable);
        eager.rewind(durable);
        expect(lazy.size).toBe(eager.size);
        expect(lazy.bytes).toBe(counted(lazy));
        expect(lazy.all()).toEqual(eager.all());
      }),
      { numRuns: 150 },
    );
  });

  it('answers every query with the pending records in it', () => {
    const writes: Step[] = Array.from({ length: 20 }, (_, i) => ({ kind: 'write', key: i % 2, value: `v${i}`, domid: 3, connection: 'domain', id: 7 }));
    const queries: ((h: History) => unknown)[] = [
      (h) => h.size,
      (h) => h.bytes,
      (h) => h.oldest(),
      (h) => h.latest().generation,
      (h) => h.recordAt(h.latest().generation),
      (h) => h.at(h.latest().generation - 5).root,
      (h) => h.generationAt(1_000),
      (h) => logOf(h, { path: '/a' }),
      (h) => blameOf(h, '/'),
    ];
    for (const [i, query] of queries.entries()) {
      const { lazy, eager } = run([{ kind: 'write', key: 1, value: 'first', domid: 0, connection: 'socket', id: 1 }, { kind: 'settle' }, ...writes]);
      expect(lazy.pendingCommits, `query ${i}`).toBe(20);
      const got = query(lazy);
      expect(lazy.pendingCommits, `query ${i}`).toBe(0);
      expect(JSON.stringify(got), `query ${i}`).toBe(JSON.stringify(query(eager)));
    }
  });

  it('keeps at most 256 commits pending, and each turn’s own time', () => {
    const writes: Step[] = Array.from({ length: 1000 }, (_, i) => ({ kind: 'write', key: i, value: `v${i}`, domid: 0, connection: 'socket', id: 1 }));
    const { lazy, eager, seen } = run(writes);
    expect(Math.max(...seen)).toBe(256);
    expect(lazy.all()).toEqual(eager.all());

    // A new time starts a new batch: the records keep the times they were made at.
    const ticking = run(writes.slice(0, 30).flatMap((w, i) => (i % 10 === 9 ? [w, { kind: 'tick' as const }] : [w])));
    expect(ticking.lazy.all().map((r) => r.time)).toEqual(ticking.eager.all().map((r) => r.time));
    expect(new Set(ticking.lazy.all().map((r) => r.time)).size).toBe(3);
  });

  it('bounds the window by count and bytes once the pending records are written', () => {
    const writes: Step[] = Array.from({ length: 300 }, (_, i) => ({ kind: 'write', key: i, value: 'x'.repeat(i % 50), domid: 0, connection: 'socket', id: 1 }));
    const { lazy, eager } = run(writes, 100);
    expect(lazy.size).toBe(100);
    expect(lazy.oldest()).toEqual(eager.oldest());
    expect(lazy.all()).toEqual(eager.all());
  });

  it('keeps a turn of large values as written one by one, within its bytes and their memory', () => {
    // 240 rewrites of 600-byte values in one turn: ~300 KB of records waiting for one settle.
    const writes: Step[] = Array.from({ length: 240 }, (_, i) => ({ kind: 'write', key: i % 3, value: String.fromCharCode(65 + (i % 26)).repeat(600), domid: 0, connection: 'socket', id: 1 }));
    const first: Step[] = [0, 1, 2].map((key) => ({ kind: 'write', key, value: 'made', domid: 0, connection: 'socket', id: 1 }));
    for (const bytes of [Infinity, 90_000, 9000, 2000]) {
      const { lazy, eager } = run([...first, { kind: 'settle' }, ...writes], 1000, bytes === Infinity ? undefined : bytes);
      expect(lazy.all()).toEqual(eager.all());
      expect(lazy.oldest()).toEqual(eager.oldest());
      expect(lazy.bytes).toBe(eager.bytes);
      // Small bounds make 64 KiB chunks: three at most beside the records, and the index.
      if (bytes !== Infinity) expect(lazy.allocated).toBeLessThan(4 * 64 * 1024);
    }
  });

  it('refuses a commit that does not follow the latest, pending or not, and starts again from it', () => {
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
    expect(h.pendingCommits).toBe(2); // the first made /k: not a rewritten value
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

  it('starts again from the latest version when the pending records cannot be written', () => {
    const writes: Step[] = Array.from({ length: 10 }, (_, i) => ({ kind: 'write', key: 0, value: `v${i}`, domid: 0, connection: 'socket', id: 1 }));
    const { lazy, live } = run([{ kind: 'write', key: 0, value: 'made', domid: 0, connection: 'socket', id: 1 }, { kind: 'settle' }, ...writes]);
    // The batch's fifth record finds no memory for its bytes (a chunk's allocation failing).
    let calls = 0;
    const room = RecordWriter.prototype.room;
    vi.spyOn(RecordWriter.prototype, 'room').mockImplementation(function (this: RecordWriter, n: number) {
      if (++calls === 5) throw new RangeError('Array buffer allocation failed');
      room.call(this, n);
    });
    expect(() => lazy.settle()).toThrow(/allocation failed/);
    vi.restoreAllMocks();
    // Nothing half-kept: no records, the oldest answerable is the latest, and recording goes on.
    expect(lazy.size).toBe(0);
    expect(lazy.oldest().generation).toBe(live.generation);
    expect(lazy.latest()).toBe(live);
    const out = execute(live, DOM0, DEFAULT_LIMITS, { op: 'write', path: '/a', value: 'after' });
    const next = advance(out.store, live);
    lazy.recordRequest(live, next, 9_999, 0, 'socket', 1, 'write', '/a', undefined, out.touched, Buffer.from('/a\0after', 'latin1'));
    expect(lazy.all().map((r) => r.generation)).toEqual([next.generation]);
  });
});
