import { describe, expect, it, vi } from 'vitest';
import { HistoryRing } from './history-ring.js';
import fc from 'fast-check';
import { DOM0, guest, type Caller } from './caller.js';
import { forgetDomain } from './domain-cleanup.js';
import { DEFAULT_HISTORY, History } from './history.js';
import { INTERNAL, type ConnectionName, type Who } from './history-record.js';
import { blameOf, diffOf, logOf, parseMoment, treeAt, versionAt } from './history-query.js';
import { DEFAULT_LIMITS } from './limits.js';
import { XsNode } from './node.js';
import { execute, type Touched } from './operations.js';
import { formatPerms } from './perms.js';
import type { StoreRequest } from './request.js';
import { advance, createStore, type Store } from './store.js';
import { Transaction, commit } from './transaction.js';
import type { Version } from './history-record.js';

/** The ring's own `end`, for a test that fails some of its calls. */
const realEnd = HistoryRing.prototype.end;

/** The whole tree as text, one `path=value perms` line per node: what a snapshot compares. */
function dump(v: Version): string[] {
  const t = treeAt(v, '/', 1000)!;
  expect(t.truncated).toBe(false);
  const special = Object.entries(v.special).map(([k, p]) => `${k} ${formatPerms(p).join(',')}`);
  return [...t.nodes.map((n) => `${n.path}=${n.value} ${formatPerms(n.perms).join(',')}`), ...special];
}

/**
 * A daemon in miniature: a live store, its history, and a snapshot (dump) of every generation
 * taken as the script runs, with the clock the test moves.
 */
class Script {
  live: Store = createStore();
  readonly history: History;
  readonly snapshots = new Map<number, string[]>();
  readonly times = new Map<number, number>();
  now = Date.UTC(2026, 11, 5, 3, 0, 0);

  constructor(every: number, records = DEFAULT_HISTORY.records) {
    // Two checkpoints at most: older moments are rebuilt from the oldest one.
    this.history = new History(this.live, { every, checkpoints: 2, records }, this.now);
    this.snapshots.set(0, dump(this.live));
  }

  private install(next: Store, who: Who, requests: { op: StoreRequest['op'] | 'release'; path: string }[], hints?: string[]): void {
    const before = this.live;
    if (next === before) return;
    this.now += 1000;
    this.history.record(before, next, { time: this.now, who, requests }, hints);
    this.live = next;
    this.snapshots.set(next.generation, dump(next));
    this.times.set(next.generation, this.now);
  }

  req(caller: Caller, who: Who, req: StoreRequest): void {
    const out = execute(this.live, caller, DEFAULT_LIMITS, req);
    this.install(advance(out.store, this.live), who, [{ op: req.op, path: req.path }], out.changes.map((c) => c.path));
  }

  tx(caller: Caller, who: Who, reqs: StoreRequest[]): void {
    const tx = new Transaction(this.live, caller, DEFAULT_LIMITS);
    for (const r of reqs) tx.execute(r);
    const result = commit(this.live, tx);
    if (result.kind !== 'committed') throw new Error(result.kind);
    this.install(result.store, who, tx.updates(16), result.changes.map((c) => c.path));
  }

  release(domid: number): void {
    const { store } = forgetDomain(this.live, domid);
    this.install(advance(store, this.live), INTERNAL, [{ op: 'release', path: `/local/domain/${domid}` }]);
  }
}

const TOOLSTACK: Who = { domid: 0, connection: 'socket', id: 3 };
const w = (path: string, value: string): StoreRequest => ({ op: 'write', path, value });
const perms = (path: string, ...p: string[]): StoreRequest => ({ op: 'set-perms', path, perms: p });

/** What libxl does to start a guest with one vif, in one transaction (libxl_create.c, libxl_device.c). */
function createVm(s: Script, domid: number, name: string): void {
  const dom = `/local/domain/${domid}`;
  const vm = `/vm/${name}-${domid}`;
  s.tx(DOM0, { ...TOOLSTACK, tx: domid * 10 }, [
    w(dom, ''),
    perms(dom, `n0`, `r${domid}`),
    w(`${dom}/name`, name),
    w(`${dom}/vm`, vm),
    w(`${dom}/domid`, String(domid)),
    w(`${dom}/data`, ''),
    perms(`${dom}/data`, `n${domid}`),
    w(`${dom}/device`, ''),
    perms(`${dom}/device`, `n${domid}`),
    w(vm, ''),
    w(`${vm}/name`, name),
    w(`${vm}/uuid`, `uuid-${domid}`),
  ]);
}

