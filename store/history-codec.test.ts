import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { XsError } from '../protocol/index.js';
import { carries, CHANGED, connectionOf, decodeHead, decodeRecord, domidOf, encodeRecord, generationAndTime, visitChanges, writeRequestRecord, writeValueRecord } from './history-codec.js';
import { RecordWriter } from './history-ring.js';
import { isAncestorOrSelf } from './path.js';
import type { HistoryRecord } from './history-record.js';
import { parsePerms } from './perms.js';

const bytes = fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 300 });
const perms = fc.constantFrom(['n0'], ['r5', 'w0'], ['b65535', 'n7', 'r32757']).map(parsePerms);
const change = fc.oneof(
  fc.record({ path: bytes, kind: fc.constant('added' as const), new: bytes, newPerms: perms }),
  fc.record({ path: bytes, kind: fc.constant('removed' as const), old: bytes, oldPerms: perms }),
  fc.record({ path: bytes, kind: fc.constantFrom('changed' as const, 'perms' as const), old: bytes, oldPerms: perms, new: bytes, newPerms: perms }),
);
const record = fc.record({
  generation: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  time: fc.integer({ min: 0, max: 2 ** 45 }),
  who: fc.oneof(
    fc.record({ domid: fc.integer({ min: 0, max: 65535 }), connection: fc.constantFrom('socket' as const, 'domain' as const, 'ws-binary' as const) }),
    fc.record({ domid: fc.integer({ min: 0, max: 65535 }), connection: fc.constant('socket' as const), id: fc.integer({ min: 0, max: 2 ** 40 }), tx: fc.integer({ min: 0, max: 2 ** 32 - 1 }) }),
  ),
  requests: fc.array(fc.record({ op: fc.constantFrom('write' as const, 'rm' as const, 'release' as const), path: bytes }), { maxLength: 16 }),
  moreRequests: fc.boolean(),
  changes: fc.array(change, { maxLength: 20 }),
});

/**
 * Records in the shorter forms the encoder picks by itself: a request on the first change's path,
 * new permissions that are the old ones (the same list), as a plain write's record has them.
 */
const plain = fc.tuple(record, fc.boolean(), fc.boolean()).map(([r, samePath, samePerms]) => {
  const changes = samePerms ? r.changes.map((c) => (c.kind === 'changed' || c.kind === 'perms' ? { ...c, newPerms: c.oldPerms } : c)) : r.changes;
  const first = changes[0]?.path;
  const requests = samePath && first !== undefined ? [{ op: 'write' as const, path: first }, ...r.requests] : r.requests;
  return { ...r, changes, requests };
});
const anyRecord = fc.oneof(record, plain);

