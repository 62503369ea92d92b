import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DOM0 } from './caller.js';
import { decodeRecord } from './history-codec.js';
import { writeCommit } from './history-commit.js';
import type { HistoryRecord, Version } from './history-record.js';
import { RecordWriter } from './history-ring.js';
import { DEFAULT_LIMITS } from './limits.js';
import { execute, type Touched } from './operations.js';
import type { StoreRequest } from './request.js';
import { advance, createStore, type Store } from './store.js';

const WHO = { domid: 0, connection: 'socket', id: 1 } as const;

/**
 * The record writeCommit makes for `before` -> `after` with these hints, decoded, for a request
 * on `path`. Decoded records compare with their size: a record has one form however it was made.
 */
function recordOf(before: Version, after: Version, hints: readonly string[] | undefined, touched?: Touched, path = '/x'): HistoryRecord {
  // A tiny first buffer: every record also exercises the writer's move to a larger one.
  const w = new RecordWriter(Buffer.alloc(16), (need) => Buffer.alloc(need * 2));
  writeCommit(w, before, after, { time: 5, who: WHO, requests: [{ op: 'write', path }] }, hints, 5, touched);
  return decodeRecord(Buffer.from(w.buf.subarray(w.start, w.pos)));
}

describe('writeCommit', () => {
  it("a plain request's record (from what it touched, or its one hinted path walked once) is the guided diff's, change for change", () => {
    const paths = ['/a', '/a/b', '/a/b/c', '/a/b/d', '/a/e', '/f', '/f/g/h'];
    const op = fc.oneof(
      fc.record({ op: fc.constant('write' as const), path: fc.constantFrom(...paths), value: fc.constantFrom('', 'x', 'y', 'z'.repeat(100)) }),
      fc.record({ op: fc.constant('mkdir' as const), path: fc.constantFrom(...paths) }),
      fc.record({ op: fc.constant('rm' as const), path: fc.constantFrom(...paths) }),
      fc.record({ op: fc.constant('set-perms' as const), path: fc.constantFrom(...paths), perms: fc.constantFrom(['n0'], ['n1', 'r0'], ['b2', 'w3']) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        let live: Store = createStore();
        for (const r of ops) {
          let out;
          try {
            out = execute(live, DOM0, DEFAULT_LIMITS, r as StoreRequest);
          } catch {
            continue;
          }
          const next = advance(out.store, live);
          if (next === live) continue;
          const hint = out.changes.map((c) => c.path);
          expect(hint).toHaveLength(1);
          const fast = recordOf(live, next, hint, undefined, r.path);
          // Two copies of the hint take the general path (the guided diff's trie of hints).
          const guided = recordOf(live, next, [hint[0]!, hint[0]!], undefined, r.path);
          expect(fast).toEqual(guided);
          // What the request says it touched gives the same record without a walk.
          expect(out.touched).toBeDefined();
          expect(recordOf(live, next, hint, out.touched, r.path)).toEqual(guided);
          // And the unguided diff finds the same changes (in its own order).
          const key = (rec: HistoryRecord) => rec.changes.map((c) => JSON.stringify(c)).sort();
          expect(key(fast)).toEqual(key(recordOf(live, next, undefined)));
          expect(fast.changes.length).toBeGreaterThan(0);
          live = next;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('lists a removed subtree node by node, parents first, and a created chain whole', () => {
    let s: Store = createStore();
    const run = (req: StoreRequest): HistoryRecord => {
      const out = execute(s, DOM0, DEFAULT_LIMITS, req);
      const next = advance(out.store, s);
      const rec = recordOf(s, next, out.changes.map((c) => c.path), out.touched, req.path);
      expect(rec).toEqual(recordOf(s, next, out.changes.map((c) => c.path), undefined, req.path));
      s = next;
      return rec;
    };
    expect(run({ op: 'write', path: '/a/b/c', value: 'v' }).changes.map((c) => `${c.kind} ${c.path} ${c.new}`)).toEqual([
      'added /a ',
      'added /a/b ',
      'added /a/b/c v',
    ]);
    run({ op: 'write', path: '/a/b/d', value: 'w' });
    expect(run({ op: 'rm', path: '/a' }).changes.map((c) => `${c.kind} ${c.path} ${c.old}`)).toEqual([
      'removed /a ',
      'removed /a/b ',
      'removed /a/b/c v',
      'removed /a/b/d w',
    ]);
  });
});