/** A vif: the frontend under the guest, the backend under dom0, state 1 (Initialising). */
function attachVif(s: Script, domid: number): void {
  const fe = `/local/domain/${domid}/device/vif/0`;
  const be = `/local/domain/0/backend/vif/${domid}/0`;
  s.tx(DOM0, { ...TOOLSTACK, tx: domid * 10 + 1 }, [
    w(fe, ''),
    perms(fe, `n${domid}`, 'r0'),
    w(`${fe}/backend`, be),
    w(`${fe}/state`, '1'),
    w(be, ''),
    perms(be, 'n0', `r${domid}`),
    w(`${be}/frontend`, fe),
    w(`${be}/state`, '1'),
  ]);
}

function libxlScript(every: number): Script {
  const s = new Script(every);
  s.req(DOM0, TOOLSTACK, { op: 'mkdir', path: '/local/domain/0/backend' });
  createVm(s, 1, 'web');
  attachVif(s, 1);
  createVm(s, 2, 'db');
  attachVif(s, 2);
  // The guests' own writes, on their own rings.
  const g1: Who = { domid: 1, connection: 'domain', id: 7 };
  const g2: Who = { domid: 2, connection: 'domain', id: 8 };
  s.req(guest(1), g1, w('device/vif/0/state', '3'));
  s.req(guest(1), g1, w('data/ip', '10.0.0.1'));
  s.req(guest(2), g2, w('device/vif/0/state', '3'));
  s.req(DOM0, TOOLSTACK, w('/local/domain/0/backend/vif/1/0/state', '4'));
  s.req(guest(1), g1, w('device/vif/0/state', '4'));
  s.req(guest(1), g1, w('data/ip', '10.0.0.2'));
  s.req(guest(1), g1, w('data/ip', '10.0.0.2')); // no change: no record
  // Destroy domain 1 as libxl does: the backend and /vm go in a transaction, then release.
  s.tx(DOM0, { ...TOOLSTACK, tx: 19 }, [
    { op: 'rm', path: '/local/domain/0/backend/vif/1' },
    { op: 'rm', path: '/vm/web-1' },
  ]);
  s.release(1);
  s.req(DOM0, { domid: 0, connection: 'http', id: 12 }, perms('/local/domain/2/data', 'n2', 'r0'));
  return s;
}

