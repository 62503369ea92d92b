/**
 * `at` (and with it diff, and `ls`/`read`/`tree` at a moment) undoes the records since the moment
 * asked, in passes of at most `span` bytes of records (store/history.ts; issue 14). A pass holds
 * the decoded changes of every path its records changed, so without that bound a guest filling the
 * window with changes of distinct paths (each write a new key) would make one privileged query
 * decode and hold all of them at once: hundreds of MiB for a 64 MiB window. This shows the passes
 * are bounded by bytes, and that a query is exact whatever the pass size. The same holds when a
 * moment is rebuilt forward from one an earlier query kept (redoAll: a timeline scrubbed forward).
 */
import { describe, expect, it, vi } from 'vitest';

/** Each pass of undoAll or redoAll: the bytes of the records it was given, and how many. */
const passes: { bytes: number; records: number; first: number; redo: boolean }[] = [];

vi.mock('../../store/history-record.js', async (load) => {
  const real = await load<typeof import('../../store/history-record.js')>();
  return {
    ...real,
    undoAll: (v: Parameters<typeof real.undoAll>[0], g: number, records: Iterable<{ bytes: number }>) => {
      const rs = [...records] as Parameters<typeof real.undoAll>[2] extends Iterable<infer R> ? R[] : never;
      passes.push({ bytes: rs.reduce((n, r) => n + r.bytes, 0), records: rs.length, first: rs[0]?.bytes ?? 0, redo: false });
      return real.undoAll(v, g, rs);
    },
    redoAll: (v: Parameters<typeof real.redoAll>[0], g: number, records: Iterable<{ bytes: number }>) => {
      const rs = [...records] as Parameters<typeof real.redoAll>[2] extends Iterable<infer R> ? R[] : never;
      passes.push({ bytes: rs.reduce((n, r) => n + r.bytes, 0), records: rs.length, first: rs[0]?.bytes ?? 0, redo: true });
      return real.redoAll(v, g, rs);
    },
  };
});

const { DOM0, DEFAULT_LIMITS, History, advance, createStore, execute, treeAt } = await import('../../store/index.js');

function guestChurn(span?: number): { h: InstanceType<typeof History>; snaps: Map<number, string> } {
  let live = createStore();
  const h = new History(live, span === undefined ? {} : { span }, 0);
  const snaps = new Map<number, string>();
  const dump = (s: typeof live): string => JSON.stringify(treeAt(s, '/', 10_000)!.nodes.map((n) => [n.path, n.value]));
  snaps.set(0, dump(live));
  for (let i = 0; i < 200; i++) {
    // Every write a key of its own, every fifth one removed again: all changes of distinct paths.
    const req = i % 5 === 4 ? { op: 'rm' as const, path: `/g/k${i - 1}` } : { op: 'write' as const, path: `/g/k${i}`, value: `v${i}` };
    const out = execute(live, DOM0, DEFAULT_LIMITS, req);
    const next = advance(out.store, live);
    h.record(live, next, { time: i, who: { domid: 7, connection: 'domain', id: 1 }, requests: [] }, out.changes.map((c) => c.path));
    live = next;
    snaps.set(live.generation, dump(live));
  }
  return { h, snaps };
}

describe('history: a query undoes in passes bounded by bytes', () => {
  it('splits the undo of a long span into passes of at most `span` bytes, and answers exactly', () => {
    const { h, snaps } = guestChurn(512);
    const bytesPerRecord = h.bytes / h.size;
    passes.length = 0;
    const v = h.at(0);
    expect(JSON.stringify(treeAt(v, '/', 10_000)!.nodes.map((n) => [n.path, n.value]))).toBe(snaps.get(0));
    // 200 records of ~bytesPerRecord bytes, at most 512 bytes a pass (one record at least).
    expect(passes.length).toBeGreaterThanOrEqual(Math.ceil((200 * bytesPerRecord) / 512));
    expect(passes.reduce((n, p) => n + p.records, 0)).toBe(200);
    for (const p of passes) {
      expect(p.records).toBeGreaterThan(0);
      expect(p.bytes).toBeLessThanOrEqual(Math.max(512, p.first));
    }
    // Every moment, through passes that end anywhere.
    for (const [g, snap] of snaps) expect(JSON.stringify(treeAt(h.at(g), '/', 10_000)!.nodes.map((n) => [n.path, n.value]))).toBe(snap);
  });

  it('undoes a short span of small records in one pass by default', () => {
    const { h, snaps } = guestChurn();
    passes.length = 0;
    expect(JSON.stringify(treeAt(h.at(0), '/', 10_000)!.nodes.map((n) => [n.path, n.value]))).toBe(snaps.get(0));
    expect(passes).toHaveLength(1);
  });

  it('redoes forward from a kept moment in passes of at most `span` bytes too, and answers exactly', () => {
    const { h, snaps } = guestChurn(512);
    const dump = (g: number): string => JSON.stringify(treeAt(h.at(g), '/', 10_000)!.nodes.map((n) => [n.path, n.value]));
    expect(dump(0)).toBe(snaps.get(0));
    passes.length = 0;
    // 0 is kept, and 80 is nearer to it than to the live version (200): redone from 0.
    expect(dump(80)).toBe(snaps.get(80));
    expect(passes.every((p) => p.redo)).toBe(true);
    expect(passes.reduce((n, p) => n + p.records, 0)).toBe(80);
    expect(passes.length).toBeGreaterThan(1);
    for (const p of passes) {
      expect(p.records).toBeGreaterThan(0);
      expect(p.bytes).toBeLessThanOrEqual(Math.max(512, p.first));
    }
  });

  it('keeps at most four rebuilt moments, whatever the queries', () => {
    // A privileged reader asking for many moments (a script walking the whole window) keeps four
    // versions at most: each one holds what one query holds, so they are the memory bound. (They
    // go once 4096 commits follow their last use: store/history-moments.test.ts.)
    const { h, snaps } = guestChurn();
    for (let g = 0; g < 200; g += 10) h.at(g);
    passes.length = 0;
    for (const g of [150, 160, 170, 180, 190]) h.at(g);
    // 150 was rebuilt again; the last four asked are kept and cost nothing.
    expect(passes.length).toBeGreaterThan(0);
    passes.length = 0;
    for (const g of [160, 170, 180, 190]) h.at(g);
    expect(passes).toHaveLength(0);
    for (const [g, snap] of snaps) expect(JSON.stringify(treeAt(h.at(g), '/', 10_000)!.nodes.map((n) => [n.path, n.value]))).toBe(snap);
  });
});
