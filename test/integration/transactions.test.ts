/**
 * Transactions over real sockets (spec §9, §16 checks 18–22; XSA-421, XSA-440): protocol errors,
 * snapshot isolation both ways, EAGAIN on a real conflict, disjoint commits, parallel "VM start"
 * transactions without EAGAIN, and transactions dying with their connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/poll.js';
import { runScenario } from '../helpers/scenario.js';
import type { Wire } from '../helpers/wire.js';

let d: RunningDaemon;
let a: Wire;
let b: Wire;

beforeAll(async () => {
  d = await startDaemon();
  [a, b] = await Promise.all([d.connect(), d.connect()]);
});

afterAll(async () => {
  await d?.stop();
});

describe('protocol (§9.1, §16.18)', () => {
  it('scenario', async () => {
    await runScenario({ a, b }, [
      ['a', 0, 'TRANSACTION_START', '|', '$t'],
      // No nesting; an unknown id is ENOENT.
      ['a', '$t', 'TRANSACTION_START', '|', 'EBUSY'],
      ['a', 999, 'TRANSACTION_START', '|', 'ENOENT'],
      ['a', 999, 'READ', '/|', 'ENOENT'],
      ['a', 999, 'WRITE', '/tp/x|v', 'ENOENT'],
      ['a', 999, 'TRANSACTION_END', 'T|', 'ENOENT'],
      // END outside a transaction.
      ['a', 0, 'TRANSACTION_END', 'T|', 'ENOENT'],
      ['a', 0, 'TRANSACTION_END', 'F|', 'ENOENT'],
      // Ids are per connection: b cannot use a's.
      ['b', '$t', 'READ', '/|', 'ENOENT'],
      ['b', '$t', 'TRANSACTION_END', 'T|', 'ENOENT'],
      // END takes exactly T or F.
      ['a', '$t', 'TRANSACTION_END', 'X|', 'EINVAL'],
      ['a', '$t', 'TRANSACTION_END', 'T', 'EINVAL'],
      ['a', '$t', 'TRANSACTION_END', 'TF|', 'EINVAL'],
      ['a', '$t', 'TRANSACTION_END', '', 'EINVAL'],
      // Every tree operation works inside.
      ['a', '$t', 'WRITE', '/tp/x|1', 'OK|'],
      ['a', '$t', 'MKDIR', '/tp/m|', 'OK|'],
      ['a', '$t', 'DIRECTORY', '/tp|', 'm|x|'],
      ['a', '$t', 'SET_PERMS', '/tp/x|n0|r4|', 'OK|'],
      ['a', '$t', 'GET_PERMS', '/tp/x|', 'n0|r4|'],
      ['a', '$t', 'DIRECTORY_PART', '/tp|0|', /^\d+\|m\|x\|\|$/],
      ['a', '$t', 'RM', '/tp/m|', 'OK|'],
      ['a', '$t', 'READ', '/tp/m|', 'ENOENT'],
      ['a', '$t', 'GET_DOMAIN_PATH', '3|', '/local/domain/3|'],
      ['a', '$t', 'WRITE', 'tprel|r', 'OK|'],
      ['a', '$t', 'READ', '/local/domain/0/tprel|', 'r'],
      // Errors inside do not end the transaction.
      ['a', '$t', 'READ', '/tp/none|', 'ENOENT'],
      ['a', '$t', 'WRITE', '/tp//bad|v', 'EINVAL'],
      ['b', 0, 'READ', '/tp/x|', 'ENOENT'],
      ['a', '$t', 'TRANSACTION_END', 'T|', 'OK|'],
      ['b', 0, 'READ', '/tp/x|', '1'],
      ['b', 0, 'GET_PERMS', '/tp/x|', 'n0|r4|'],
      ['b', 0, 'READ', 'tprel|', 'r'],
      ['b', 0, 'READ', '/tp/m|', 'ENOENT'],
      // The id is gone after END.
      ['a', '$t', 'READ', '/tp/x|', 'ENOENT'],
      ['a', '$t', 'TRANSACTION_END', 'T|', 'ENOENT'],
      // Abort discards everything.
      ['a', 0, 'TRANSACTION_START', '|', '$u'],
      ['a', '$u', 'WRITE', '/tp/x|aborted', 'OK|'],
      ['a', '$u', 'WRITE', '/tp/new|aborted', 'OK|'],
      ['a', '$u', 'RM', '/tprel|', 'OK|'],
      ['a', '$u', 'TRANSACTION_END', 'F|', 'OK|'],
      ['b', 0, 'READ', '/tp/x|', '1'],
      ['b', 0, 'READ', '/tp/new|', 'ENOENT'],
      ['b', 0, 'READ', 'tprel|', 'r'],
      ['a', '$u', 'TRANSACTION_END', 'F|', 'ENOENT'],
    ]);
  });

  it('ids are non-zero and distinct among the open transactions of a connection', async () => {
    const ids = [];
    for (let i = 0; i < 20; i++) ids.push(await a.txStart());
    expect(ids.every((x) => x > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(await a.txEnd(id, false)).toBe('OK|');
  });
});

describe('isolation (§9.1, §16.19, test-xenstore "ta rmw")', () => {
  it('outside writes are invisible inside, inside writes invisible outside until commit', async () => {
    await runScenario({ a, b }, [
      ['a', 0, 'WRITE', '/iso/v|0', 'OK|'],
      ['a', 0, 'WRITE', '/iso/keep|k', 'OK|'],
      ['a', 0, 'TRANSACTION_START', '|', '$t'],
      ['a', '$t', 'READ', '/iso/v|', '0'],
      ['b', 0, 'WRITE', '/iso/other|b', 'OK|'],
      ['b', 0, 'WRITE', '/iso/keep|changed', 'OK|'],
      ['b', 0, 'RM', '/iso/v|', 'OK|'],
      // The snapshot: v still there, b's node absent, keep unchanged.
      ['a', '$t', 'READ', '/iso/v|', '0'],
      ['a', '$t', 'READ', '/iso/other|', 'ENOENT'],
      ['a', '$t', 'READ', '/iso/keep|', 'k'],
      ['a', '$t', 'DIRECTORY', '/iso|', 'keep|v|'],
      ['a', '$t', 'WRITE', '/iso/mine|a', 'OK|'],
      ['b', 0, 'READ', '/iso/mine|', 'ENOENT'],
      ['b', 0, 'DIRECTORY', '/iso|', 'keep|other|'],
      ['a', 0, 'READ', '/iso/mine|', 'ENOENT'],
      // It read v, which b removed: the commit conflicts.
      ['a', '$t', 'TRANSACTION_END', 'T|', 'EAGAIN'],
      ['b', 0, 'READ', '/iso/mine|', 'ENOENT'],
      ['b', 0, 'DIRECTORY', '/iso|', 'keep|other|'],
    ]);
  });

  it('a committed transaction is seen by everyone, including later transactions', async () => {
    await runScenario({ a, b }, [
      ['b', 0, 'TRANSACTION_START', '|', '$old'],
      ['b', '$old', 'READ', '/iso/keep|', 'changed'],
      ['a', 0, 'TRANSACTION_START', '|', '$t'],
      ['a', '$t', 'WRITE', '/iso/committed|yes', 'OK|'],
      ['a', '$t', 'TRANSACTION_END', 'T|', 'OK|'],
      ['b', 0, 'READ', '/iso/committed|', 'yes'],
      ['b', '$old', 'READ', '/iso/committed|', 'ENOENT'],
      ['b', 0, 'TRANSACTION_START', '|', '$new'],
      ['b', '$new', 'READ', '/iso/committed|', 'yes'],
      ['b', '$new', 'TRANSACTION_END', 'T|', 'OK|'],
      // A transaction that only read commits even though what it read changed (never EAGAIN).
      ['b', '$old', 'TRANSACTION_END', 'T|', 'OK|'],
    ]);
  });
});

describe('conflicts (§9, §16.20, test-xenstore "ta err")', () => {
  it('read A, outside write A, write A in the transaction: EAGAIN, the outside value survives', async () => {
    await runScenario({ a, b }, [
      ['a', 0, 'WRITE', '/conf/A|start', 'OK|'],
      ['a', 0, 'TRANSACTION_START', '|', '$t'],
      ['a', '$t', 'READ', '/conf/A|', 'start'],
      ['b', 0, 'WRITE', '/conf/A|outside', 'OK|'],
      ['a', '$t', 'WRITE', '/conf/A|inside', 'OK|'],
      ['a', '$t', 'WRITE', '/conf/B|inside', 'OK|'],
      ['a', '$t', 'TRANSACTION_END', 'T|', 'EAGAIN'],
      ['a', 0, 'READ', '/conf/A|', 'outside'],
      ['a', 0, 'READ', '/conf/B|', 'ENOENT'],
      // EAGAIN ends the transaction.
      ['a', '$t', 'TRANSACTION_END', 'T|', 'ENOENT'],
      // The retry succeeds.
      ['a', 0, 'TRANSACTION_START', '|', '$r'],
      ['a', '$r', 'READ', '/conf/A|', 'outside'],
      ['a', '$r', 'WRITE', '/conf/A|retried', 'OK|'],
      ['a', '$r', 'TRANSACTION_END', 'T|', 'OK|'],
      ['b', 0, 'READ', '/conf/A|', 'retried'],
    ]);
  });

  it('a listing read in the transaction that changed outside: EAGAIN', async () => {
    await runScenario({ a, b }, [
      ['a', 0, 'MKDIR', '/conf/dir|', 'OK|'],
      ['a', 0, 'TRANSACTION_START', '|', '$t'],
      ['a', '$t', 'DIRECTORY', '/conf/dir|', ''],
      ['b', 0, 'WRITE', '/conf/dir/theirs|b', 'OK|'],
      ['a', '$t', 'WRITE', '/conf/dir/first|a', 'OK|'],
      ['a', '$t', 'TRANSACTION_END', 'T|', 'EAGAIN'],
      ['a', 0, 'DIRECTORY', '/conf/dir|', 'theirs|'],
    ]);
  });

  it('two transactions writing the same node after reading it: the second EAGAINs', async () => {
    await runScenario({ a, b }, [
      ['a', 0, 'WRITE', '/conf/ctr|0', 'OK|'],
      ['a', 0, 'TRANSACTION_START', '|', '$ta'],
      ['b', 0, 'TRANSACTION_START', '|', '$tb'],
      ['a', '$ta', 'READ', '/conf/ctr|', '0'],
      ['b', '$tb', 'READ', '/conf/ctr|', '0'],
      ['a', '$ta', 'WRITE', '/conf/ctr|1', 'OK|'],
      ['b', '$tb', 'WRITE', '/conf/ctr|1', 'OK|'],
      ['a', '$ta', 'TRANSACTION_END', 'T|', 'OK|'],
      ['b', '$tb', 'TRANSACTION_END', 'T|', 'EAGAIN'],
      ['b', 0, 'READ', '/conf/ctr|', '1'],
    ]);
  });

  it('a transaction that removed a node while another created below it', async () => {
    await runScenario({ a, b }, [
      ['a', 0, 'WRITE', '/conf/rm/x|1', 'OK|'],
      ['a', 0, 'TRANSACTION_START', '|', '$t'],
      ['a', '$t', 'DIRECTORY', '/conf/rm|', 'x|'],
      ['a', '$t', 'RM', '/conf/rm|', 'OK|'],
      ['b', 0, 'WRITE', '/conf/rm/y|2', 'OK|'],
      ['a', '$t', 'TRANSACTION_END', 'T|', 'EAGAIN'],
      ['a', 0, 'DIRECTORY', '/conf/rm|', 'x|y|'],
    ]);
  });
});

describe('concurrency (§16.21–22)', () => {
  it('disjoint transactions of two connections both commit', async () => {
    await runScenario({ a, b }, [
      ['a', 0, 'TRANSACTION_START', '|', '$ta'],
      ['b', 0, 'TRANSACTION_START', '|', '$tb'],
      ['a', '$ta', 'WRITE', '/local/domain/1/x|a', 'OK|'],
      ['b', '$tb', 'WRITE', '/local/domain/2/y|b', 'OK|'],
      ['a', '$ta', 'READ', '/local/domain/1/x|', 'a'],
      ['b', '$tb', 'READ', '/local/domain/2/y|', 'b'],
      ['a', '$ta', 'TRANSACTION_END', 'T|', 'OK|'],
      ['b', '$tb', 'TRANSACTION_END', 'T|', 'OK|'],
      ['a', 0, 'READ', '/local/domain/2/y|', 'b'],
      ['b', 0, 'READ', '/local/domain/1/x|', 'a'],
    ]);
  });

  it('16 parallel "VM start" transactions (xs_bench pattern) all commit without EAGAIN', async () => {
    const n = 16;
    const conns = await Promise.all(Array.from({ length: n }, () => d.connect()));
    await a.mkdir('/vm');
    await a.mkdir('/local/domain/0/backend/vbd');
    const commitsBefore = commitsByPath(await a.control('stats'));
    const ids = await Promise.all(conns.map((c) => c.txStart()));
    // Interleave the transactions' requests: every transaction is open while the others write.
    const steps = (dom: number): [string, string][] => [
      [`/local/domain/${dom}/name`, `vm${dom}`],
      [`/local/domain/${dom}/domid`, `${dom}`],
      [`/local/domain/${dom}/vm`, `/vm/${dom}`],
      [`/local/domain/${dom}/device/vbd/768/backend`, `/local/domain/0/backend/vbd/${dom}/768`],
      [`/local/domain/${dom}/device/vbd/768/state`, '1'],
      [`/vm/${dom}/uuid`, `00000000-0000-0000-0000-${String(dom).padStart(12, '0')}`],
      [`/vm/${dom}/name`, `vm${dom}`],
      [`/local/domain/0/backend/vbd/${dom}/768/frontend`, `/local/domain/${dom}/device/vbd/768`],
      [`/local/domain/0/backend/vbd/${dom}/768/state`, '1'],
    ];
    for (let s = 0; s < steps(100).length; s++) {
      await Promise.all(
        conns.map(async (c, i) => {
          const [path, value] = steps(100 + i)[s]!;
          await c.write(path, value, ids[i]);
          expect(await c.read(path, ids[i])).toBe(value);
        }),
      );
    }
    const results = await Promise.all(conns.map((c, i) => c.txEnd(ids[i]!, true)));
    expect(results).toEqual(Array(n).fill('OK|'));
    for (let i = 0; i < n; i++) {
      for (const [path, value] of steps(100 + i)) expect(await a.read(path)).toBe(value);
    }
    expect((await a.dir('/vm')).length).toBe(n);
    expect((await a.dir('/local/domain/0/backend/vbd')).length).toBe(n);
    const stats = await a.control('stats');
    expect(stats).toMatch(/^conflicts \d+$/m);
    // Each wrote under three subtrees the others also wrote under, observing only its own nodes and
    // the absence of its own names: after the first, every commit merges, none re-runs its requests.
    const commits = commitsByPath(stats);
    expect(commits.fast + commits.merge - commitsBefore.fast - commitsBefore.merge).toBe(n);
    expect(commits.merge - commitsBefore.merge).toBeGreaterThanOrEqual(n - 1);
    expect(commits.replay).toBe(commitsBefore.replay);
    conns.forEach((c) => c.close());
  });
});

/** The `commits` line of CONTROL stats: commits by path. */
function commitsByPath(stats: string): Record<'read-only' | 'fast' | 'merge' | 'replay', number> {
  const m = /^commits read-only (\d+) fast (\d+) merge (\d+) replay (\d+)$/m.exec(stats);
  if (m === null) throw new Error(`no commits line in ${stats}`);
  return { 'read-only': Number(m[1]), fast: Number(m[2]), merge: Number(m[3]), replay: Number(m[4]) };
}