describe('History: a libxl-like script', () => {
  for (const every of [1, 3, 1000]) {
    it(`gives the tree at every generation exactly as it was (a checkpoint every ${every})`, () => {
      const s = libxlScript(every);
      expect(s.history.latest()).toBe(s.live);
      expect(s.history.size).toBe(s.live.generation);
      for (const [g, snap] of s.snapshots) expect(dump(s.history.at(g))).toEqual(snap);
      // By time: the moment of each commit, and the second before the next.
      for (const [g, t] of s.times) {
        expect(dump(versionAt(s.history, { time: t }))).toEqual(s.snapshots.get(g));
        expect(dump(versionAt(s.history, { time: t + 999 }))).toEqual(s.snapshots.get(g));
      }
    });
  }

  it('diffs two generations with old and new values', () => {
    const s = libxlScript(2);
    const g = s.live.generation;
    // Generation 9: the backend went to state 4.
    const d = diffOf(s.history, { generation: 8 }, { generation: 9 }, '/local/domain/0');
    expect(d.changes).toEqual([
      { path: '/local/domain/0/backend/vif/1/0/state', kind: 'changed', old: '1', oldPerms: expect.anything(), new: '4', newPerms: expect.anything() },
    ]);
    const all = diffOf(s.history, { generation: 0 }, { generation: g });
    const paths = all.changes.map((c) => `${c.kind} ${c.path}`).sort();
    expect(paths).toContain('added /local/domain/2/device/vif/0/state');
    // The release removed what domain 1 owned, not /local/domain/1 itself (dom0's: spec §6.6).
    expect(paths).toContain('added /local/domain/1');
    expect(paths).not.toContain('added /local/domain/1/device');
    expect(all.truncated).toBe(false);
    const back = diffOf(s.history, { generation: 12 }, { generation: 13 });
    // The release: what domain 1 owned went, its ACL entry left what dom0 owns (inherited n0,r1).
    expect(back.changes.map((c) => `${c.kind} ${c.path}`).sort()).toEqual([
      'perms /local/domain/1',
      'perms /local/domain/1/domid',
      'perms /local/domain/1/name',
      'perms /local/domain/1/vm',
      'removed /local/domain/1/data',
      'removed /local/domain/1/device',
    ]);
    const name = back.changes.find((c) => c.path === '/local/domain/1/name')!;
    expect([formatPerms(name.oldPerms!), formatPerms(name.newPerms!), name.old, name.new]).toEqual([['n0', 'r1'], ['n0'], 'web', 'web']);
    // Bounded: one node asked, one listed, and it says there is more.
    const capped = diffOf(s.history, { generation: 0 }, { generation: g }, '/', 1);
    expect(capped.changes).toHaveLength(1);
    expect(capped.truncated).toBe(true);
  });

  it('logs a path: exactly its changes, newest first, with domid and connection kind', () => {
    const s = libxlScript(2);
    const log = logOf(s.history, { path: '/local/domain/1/device/vif/0/state' });
    expect(log.next).toBeUndefined();
    expect(log.entries.map((e) => [e.generation, e.who.domid, e.who.connection, e.who.tx, e.changes.map((c) => `${c.kind} ${c.old ?? '-'}>${c.new ?? '-'}`)])).toEqual([
      [13, 0, 'internal', undefined, ['removed 4>-']],
      [10, 1, 'domain', undefined, ['changed 3>4']],
      [6, 1, 'domain', undefined, ['changed 1>3']],
      [3, 0, 'socket', 11, ['added ->1']],
    ]);
    expect(log.entries[2]!.requests).toEqual([{ op: 'write', path: 'device/vif/0/state' }]);
    expect(log.entries[3]!.requests[0]).toEqual({ op: 'write', path: '/local/domain/1/device/vif/0' });
    // Filters: by domain, by kind, by time, and paging.
    expect(logOf(s.history, { domid: 2 }).entries.map((e) => e.generation)).toEqual([8]);
    // 13: the release dropped domain 1's ACL entry on /local/domain/1 (XSA-322).
    expect(logOf(s.history, { kind: 'perms' }).entries.map((e) => e.generation)).toEqual([14, 13]);
    expect(logOf(s.history, { connection: 'http' }).entries.map((e) => e.generation)).toEqual([14]);
    const t7 = s.times.get(7)!;
    expect(logOf(s.history, { since: t7, until: s.times.get(9)! }).entries.map((e) => e.generation)).toEqual([9, 8, 7]);
    const p1 = logOf(s.history, { limit: 6 });
    expect(p1.entries.map((e) => e.generation)).toEqual([14, 13, 12, 11, 10, 9]);
    const p2 = logOf(s.history, { limit: 6, before: p1.next! });
    expect(p2.entries.map((e) => e.generation)).toEqual([8, 7, 6, 5, 4, 3]);
    const p3 = logOf(s.history, { limit: 6, before: p2.next! });
    expect(p3.entries.map((e) => e.generation)).toEqual([2, 1]);
    expect(p3.next).toBeUndefined();
  });

  it('blames each node under a path with its last change', () => {
    const s = libxlScript(2);
    const b = blameOf(s.history, '/local/domain/2/device');
    expect(b.lines.map((l) => [l.path, l.generation, l.domid, l.connection, l.kind])).toEqual([
      ['/local/domain/2/device', 4, 0, 'socket', 'added'],
      ['/local/domain/2/device/vif', 5, 0, 'socket', 'added'],
      ['/local/domain/2/device/vif/0', 5, 0, 'socket', 'added'],
      ['/local/domain/2/device/vif/0/backend', 5, 0, 'socket', 'added'],
      ['/local/domain/2/device/vif/0/state', 8, 2, 'domain', 'changed'],
    ]);
    // Nodes older than history: no generation; the answer says from when history knows.
    const root = blameOf(s.history, '/tool');
    expect(root.lines).toEqual([{ path: '/tool' }, { path: '/tool/xenstored' }]);
    expect(root.oldest).toBe(0);
    expect(() => blameOf(s.history, '/nope')).toThrow(/ENOENT|no node/);
  });
});

