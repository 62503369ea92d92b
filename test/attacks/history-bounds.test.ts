/**
 * History is a new path every commit takes and every query reads (issue 14): its memory and each
 * query's work must be bounded whatever guests write and whatever a privileged caller asks.
 * - A guest writing as fast as it can never grows the window past --history-records /
 *   --history-bytes, nor the memory holding it past twice the bytes: the oldest records go,
 *   and the oldest kept moment says so.
 * - A guest's largest values (4096 bytes) still give log entries that fit one reply: values are cut.
 * - Queries over big subtrees and long histories answer one reply, flagged `truncated` or with
 *   `next`, and a log filter matching nothing looks at a bounded number of records per call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAYLOAD_MAX } from '../../protocol/index.js';
import { DOM0, DEFAULT_LIMITS, History, QUERY_LIMITS, advance, createStore, execute, logOf, type Store } from '../../store/index.js';
import { guestWithHome, pipelineSettled, tally } from '../helpers/attack.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import type { Wire } from '../helpers/wire.js';
import { Op } from '../../protocol/index.js';

let d: RunningDaemon;
let c: Wire;

beforeAll(async () => {
  d = await startDaemon({ args: ['--history-records', '300', '--history-bytes', '256K', '--quota', 'nodes=5000'] });
  c = await d.connect();
});

afterAll(async () => {
  await d?.stop();
});

const info = async (): Promise<{ oldest: { generation: number }; latest: { generation: number }; records: number; bytes: number; allocated: number }> =>
  JSON.parse(await c.control('history', 'info'));

describe('the window', () => {
  it('stays within --history-records and --history-bytes under a guest\'s write flood', async () => {
    const g = await guestWithHome(d, c, 3);
    const big = 'x'.repeat(2000); // a guest's largest value (quota valueSize 2048)
    for (let round = 0; round < 4; round++) {
      const reqs = Array.from({ length: 250 }, (_, i) => [Op.WRITE, Buffer.from(`/local/domain/3/k${i % 20}\0${big}${round}${i}`, 'latin1')] as const);
      expect(tally(await pipelineSettled(g, reqs))).toEqual({ 'OK|': 250 });
      const w = await info();
      expect(w.records).toBeLessThanOrEqual(300);
      expect(w.bytes).toBeLessThanOrEqual(256 * 1024);
      // The memory behind them too: records live in chunks (store/history-ring.ts), of which at
      // most three are partly used or spare beyond the bytes kept.
      expect(w.allocated).toBeLessThanOrEqual(2 * 256 * 1024);
    }
    const w = await info();
    // 1000 commits of ~4 KB records (old and new values): bytes, not count, bound the window.
    expect(w.records).toBeLessThan(300);
    expect(w.oldest.generation).toBe(w.latest.generation - w.records);
    expect(await c.ask(Op.CONTROL, `history|at|${w.oldest.generation - 1}|read|/|`)).toBe('ENOENT');
    // Large values give entries that still fit one reply, cut and flagged.
    const page = await c.control('history', 'log', '/local/domain/3', 'limit=500');
    expect(page.length).toBeLessThan(PAYLOAD_MAX);
    const parsed = JSON.parse(page) as { entries: { changes: { newCut?: boolean }[] }[]; next?: number };
    expect(parsed.entries.length).toBeGreaterThan(0);
    expect(parsed.entries.length).toBeLessThan(500);
    expect(parsed.entries[0]!.changes[0]!.newCut).toBe(true);
    expect(parsed.next).toBeDefined();
    // The full value is still there for `at ... read`.
    expect((await c.control('history', 'at', String(w.latest.generation), 'read', '/local/domain/3/k19')).length).toBeGreaterThan(2000);
  });
});

describe('queries', () => {
  it('over a directory of 2000 nodes answer one reply, truncated', async () => {
    const reqs = Array.from({ length: 2000 }, (_, i) => [Op.WRITE, Buffer.from(`/big/n${i}\0v${i}`, 'latin1')] as const);
    expect(tally(await pipelineSettled(c, reqs))).toEqual({ 'OK|': 2000 });
    const after = (await info()).latest.generation;
    const before = after - 250; // within the 300-record window
    for (const args of [
      ['blame', '/big'],
      ['diff', String(before), String(after), '/big'],
      ['at', String(after), 'tree', '/big'],
      ['at', String(after), 'ls', '/big'],
      ['log', '/big', 'limit=500'],
    ]) {
      const text = await c.control('history', ...args);
      expect(text.length, args.join(' ')).toBeLessThan(PAYLOAD_MAX);
      const j = JSON.parse(text) as { truncated?: boolean; next?: number };
      expect(j.truncated === true || j.next !== undefined, args.join(' ')).toBe(true);
    }
  });
});

describe('a log filter that matches nothing', () => {
  it('looks at QUERY_LIMITS.scan records per call and says where to go on', () => {
    let live: Store = createStore();
    const h = new History(live, { records: QUERY_LIMITS.scan + 500 }, 0);
    for (let i = 1; i <= QUERY_LIMITS.scan + 500; i++) {
      const next = advance(execute(live, DOM0, DEFAULT_LIMITS, { op: 'write', path: '/k', value: String(i) }).store, live);
      h.record(live, next, { time: i, who: { domid: 0, connection: 'socket', id: 1 }, requests: [] }, ['/k']);
      live = next;
    }
    const first = logOf(h, { domid: 42 });
    expect(first.entries).toEqual([]);
    expect(first.next).toBe(live.generation - QUERY_LIMITS.scan + 1);
    const second = logOf(h, { domid: 42, before: first.next! });
    expect(second).toEqual({ entries: [] });
  });
});