describe('transactions die with their connection (§9.1)', () => {
  it('uncommitted writes never appear and the domain\'s open transaction count drops to zero', async () => {
    const g = await d.guest(5);
    await a.mkdir('/local/domain/5');
    await a.setPerms('/local/domain/5', ['n5']);
    const ids = [await g.txStart(), await g.txStart(), await g.txStart()];
    await g.write('dying/x', 'v', ids[0]);
    expect(await a.control('quota', '5')).toMatch(/^transactions\s+3\/\d+/m);
    g.close();
    await g.closed;
    // The daemon sees the close asynchronously.
    const report = await eventually(() => a.control('quota', '5'), (r) => /^transactions\s+0\//m.test(r));
    expect(report).toMatch(/^transactions\s+0\//m);
    expect(await a.ask(Op.READ, '/local/domain/5/dying/x|')).toBe('ENOENT');
  });
});

describe('accounting stays consistent (XSA-421, XSA-440)', () => {
  it('create and delete churn inside a guest transaction leaves the node count exact', async () => {
    const g = await d.connectDomain(5);
    const before = await a.control('quota', '5');
    const tx = await g.txStart();
    for (let i = 0; i < 20; i++) {
      await g.write(`churn/n${i}/a/b`, 'v', tx);
      await g.rm(`churn/n${i}`, tx);
    }
    await g.write('churn/kept', 'v', tx);
    expect(await g.txEnd(tx, true)).toBe('OK|');
    const after = await a.control('quota', '5');
    const nodes = (s: string) => Number(/^nodes\s+(\d+)\//m.exec(s)![1]);
    expect(nodes(after)).toBe(nodes(before) + 2);
    expect(await a.control('check')).toBe('OK');
    g.close();
  });

  it('two transactions deleting the same nodes keep counts consistent', async () => {
    const g1 = await d.connectDomain(5);
    const g2 = await d.connectDomain(5);
    for (let i = 0; i < 5; i++) await g1.write(`twice/n${i}`, 'v');
    const nodes = async () => Number(/^nodes\s+(\d+)\//m.exec(await a.control('quota', '5'))![1]);
    const start = await nodes();
    const t1 = await g1.txStart();
    const t2 = await g2.txStart();
    await g1.rm('twice', t1);
    await g2.rm('twice', t2);
    const r1 = await g1.txEnd(t1, true);
    const r2 = await g2.txEnd(t2, true);
    expect(r1).toBe('OK|');
    expect(['OK|', 'EAGAIN']).toContain(r2);
    expect(await nodes()).toBe(start - 6);
    expect(await a.control('check')).toBe('OK');
    g1.close();
    g2.close();
  });
});

describe('random interleavings of transactions (seeded, checked against a model)', () => {
  /**
   * A model of the tree under /m for a privileged caller: path → value. Every reply the daemon gives
   * is compared with the model: outside a transaction against the live model (linearizable), inside
   * one against the transaction's own copy of the model taken at its start (snapshot isolation plus
   * its own writes). At commit the transaction's requests are re-run on the live model: an OK commit
   * must be explainable as running the transaction there (same replies; or, if it changed nothing,
   * at its start), and EAGAIN must mean that re-running it would have given different replies (no
   * spurious conflicts — the daemon's documented commit rule, store/transaction.ts).
   */
  type Model = Map<string, string>;
  const parent = (p: string) => p.slice(0, p.lastIndexOf('/')) || '/';
  const exists = (m: Model, p: string) => p === '/' || m.has(p);
  function apply(m: Model, op: string, path: string, value: string): string {
    switch (op) {
      case 'READ':
        return m.has(path) ? m.get(path)! : 'ENOENT';
      case 'DIRECTORY': {
        if (!m.has(path)) return 'ENOENT';
        const names = [...m.keys()].filter((k) => parent(k) === path).map((k) => k.slice(path.length + 1));
        return names.sort().map((n) => `${n}|`).join('');
      }
      case 'WRITE':
      case 'MKDIR': {
        if (op === 'MKDIR' && m.has(path)) return 'OK|';
        for (let p = parent(path); p !== '/' && !m.has(p); p = parent(p)) m.set(p, '');
        m.set(path, op === 'WRITE' ? value : '');
        return 'OK|';
      }
      case 'RM': {
        if (!m.has(path)) return exists(m, parent(path)) ? 'OK|' : 'ENOENT';
        for (const k of [...m.keys()]) if (k === path || k.startsWith(`${path}/`)) m.delete(k);
        return 'OK|';
      }
    }
    throw new Error(op);
  }
  const same = (a: Model, b: Model) => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

  function rng(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 4294967296;
    };
  }

  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}`, async () => {
      const rand = rng(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
      const conns = await Promise.all([d.connect(), d.connect(), d.connect()]);
      await a.write('/m', '');
      const live: Model = new Map([['/m', '']]);
      const paths = ['/m', '/m/a', '/m/b', '/m/a/x', '/m/a/y', '/m/b/x', '/m/c/x'];
      type Open = { id: number; snapshot: Model; local: Model; log: [string, string, string, string][] };
      const open = new Map<number, Open>();
      let commits = 0;
      let conflicts = 0;
      for (let step = 0; step < 400; step++) {
        const k = Math.floor(rand() * conns.length);
        const w = conns[k]!;
        const tx = open.get(k);
        const r = rand();
        if (tx === undefined && r < 0.25) {
          const id = await w.txStart();
          open.set(k, { id, snapshot: new Map(live), local: new Map(live), log: [] });
          continue;
        }
        if (tx !== undefined && r < 0.15) {
          open.delete(k);
          if (rand() < 0.2) {
            expect(await w.txEnd(tx.id, false)).toBe('OK|');
            continue;
          }
          const got = await w.txEnd(tx.id, true);
          const replay = new Map(live);
          const replayOk = tx.log.every(([op, path, value, reply]) => apply(replay, op, path, value) === reply);
          const where = `seed ${seed} step ${step}: commit of ${JSON.stringify(tx.log)}`;
          if (got === 'OK|') {
            commits++;
            if (replayOk) {
              for (const key of [...live.keys()]) live.delete(key);
              for (const [key, v] of replay) live.set(key, v);
            } else {
              expect(same(tx.local, tx.snapshot), `${where}: committed, but not serializable`).toBe(true);
            }
          } else {
            conflicts++;
            expect(got, where).toBe('EAGAIN');
            expect(replayOk, `${where}: EAGAIN although re-running it gives the same replies`).toBe(false);
          }
          continue;
        }
        const op = pick(['READ', 'READ', 'DIRECTORY', 'WRITE', 'WRITE', 'MKDIR', 'RM']);
        const path = pick(paths);
        const value = `v${Math.floor(rand() * 3)}`;
        const payload = op === 'WRITE' ? `${path}|${value}` : `${path}|`;
        const got = await w.ask(Op[op as 'READ'], payload, { txId: tx?.id ?? 0 });
        const want = apply(tx?.local ?? live, op, path, value);
        expect(got, `seed ${seed} step ${step}: conn ${k} tx ${tx?.id ?? 0} ${op} ${payload}`).toBe(want);
        tx?.log.push([op, path, value, got]);
      }
      for (const [k, tx] of open) await conns[k]!.txEnd(tx.id, false);
      // The daemon's tree under /m is the model's.
      for (const p of paths) expect(await a.ask(Op.READ, `${p}|`), p).toBe(live.has(p) ? live.get(p)! : 'ENOENT');
      expect(commits).toBeGreaterThan(5);
      conns.forEach((c) => c.close());
      await a.rm('/m');
      expect(conflicts).toBeGreaterThan(0);
    });
  }
});