describe('History: bounds', () => {
  function writes(n: number, options: { records?: number; bytes?: number; every?: number; checkpoints?: number }): { h: History; snaps: Store[] } {
    let live = createStore();
    const h = new History(live, options, 0);
    const snaps = [live];
    for (let i = 1; i <= n; i++) {
      const next = advance(execute(live, DOM0, DEFAULT_LIMITS, w(`/k/${i % 7}`, `v${i}`)).store, live);
      h.record(live, next, { time: i * 10, who: TOOLSTACK, requests: [] }, [`/k/${i % 7}`]);
      snaps.push((live = next));
    }
    return { h, snaps };
  }

  it('keeps at most `records` records; an older moment is an error naming the oldest kept', () => {
    const { h, snaps } = writes(50, { records: 10, every: 3 });
    expect(h.size).toBe(10);
    expect(h.oldest()).toEqual({ generation: 40, time: 400 });
    for (let g = 40; g <= 50; g++) expect(dump(h.at(g))).toEqual(dump(snaps[g]!));
    expect(() => h.at(39)).toThrow('generation 39 is older than the oldest kept, generation 40 (1970-01-01T00:00:00.400Z)');
    expect(() => h.generationAt(399)).toThrow(/older than the oldest kept, generation 40/);
    expect(h.generationAt(400)).toBe(40);
    expect(() => h.at(51)).toThrow(/after the latest/);
  });

  it('a window begun with no time: the oldest time unknown (no time is too old) until its first record goes', () => {
    const start = createStore();
    let live = start;
    const h = new History(live, { records: 3 });
    expect(h.oldest()).toEqual({ generation: 0, time: undefined });
    expect(h.generationAt(0)).toBe(0);
    for (let i = 1; i <= 3; i++) {
      const next = advance(execute(live, DOM0, DEFAULT_LIMITS, w('/k', `v${i}`)).store, live);
      h.record(live, next, { time: i * 10, who: TOOLSTACK, requests: [] }, ['/k']);
      live = next;
    }
    expect(h.oldest()).toEqual({ generation: 0, time: undefined });
    expect(h.generationAt(-5)).toBe(0);
    const next = advance(execute(live, DOM0, DEFAULT_LIMITS, w('/k', 'v4')).store, live);
    h.record(live, next, { time: 40, who: TOOLSTACK, requests: [] }, ['/k']);
    expect(h.oldest()).toEqual({ generation: 1, time: 10 });
    expect(() => h.generationAt(9)).toThrow(/older than the oldest kept, generation 1/);
    // Taken back to before its first record, the window no longer knows the time of its floor.
    h.rewind(start);
    expect(h.oldest()).toEqual({ generation: 0, time: undefined });
  });

  it('past a bound of 1,024 records or more, evicts a 1/1024th under it at once, never over it', () => {
    const { h, snaps } = writes(2048, { records: 2048 });
    expect(h.size).toBe(2048);
    const sizes: number[] = [];
    let live = snaps[snaps.length - 1]!;
    for (let i = 0; i < 4; i++) {
      const next = advance(execute(live, DOM0, DEFAULT_LIMITS, w('/k/x', `x${i}`)).store, live);
      h.record(live, next, { time: 1e6 + i, who: TOOLSTACK, requests: [] }, ['/k/x']);
      sizes.push(h.size);
      live = next;
    }
    // At the 2,049th record the window went to 2,046 (2,048 less 2), then grew by one a commit.
    expect(sizes).toEqual([2046, 2047, 2048, 2046]);
    expect(h.oldest().generation).toBe(live.generation - 2046);
    expect(dump(h.at(h.oldest().generation))).toEqual(dump(snaps[h.oldest().generation]!));
  });

  it('in a large window (400,000 records), evicts 256 at once at most: the commit that evicts stays quick', () => {
    // Versions as the recorder bench makes them (bench/history-recorder.ts): history reads their
    // generations and the nodes a write touched, not their trees.
    const start = createStore();
    const h = new History({ root: start.root, special: start.special, generation: 0 }, { records: 400_000 }, 0);
    const nodes = [XsNode.leaf('a', start.root.perms), XsNode.leaf('b', start.root.perms)];
    let live: Version = { root: start.root, special: start.special, generation: 0 };
    const sizes: number[] = [];
    for (let i = 1; i <= 400_002; i++) {
      const next: Version = { root: start.root, special: start.special, generation: i };
      const touched: Touched = { path: '/k', before: nodes[i & 1]!, after: nodes[(i + 1) & 1]! };
      h.recordRequest(live, next, i, 1, 'socket', 7, 'write', '/k', undefined, touched, Buffer.from(`/k\0${(i + 1) & 1 ? 'b' : 'a'}`));
      if (i >= 400_000) sizes.push(h.size);
      live = next;
    }
    // A 1/1024th of 400,000 is 390: capped at 256.
    expect(sizes).toEqual([400_000, 400_000 - 256, 400_000 - 255]);
  });

  it('keeps at most `bytes` of records', () => {
    const { h } = writes(100, { bytes: 2000 });
    expect(h.bytes).toBeLessThanOrEqual(2000);
    expect(h.size).toBeGreaterThan(1);
    expect(h.size).toBeLessThan(100);
    expect(h.oldest().generation).toBe(100 - h.size);
  });

  it('rewinds: newer records go and their generations are given again', () => {
    const { h, snaps } = writes(10, { every: 2 });
    h.rewind(snaps[6]!);
    expect(h.latest()).toBe(snaps[6]);
    expect(h.size).toBe(6);
    expect(() => h.at(7)).toThrow(/after the latest/);
    expect(dump(h.at(2))).toEqual(dump(snaps[2]!));
    const again = advance(execute(snaps[6]!, DOM0, DEFAULT_LIMITS, w('/m', 'x')).store, snaps[6]!);
    h.record(snaps[6]!, again, { time: 1000, who: TOOLSTACK, requests: [] });
    expect(h.at(7)).toBe(again);
    expect(dump(h.at(6))).toEqual(dump(snaps[6]!));
  });

  it('restores records read back before the ones it made since (a restart reads them after its first replies)', () => {
    // Generations 1-30 made by an earlier process; this one started at 30 and made 31-35 before reading them back.
    const { h: earlier, snaps } = writes(40, {});
    const disk = Array.from({ length: 30 }, (_, i) => Buffer.from(earlier.encoded(i + 1)));
    const later = (records?: number) => {
      const h = new History(snaps[30]!, records === undefined ? {} : { records }, 295);
      for (let g = 31; g <= 35; g++) h.record(snaps[g - 1]!, snaps[g]!, { time: g * 10, who: TOOLSTACK, requests: [] }, [`/k/${g % 7}`]);
      return h;
    };
    const h = later();
    expect(() => h.restore(disk.slice(0, 29))).toThrow('history records end at 29, not at 30');
    h.restore(disk, 0);
    expect(h.size).toBe(35);
    expect(h.oldest()).toEqual({ generation: 0, time: 0 });
    expect(h.all()).toEqual(earlier.all().slice(0, 35));
    for (let g = 0; g <= 35; g++) expect(dump(h.at(g))).toEqual(dump(snaps[g]!));
    // Within the window's bounds: the oldest go, the ones made since stay.
    const small = later(8);
    small.restore(disk, 0);
    expect(small.size).toBe(8);
    expect(small.oldest()).toEqual({ generation: 27, time: 270 });
    expect(dump(small.at(27))).toEqual(dump(snaps[27]!));
    expect(() => small.at(26)).toThrow(/older than the oldest kept, generation 27/);
  });

  it('keeps its own window when records read back cannot all be copied (memory), and starts again when its own cannot', () => {
    const { h: earlier, snaps } = writes(13, {});
    const disk = Array.from({ length: 10 }, (_, i) => Buffer.from(earlier.encoded(i + 1)));
    const failing = (at: number, run: () => void) => {
      let calls = 0;
      const end = vi.spyOn(HistoryRing.prototype, 'end').mockImplementation(function (this: HistoryRing, time: number) {
        if (++calls === at) throw new RangeError('Array buffer allocation failed');
        return realEnd.call(this, time);
      });
      try {
        expect(run).toThrow('Array buffer allocation failed');
      } finally {
        end.mockRestore();
      }
    };
    // The fifth record read back: copied into a ring of their own, so the window is as it was.
    const h = new History(snaps[10]!, {}, 95);
    h.record(snaps[10]!, snaps[11]!, { time: 110, who: TOOLSTACK, requests: [] }, ['/k/4']);
    failing(5, () => h.restore(disk, 0));
    expect(h.oldest()).toEqual({ generation: 10, time: 95 });
    expect(h.all().map((r) => r.generation)).toEqual([11]);
    h.record(snaps[11]!, snaps[12]!, { time: 120, who: TOOLSTACK, requests: [] }, ['/k/5']);
    expect(dump(h.at(10))).toEqual(dump(snaps[10]!));
    // Its own first record, copied after the ten: nothing half-kept, the window starts at the live version.
    failing(11, () => h.restore(disk, 0));
    expect(h.size).toBe(0);
    expect(h.oldest().generation).toBe(12);
    h.record(snaps[12]!, snaps[13]!, { time: 130, who: TOOLSTACK, requests: [] }, ['/k/6']);
    expect(dump(h.at(12))).toEqual(dump(snaps[12]!));
    expect(h.all().map((r) => r.generation)).toEqual([13]);
  });

  it('restores a step at a time while it goes on taking commits, which follow the records read back', () => {
    const { h: earlier, snaps } = writes(40, {});
    const disk = Array.from({ length: 30 }, (_, i) => Buffer.from(earlier.encoded(i + 1)));
    for (const records of [undefined, 12]) {
      const h = new History(snaps[30]!, records === undefined ? {} : { records }, 295);
      const steps = h.restoreSteps(disk, 0, 4);
      let g = 30;
      let stops = 0;
      // A commit between every two steps; the window answers as it did until the last.
      for (let r = steps.next(); r.done !== true; r = steps.next()) {
        stops++;
        if (g < 40) {
          h.record(snaps[g]!, snaps[g + 1]!, { time: (g + 1) * 10, who: TOOLSTACK, requests: [] }, [`/k/${(g + 1) % 7}`]);
          g++;
        }
        expect(h.oldest().generation).toBe(records === undefined || g - 30 <= records ? 30 : g - records);
      }
      // Thirty records checked, then copied: a stop every four of the sixty.
      expect(stops).toBe(15);
      expect(h.latest()).toBe(snaps[40]);
      const kept = records ?? 40;
      expect(h.size).toBe(kept);
      expect(h.all()).toEqual(earlier.all().slice(40 - kept, 40));
      for (let v = 40 - kept; v <= 40; v++) expect(dump(h.at(v))).toEqual(dump(snaps[v]!));
    }
  });

  it('follows its latest version with records read back (a live update: those written after the pre-copy)', () => {
    const { h: earlier, snaps } = writes(40, {});
    const disk = Array.from({ length: 40 }, (_, i) => Buffer.from(earlier.encoded(i + 1)));
    // Built at generation 30 from the records up to it, then given 31-40 and the version they end at.
    const h = new History(snaps[30]!, {}, 0);
    h.restore(disk.slice(0, 30), 0);
    expect(() => h.follow(disk.slice(31, 40), snaps[40]!)).toThrow('history records jump to 32 after 30');
    expect(() => h.follow(disk.slice(30, 39), snaps[40]!)).toThrow('history records end at 39, not at 40');
    h.follow(disk.slice(30), snaps[40]!);
    expect(h.latest()).toBe(snaps[40]);
    expect(h.all()).toEqual(earlier.all());
    for (const g of [0, 17, 30, 31, 39, 40]) expect(dump(h.at(g))).toEqual(dump(snaps[g]!));
    // Within the window's bounds: the oldest go.
    const small = new History(snaps[30]!, { records: 8 }, 0);
    small.restore(disk.slice(0, 30), 0);
    small.follow(disk.slice(30), snaps[40]!);
    expect(small.size).toBe(8);
    expect(small.oldest().generation).toBe(32);
    expect(dump(small.at(32))).toEqual(dump(snaps[32]!));
  });

  it('refuses a record that does not follow the latest', () => {
    const { h, snaps } = writes(3, {});
    expect(() => h.record(snaps[1]!, snaps[2]!, { time: 0, who: TOOLSTACK, requests: [] })).toThrow(RangeError);
    expect(h.record(snaps[3]!, snaps[3]!, { time: 0, who: TOOLSTACK, requests: [] })).toBeUndefined();
  });

  it('records a plain request with recordRequest as record does, record for record', () => {
    let live = createStore();
    const a = new History(live, {}, 0);
    const b = new History(live, {}, 0);
    const who: Who = Object.freeze({ domid: 3, connection: 'domain', id: 9 });
    const reqs: StoreRequest[] = [w('/a/b', 'x'), w('/a/b', 'y'), { op: 'rm', path: '/a' }, w('/c', 'z')];
    for (const [i, req] of reqs.entries()) {
      const out = execute(live, DOM0, DEFAULT_LIMITS, req);
      const next = advance(out.store, live);
      const hints = out.changes.map((c) => c.path);
      a.record(live, next, { time: 10 + i, who, requests: [{ op: req.op, path: req.path }] }, hints, out.touched);
      // Every other one without what it touched: the hinted walk gives the same record.
      b.recordRequest(live, next, 10 + i, who.domid, who.connection, who.id, req.op, req.path, hints, i % 2 === 0 ? out.touched : undefined);
      live = next;
    }
    expect(b.all()).toEqual(a.all());
    expect(b.all()[0]!.requests).toEqual([{ op: 'write', path: '/a/b' }]);
    expect(b.bytes).toBe(a.bytes);
  });

  it("writes a plain request's one change in one pass with the bytes record writes, for every kind and author", () => {
    // history-codec.ts `writeRequestRecord`: each request below takes the one-pass form (one
    // change on the request's own path) or falls back to `record`'s; both must give `record`'s bytes.
    let live = createStore();
    const a = new History(live, {}, 0);
    const b = new History(live, {}, 0);
    const long = 'v'.repeat(100);
    const reqs: [Caller, StoreRequest][] = [
      [DOM0, w('/a', 'x')], // made, no children
      [DOM0, w('/a', 'y')], // value changed
      [DOM0, { op: 'set-perms', path: '/a', perms: ['b0', 'r7'] }], // permissions only
      [DOM0, w('/a', long)], // a value copied by Node rather than the loop
      [DOM0, w('/a', 'y')],
      [DOM0, { op: 'mkdir', path: '/d' }], // made, empty value
      [DOM0, w('/d/e/f', 'q')], // several nodes made: the general way
      [DOM0, { op: 'rm', path: '/d/e/f' }], // removed, no children
      [DOM0, { op: 'rm', path: '/d' }], // a subtree removed: the general way
      [DOM0, { op: 'set-perms', path: '@releaseDomain', perms: ['n0', 'r5'] }], // a special name's: the general way
      [guest(5), w('data/k', 'v')], // a relative path: the request names it apart from the change
      [DOM0, { op: 'rm', path: '/a' }],
    ];
    const authors: [number, ConnectionName, number | undefined][] = [
      [0, 'socket', 1],
      [0, 'socket_ro', 2],
      [5, 'domain', 2 ** 32 - 1],
      [0, 'http', 2 ** 40],
      [0, 'ws', 7],
      [0, 'ws-binary', 8],
      [0, 'internal', undefined],
    ];
    // The guest's home, made by the toolstack first.
    for (const req of [w('/local/domain/5/data', ''), { op: 'set-perms', path: '/local/domain/5/data', perms: ['b5'] } as const]) {
      const next = advance(execute(live, DOM0, DEFAULT_LIMITS, req).store, live);
      for (const h of [a, b]) h.record(live, next, { time: 0, who: INTERNAL, requests: [] }, [req.path]);
      live = next;
    }
    let made = 0;
    for (const [i, [caller, req]] of reqs.entries()) {
      const out = execute(live, caller, DEFAULT_LIMITS, req);
      const next = advance(out.store, live);
      if (next === live) continue;
      made++;
      const [domid, connection, id] = authors[i % authors.length]!;
      const who: Who = id === undefined ? { domid, connection } : { domid, connection, id };
      const hints = out.changes.map((c) => c.path);
      a.record(live, next, { time: 100 + i, who, requests: [{ op: req.op, path: req.path }] }, hints, out.touched);
      b.recordRequest(live, next, 100 + i, domid, connection, id, req.op, req.path, hints, out.touched);
      expect(b.encoded(next.generation)).toEqual(a.encoded(next.generation));
      live = next;
    }
    expect(made).toBe(reqs.length);
    expect(b.all()).toEqual(a.all());
    expect(b.all().map((r) => r.changes[0]!.kind).slice(2, 8)).toEqual(['added', 'changed', 'perms', 'changed', 'changed', 'added']);
  });

  it("copies a WRITE's payload as one block and reads it back as the record it would otherwise be", () => {
    // history-codec.ts's joined change: path and new value from the request's bytes. The record
    // read back, the log and blame must be the field-by-field record's; a payload that is not
    // exactly `path\0value` of that write is ignored.
    let live = createStore();
    const a = new History(live, {}, 0);
    const b = new History(live, {}, 0);
    const writes: [string, string][] = [
      ['/a', 'x'], // made
      ['/a', 'y'], // changed
      ['/a', ''], // an empty value
      ['/a', 'z\0with\0nuls\xff'], // NULs and a high byte in the value
      ['/b', 'v'.repeat(300)], // a long value
      ['/a', 'x'],
    ];
    for (const [i, [path, value]] of writes.entries()) {
      const req = w(path, value);
      const out = execute(live, DOM0, DEFAULT_LIMITS, req);
      const next = advance(out.store, live);
      a.record(live, next, { time: 10 + i, who: { domid: 0, connection: 'socket', id: 4 }, requests: [{ op: 'write', path }] }, undefined, out.touched);
      const payload = Buffer.from(`${path}\0${value}`, 'latin1');
      b.recordRequest(live, next, 10 + i, 0, 'socket', 4, 'write', path, undefined, out.touched, payload);
      // Joined: three bytes shorter (one length instead of two, and the NUL).
      expect(b.encoded(next.generation).length).toBe(a.encoded(next.generation).length - 3);
      live = next;
    }
    expect(b.all()).toEqual(a.all().map((r) => ({ ...r, bytes: r.bytes - 3 })));
    expect(logOf(b, { path: '/a' })).toEqual(logOf(a, { path: '/a' }));
    expect(logOf(b, { path: '/b' }).entries.map((e) => e.generation)).toEqual([5]);
    expect(blameOf(b, '/')).toEqual(blameOf(a, '/'));
    expect(dump(versionAt(b, parseMoment('3')))).toEqual(dump(versionAt(a, parseMoment('3'))));

    // Not this write's bytes (another value, a relative path's, no NUL where the path ends): field by field.
    for (const payload of ['/a\0other', 'a\0y', '/a-y']) {
      const req = w('/a', 'y');
      const out = execute(live, DOM0, DEFAULT_LIMITS, req);
      const next = advance(out.store, live);
      a.record(live, next, { time: 20, who: { domid: 0, connection: 'socket', id: 4 }, requests: [{ op: 'write', path: '/a' }] }, undefined, out.touched);
      b.recordRequest(live, next, 20, 0, 'socket', 4, 'write', '/a', undefined, out.touched, Buffer.from(payload, 'latin1'));
      expect(b.encoded(next.generation)).toEqual(a.encoded(next.generation));
      const back = advance(execute(next, DOM0, DEFAULT_LIMITS, w('/a', 'x')).store, next);
      for (const h of [a, b]) h.record(next, back, { time: 21, who: INTERNAL, requests: [] }, ['/a']);
      live = back;
    }
  });

  it('keeps records in time order when the clock steps back', () => {
    let live = createStore();
    const h = new History(live, {}, 0);
    for (const t of [100, 50, 200]) {
      const next = advance(execute(live, DOM0, DEFAULT_LIMITS, w('/t', String(t))).store, live);
      h.record(live, next, { time: t, who: TOOLSTACK, requests: [] });
      live = next;
    }
    expect(h.all().map((r) => r.time)).toEqual([100, 100, 200]);
    expect(h.generationAt(150)).toBe(2);
  });

  it('parses moments: generations and RFC 3339 times only', () => {
    expect(parseMoment('42')).toEqual({ generation: 42 });
    expect(parseMoment('2026-12-05T03:00:00Z')).toEqual({ time: Date.UTC(2026, 11, 5, 3) });
    expect(parseMoment('2026-12-05T04:00:00+01:00')).toEqual({ time: Date.UTC(2026, 11, 5, 3) });
    for (const bad of ['', '-1', 'May', '2026-12-05', '1e3', '2026-13-45T00:00:00Z']) expect(() => parseMoment(bad)).toThrow(/EINVAL|not a generation/);
  });

  it('answers every kept generation exactly for random scripts (property)', () => {
    const paths = ['/a', '/a/b', '/a/b/c', '/d', '/d/e'];
    const op = fc.oneof(
      fc.record({ op: fc.constant('write' as const), path: fc.constantFrom(...paths), value: fc.constantFrom('', 'x', 'y') }),
      fc.record({ op: fc.constant('rm' as const), path: fc.constantFrom(...paths) }),
      fc.record({ op: fc.constant('set-perms' as const), path: fc.constantFrom(...paths), perms: fc.constantFrom(['n0'], ['n1', 'r0'], ['b2']) }),
      // A special name's permissions are history too (undone apart from the tree).
      fc.record({ op: fc.constant('set-perms' as const), path: fc.constant('@releaseDomain'), perms: fc.constantFrom(['n0'], ['n0', 'r5']) }),
    );
    fc.assert(
      // `every` 1-5 or none at all; `span` down to one record per pass of undoAll.
      fc.property(fc.array(op, { maxLength: 30 }), fc.constantFrom(1, 2, 3, 5, Infinity), fc.integer({ min: 1, max: 40 }), fc.constantFrom(1, 100, 300, 2 ** 20), (ops, every, records, span) => {
        let live = createStore();
        const h = new History(live, { every, checkpoints: 2, records, span }, 0);
        const snaps = new Map<number, string[]>([[0, dump(live)]]);
        for (const r of ops) {
          let out;
          try {
            out = execute(live, DOM0, DEFAULT_LIMITS, r as StoreRequest);
          } catch {
            continue;
          }
          const next = advance(out.store, live);
          h.record(live, next, { time: next.generation, who: TOOLSTACK, requests: [] }, out.changes.map((c) => c.path));
          live = next;
          snaps.set(live.generation, dump(live));
        }
        for (const [g, snap] of snaps) {
          if (g < h.oldest().generation) expect(() => h.at(g)).toThrow(/older than the oldest kept/);
          else expect(dump(h.at(g))).toEqual(snap);
        }
      }),
      { numRuns: 300 },
    );
  });
});