describe('history records in bytes', () => {
  it('name a plain write\'s path once and its unchanged permissions once, and read back the same', () => {
    const perms = parsePerms(['n0', 'r5']);
    const r = {
      generation: 7,
      time: 1_700_000_000_000,
      who: { domid: 3, connection: 'domain' as const, id: 12 },
      requests: [{ op: 'write' as const, path: '/local/domain/3/data/key' }],
      moreRequests: false,
      changes: [{ path: '/local/domain/3/data/key', kind: 'changed' as const, old: 'a', oldPerms: perms, new: 'b', newPerms: perms }],
      bytes: 0,
    };
    const short = encodeRecord(r);
    // The same with a request on another path (of the same length) and the permissions as a
    // distinct (equal) list: both are written in full.
    const other = {
      ...r,
      requests: [{ op: 'write' as const, path: '/local/domain/3/data/kez' }],
      changes: [{ ...r.changes[0]!, newPerms: parsePerms(['n0', 'r5']) }],
    };
    const full = encodeRecord(other);
    expect(decodeRecord(short)).toEqual({ ...r, bytes: short.length });
    expect(decodeRecord(full)).toEqual({ ...other, bytes: full.length });
    // The path is given once (its length and bytes), the permissions once (count and entries).
    const path = r.changes[0]!.path;
    expect(full.length - short.length).toBe(4 + path.length + 2 + 3 * perms.length);
    // A connection id past 32 bits is kept whole.
    const big = { ...r, who: { ...r.who, id: 2 ** 40 + 1 } };
    expect(decodeRecord(encodeRecord(big)).who).toEqual(big.who);
  });


  it('decode to what was encoded, whatever the bytes in paths and values', () => {
    fc.assert(
      fc.property(anyRecord, (r) => {
        const buf = encodeRecord({ ...r, bytes: 0 } as HistoryRecord);
        expect(decodeRecord(buf)).toEqual({ ...r, bytes: buf.length });
        // In place, within a larger buffer (as history keeps records: history-ring.ts).
        const inside = Buffer.concat([Buffer.from('xyz'), buf, Buffer.from('abcd')]);
        expect(decodeRecord(inside, 3, 3 + buf.length)).toEqual({ ...r, bytes: buf.length });
        expect(domidOf(inside, 3, 3 + buf.length)).toBe(r.who.domid);
        const within: string[] = [];
        visitChanges(inside, '/', (p) => void within.push(p), 3, 3 + buf.length);
        expect(within).toEqual(r.changes.map((c) => c.path));
        expect(decodeHead(buf)).toEqual({ generation: r.generation, time: r.time, who: r.who });
        // What scans read in place: the author, and the changes' paths and kinds.
        expect([domidOf(buf), connectionOf(buf)]).toEqual([r.who.domid, r.who.connection]);
        const seen: string[] = [];
        visitChanges(buf, '/', (p, k) => void seen.push(`${k} ${p}`));
        expect(seen).toEqual(r.changes.map((c) => `${c.kind} ${c.path}`));
        const under = r.changes[0]?.path ?? '/x';
        const some: string[] = [];
        visitChanges(buf, under, (p) => void some.push(p));
        expect(some).toEqual(r.changes.filter((c) => isAncestorOrSelf(under, c.path)).map((c) => c.path));
      }),
      { numRuns: 300 },
    );
  });

  it('refuse damaged bytes with EIO, never another error', () => {
    fc.assert(
      fc.property(anyRecord, fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 255 }), fc.boolean(), (r, at, value, cut) => {
        const buf = encodeRecord({ ...r, bytes: 0 } as HistoryRecord);
        const bad = cut ? buf.subarray(0, at % buf.length) : Buffer.from(buf);
        if (!cut) bad[at % buf.length] = value;
        try {
          decodeRecord(bad);
        } catch (e) {
          expect(e).toBeInstanceOf(XsError);
          expect((e as XsError).code).toBe('EIO');
        }
        try {
          visitChanges(bad, '/', () => false);
        } catch (e) {
          expect(e).toBeInstanceOf(XsError);
          expect((e as XsError).code).toBe('EIO');
        }
        // The generation and time a start copies records back by: what decodeHead reads, or EIO.
        const out = { generation: 0, time: 0 };
        try {
          generationAndTime(bad, out);
        } catch (e) {
          expect(e).toBeInstanceOf(XsError);
          expect((e as XsError).code).toBe('EIO');
          return;
        }
        let head;
        try {
          head = decodeHead(bad);
        } catch {
          return; // the author's fields damaged: refused when a query decodes it
        }
        expect(out).toEqual({ generation: head.generation, time: head.time });
      }),
      { numRuns: 1000 },
    );
    expect(() => decodeRecord(Buffer.from('{"g":1}'))).toThrow(/corrupt history record/);
  });

  it("writes a value rewrite's record with the lean writer byte for byte as the general one", () => {
    // history.ts routes a WRITE that changed a value and kept its permissions to `writeValueRecord`.
    const author = fc.record({
      domid: fc.integer({ min: 0, max: 65535 }),
      connection: fc.constantFrom('socket' as const, 'socket_ro' as const, 'domain' as const, 'http' as const, 'ws' as const, 'ws-binary' as const, 'internal' as const),
      id: fc.option(fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 2 ** 32, max: 2 ** 45 })), { nil: undefined }),
    });
    const pathOf = fc.string({ unit: fc.constantFrom('a', 'b', '/', '-'), minLength: 1, maxLength: 80 }).map((s) => `/${s}`);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.integer({ min: 0, max: 2 ** 45 }), author, pathOf, bytes, bytes, perms, (g, time, a, path, old, value, p) => {
        const payload = Buffer.from(`${path}\0${value}`, 'latin1');
        expect(carries(payload, path, value)).toBe(true);
        const general = new RecordWriter(Buffer.alloc(16), (n) => Buffer.alloc(n));
        writeRequestRecord(general, g, time, a.domid, a.connection, a.id, 'write', CHANGED, path, old, p, value, p, payload);
        const lean = new RecordWriter(Buffer.alloc(16), (n) => Buffer.alloc(n));
        writeValueRecord(lean, g, time, a.domid, a.connection, a.id, payload, old, p);
        const bytesOf = (w: RecordWriter): Buffer => w.buf.subarray(w.start, w.pos);
        expect(bytesOf(lean)).toEqual(bytesOf(general));
        const r = decodeRecord(bytesOf(lean), 0, lean.pos - lean.start);
        expect(r.changes).toEqual([{ path, kind: 'changed', old, oldPerms: p, new: value, newPerms: p }]);
      }),
      { numRuns: 300 },
    );
    // A payload not shaped as `path\0value` is not carried.
    expect(carries(Buffer.from('/a\0other'), '/a', 'y')).toBe(false);
    expect(carries(Buffer.from('/a-y'), '/a', 'y')).toBe(false);
    expect(carries(Buffer.from('/ab\0'), '/a', 'b\0')).toBe(false);
  });
});
