/**
 * Per-domain quotas of an unprivileged guest (spec §10, §16 check 23; XSA-326, XSA-414, XSA-415):
 * nodes, value size, permission entries, watches, transactions, requests per transaction, each
 * shared by all the domain's connections (issue 17); the
 * effective defaults are read with GET_QUOTA, and changed with SET_QUOTA. Privileged callers are
 * exempt. Each describe works on its own guest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { runScenario } from '../helpers/scenario.js';
import { enc, frame, type Wire } from '../helpers/wire.js';

let d: RunningDaemon;
let c: Wire;

beforeAll(async () => {
  d = await startDaemon();
  c = await d.connect();
});

afterAll(async () => {
  await d?.stop();
});

/** Introduces `domid`, gives it a home it owns, returns a connection acting as it. */
async function guest(domid: number): Promise<Wire> {
  const g = await d.guest(domid);
  await c.mkdir(`/local/domain/${domid}`);
  await c.setPerms(`/local/domain/${domid}`, [`n${domid}`]);
  return g;
}

async function quota(name: string, domid?: number): Promise<number> {
  const r = await c.ask(Op.GET_QUOTA, domid === undefined ? `${name}|` : `${domid}|${name}|`);
  expect(r).toMatch(/^\d+\|$/);
  return Number(r.slice(0, -1));
}

/** Sends many requests in one write and returns their replies, shown. */
async function pipeline(w: Wire, reqs: [number, string][], txId = 0): Promise<string[]> {
  const replies = reqs.map(() => w.awaitReply());
  await w.sendRaw(Buffer.concat(reqs.map(([t, p], i) => frame(t, p, 1 + i, txId))));
  return (await Promise.all(replies)).map((r) => (r.type === Op.ERROR ? r.payload.toString('latin1').slice(0, -1) : r.payload.toString('latin1').replaceAll('\0', '|')));
}

describe('GET_QUOTA / SET_QUOTA (§7.18)', () => {
  it('lists the quota names and reports the defaults', async () => {
    const names = (await c.ask(Op.GET_QUOTA, '')).replace(/\|$/, '').split(' ');
    // Xen 4.22's names in its order (`quota_adm[]`, without the soft ones we do not offer), then ours.
    expect(names).toEqual(['nodes', 'watches', 'outstanding', 'memory', 'transactions', 'transaction-nodes', 'node-permissions', 'path-max', 'node-size', 'watch-events', 'connections']);
    expect(await quota('nodes')).toBe(1000);
    expect(await quota('node-size')).toBe(2048);
    expect(await quota('permissions')).toBe(5);
    expect(await quota('node-permissions')).toBe(5);
    expect(await quota('transactions')).toBe(10);
    expect(await quota('path-max')).toBe(2048);
    expect(await quota('watches')).toBeGreaterThanOrEqual(100);
  });

  it('takes its defaults from the daemon\'s --quota options', async () => {
    const q = await startDaemon({ args: ['--quota', 'nodes=50', '--quota', 'watches=7'] });
    try {
      const x = await q.connect();
      expect(await x.ask(Op.GET_QUOTA, 'nodes|')).toBe('50|');
      expect(await x.ask(Op.GET_QUOTA, 'watches|')).toBe('7|');
      expect(await x.ask(Op.GET_QUOTA, 'transactions|')).toBe('10|');
      const g = await q.guest(5);
      for (let i = 0; i < 7; i++) expect(await g.ask(Op.WATCH, `w${i}|t|`)).toBe('OK|');
      expect(await g.ask(Op.WATCH, 'w7|t|')).toBe('E2BIG');
    } finally {
      await q.stop();
    }
  });

  it('sets globally and per domain; errors', async () => {
    await Promise.all([guest(40), guest(41), guest(42)]);
    await runScenario({ c }, [
      ['c', 0, 'SET_QUOTA', '40|watches|3|', 'OK|'],
      ['c', 0, 'GET_QUOTA', '40|watches|', '3|'],
      ['c', 0, 'GET_QUOTA', '41|watches|', /^\d+\|$/],
      ['c', 0, 'SET_QUOTA', 'transaction-nodes|2000|', 'OK|'],
      ['c', 0, 'GET_QUOTA', 'transaction-nodes|', '2000|'],
      // Xen 4.22: a global value is for domains introduced later; 40 keeps its own.
      ['c', 0, 'GET_QUOTA', '40|transaction-nodes|', '1024|'],
      ['c', 0, 'SET_QUOTA', 'transaction-nodes|1024|', 'OK|'],
      ['c', 0, 'SET_QUOTA', '42|nodes|0|', 'OK|'],
      ['c', 0, 'GET_QUOTA', '42|nodes|', '0|'],
      ['c', 0, 'GET_QUOTA', 'nosuch|', 'EINVAL'],
      ['c', 0, 'SET_QUOTA', 'nosuch|5|', 'EINVAL'],
      ['c', 0, 'SET_QUOTA', 'nodes|-1|', 'EINVAL'],
      ['c', 0, 'SET_QUOTA', 'nodes|x|', 'EINVAL'],
      ['c', 0, 'SET_QUOTA', 'nodes|', 'EINVAL'],
      ['c', 0, 'SET_QUOTA', 'path-max|4096|', 'EINVAL'],
      ['c', 0, 'GET_QUOTA', 'nodes|', '1000|'],
    ]);
  });

  it('a per-domain quota is enforced for that domain only', async () => {
    const g40 = await guest(40);
    const g41 = await guest(41);
    for (let i = 0; i < 3; i++) expect(await g40.ask(Op.WATCH, `w${i}|t|`)).toBe('OK|');
    expect(await g40.ask(Op.WATCH, 'w3|t|')).toBe('E2BIG');
    for (let i = 0; i < 4; i++) expect(await g41.ask(Op.WATCH, `w${i}|t|`)).toBe('OK|');
  });
});

describe('nodes (§10.2, §16.23)', () => {
  it('the node after the quota is ENOSPC; removing makes room again', async () => {
    const g = await guest(50);
    const max = await quota('nodes', 50);
    expect(max).toBe(1000);
    // The home counts as one node of 50's; `q` one more; then max-2 nodes: 400 leaves in `q`, and
    // as a directory's child names count against its node size (2048 bytes, as in cxenstored),
    // the rest in two subdirectories of 298 leaves each.
    expect(await g.ask(Op.MKDIR, 'q|')).toBe('OK|');
    const leaf = (i: number): string => (i < 400 ? `q/n${i}` : `q/s${i < 698 ? 0 : 1}/n${i}`);
    const replies = await pipeline(g, [
      [Op.MKDIR, 'q/s0|'],
      [Op.MKDIR, 'q/s1|'],
      ...Array.from({ length: max - 4 }, (_, i): [number, string] => [Op.WRITE, `${leaf(i)}|v`]),
    ]);
    expect(replies.filter((r) => r !== 'OK|')).toEqual([]);
    expect(await c.control('quota', '50')).toMatch(new RegExp(`^nodes\\s+${max}/${max}$`, 'm'));
    expect(await g.ask(Op.WRITE, 'q/one-too-many|v')).toBe('ENOSPC');
    expect(await g.ask(Op.MKDIR, 'q/one-too-many|')).toBe('ENOSPC');
    // Creating parents counts every new node; a refused write leaves nothing behind (XSA-414).
    expect(await g.ask(Op.WRITE, 'deep/a/b|v')).toBe('ENOSPC');
    expect(await g.ask(Op.READ, 'deep|')).toBe('ENOENT');
    // Overwriting an existing node is fine.
    expect(await g.ask(Op.WRITE, 'q/n0|new')).toBe('OK|');
    expect(await g.ask(Op.RM, 'q/n1|')).toBe('OK|');
    expect(await g.ask(Op.WRITE, 'q/replacement|v')).toBe('OK|');
    expect(await g.ask(Op.WRITE, 'q/again-too-many|v')).toBe('ENOSPC');
    // The privileged are not limited, even below the guest's home.
    expect(await c.ask(Op.WRITE, '/local/domain/50/q/by-dom0|v')).toBe('OK|');
    expect(await c.control('check')).toBe('OK');
  });

  it('inside a transaction: a failed creation leaves no orphans after commit (XSA-415)', async () => {
    const g = await d.connectDomain(50);
    const tx = await g.txStart();
    expect(await g.ask(Op.WRITE, 'intx/a/b/c|v', { txId: tx })).toBe('ENOSPC');
    expect(await g.ask(Op.WRITE, 'q/n0|in-tx', { txId: tx })).toBe('OK|');
    const end = await g.txEnd(tx, true);
    expect(['OK|', 'ENOSPC']).toContain(end);
    expect(await c.ask(Op.READ, '/local/domain/50/intx|')).toBe('ENOENT');
    expect(await c.control('check')).toBe('OK');
    g.close();
  });

  it('the quota is per domain, shared by its connections', async () => {
    const g = await d.connectDomain(50);
    expect(await g.ask(Op.WRITE, 'q/from-second-connection|v')).toBe('ENOSPC');
    g.close();
  });
});

describe('nodes created by parallel transactions (XSA-421 family)', () => {
  it('cannot add up beyond the quota', async () => {
    const g = await guest(57);
    expect(await c.ask(Op.SET_QUOTA, '57|nodes|20|')).toBe('OK|');
    const conns = [g, await d.connectDomain(57), await d.connectDomain(57)];
    // Each transaction alone fits (home + 12 < 20); together they would not.
    const ids = await Promise.all(conns.map((x) => x.txStart()));
    for (const [k, x] of conns.entries()) {
      for (let i = 0; i < 12; i++) expect(await x.ask(Op.WRITE, `t${k}/n${i}|v`, { txId: ids[k] })).toBe('OK|');
    }
    const ends = [];
    for (const [k, x] of conns.entries()) ends.push(await x.txEnd(ids[k]!, true));
    expect(ends[0]).toBe('OK|');
    expect(ends.slice(1).every((e) => e === 'EAGAIN' || e === 'ENOSPC')).toBe(true);
    expect(Number(/^nodes\s+(\d+)\//m.exec(await c.control('quota', '57'))![1])).toBeLessThanOrEqual(20);
    expect(await c.control('check')).toBe('OK');
  });
});

describe('value size (§10, node-size)', () => {
  it('an unprivileged value over the limit is E2BIG; the privileged are exempt', async () => {
    const g = await guest(51);
    const max = await quota('node-size', 51);
    expect(await g.ask(Op.WRITE, Buffer.concat([enc('big|'), Buffer.alloc(max, 0x62)]))).toBe('OK|');
    expect((await g.request(Op.READ, 'big|')).payload.length).toBe(max);
    expect(await g.ask(Op.WRITE, Buffer.concat([enc('big|'), Buffer.alloc(max + 1, 0x62)]))).toBe('E2BIG');
    expect(await g.ask(Op.WRITE, Buffer.concat([enc('bigger|'), Buffer.alloc(4000, 0x62)]))).toBe('E2BIG');
    expect(await g.ask(Op.READ, 'bigger|')).toBe('ENOENT');
    expect((await g.request(Op.READ, 'big|')).payload.length).toBe(max);
    expect(await c.ask(Op.WRITE, Buffer.concat([enc('/local/domain/51/dom0big|'), Buffer.alloc(4000, 0x62)]))).toBe('OK|');
  });
});

describe('permission entries (§10.2)', () => {
  it('more than the limit is ENOSPC for a guest; the privileged are exempt', async () => {
    const g = await guest(52);
    expect(await quota('permissions', 52)).toBe(5);
    await runScenario({ c, g }, [
      ['g', 0, 'WRITE', 'p|v', 'OK|'],
      ['g', 0, 'SET_PERMS', 'p|n52|r1|r2|r3|r4|', 'OK|'],
      ['g', 0, 'GET_PERMS', 'p|', 'n52|r1|r2|r3|r4|'],
      ['g', 0, 'SET_PERMS', 'p|n52|r1|r2|r3|r4|r5|', 'ENOSPC'],
      ['g', 0, 'GET_PERMS', 'p|', 'n52|r1|r2|r3|r4|'],
      ['c', 0, 'SET_PERMS', '/local/domain/52/p|n52|r1|r2|r3|r4|r5|r6|', 'OK|'],
    ]);
  });
});

describe('watches (§8.1, §10.2)', () => {
  it('the watch after the quota is E2BIG; unwatching makes room; dom0 is exempt', async () => {
    const g = await guest(53);
    const max = await quota('watches', 53);
    const replies = await pipeline(
      g,
      Array.from({ length: max }, (_, i): [number, string] => [Op.WATCH, `w/${i}|t|`]),
    );
    expect(replies.filter((r) => r !== 'OK|')).toEqual([]);
    expect(await g.ask(Op.WATCH, 'w/extra|t|')).toBe('E2BIG');
    expect(await g.ask(Op.WATCH, 'w/0|t|')).toBe('EEXIST');
    expect(await g.ask(Op.UNWATCH, 'w/0|t|')).toBe('OK|');
    expect(await g.ask(Op.WATCH, 'w/extra|t|')).toBe('OK|');
    expect(await g.ask(Op.WATCH, 'w/extra2|t|')).toBe('E2BIG');
    // Per domain (issue 17): another connection of the same domain shares the allowance, and
    // gets room when the first gives some back.
    const g2 = await d.connectDomain(53);
    expect(await g2.ask(Op.WATCH, 'w/other|t|')).toBe('E2BIG');
    expect(await g.ask(Op.UNWATCH, 'w/1|t|')).toBe('OK|');
    expect(await g2.ask(Op.WATCH, 'w/other|t|')).toBe('OK|');
    g2.close();
    expect(await g.ask(Op.RESET_WATCHES, '|')).toBe('OK|');
    expect(await g.ask(Op.WATCH, 'w/after-reset|t|')).toBe('OK|');
    const x = await d.connect();
    const many = await pipeline(
      x,
      Array.from({ length: max + 20 }, (_, i): [number, string] => [Op.WATCH, `/dom0w/${i}|t|`]),
    );
    expect(many.filter((r) => r !== 'OK|')).toEqual([]);
    x.close();
  });
});

describe('transactions (§9.1, §10.2)', () => {
  it('the transaction after the quota is ENOSPC; ending one makes room', async () => {
    const g = await guest(54);
    const max = await quota('transactions', 54);
    expect(max).toBe(10);
    const ids = [];
    for (let i = 0; i < max; i++) ids.push(await g.txStart());
    expect(await g.ask(Op.TRANSACTION_START, '|')).toBe('ENOSPC');
    expect(await g.txEnd(ids[0]!, false)).toBe('OK|');
    expect(await g.ask(Op.TRANSACTION_START, '|')).toMatch(/^\d+\|$/);
    expect(await g.ask(Op.TRANSACTION_START, '|')).toBe('ENOSPC');
    // Per domain (issue 17): another connection of the same domain shares the allowance.
    const g2 = await d.connectDomain(54);
    expect(await g2.ask(Op.TRANSACTION_START, '|')).toBe('ENOSPC');
    expect(await g.txEnd(ids[1]!, false)).toBe('OK|');
    expect(await g2.ask(Op.TRANSACTION_START, '|')).toMatch(/^\d+\|$/);
    g2.close();
    // dom0 is exempt.
    const x = await d.connect();
    for (let i = 0; i < max + 5; i++) await x.txStart();
    x.close();
  });

  it('requests per transaction: past the limit the transaction fails for good', async () => {
    const g = await guest(55);
    const max = await quota('transaction-nodes', 55);
    const tx = await g.txStart();
    const replies = await pipeline(
      g,
      Array.from({ length: max }, (_, i): [number, string] => [Op.WRITE, `tn/n${i % 10}|${i}`]),
      tx,
    );
    expect(replies.filter((r) => r !== 'OK|')).toEqual([]);
    expect(await g.ask(Op.READ, 'tn/n0|', { txId: tx })).toBe('ENOSPC');
    expect(await g.ask(Op.WRITE, 'tn/x|v', { txId: tx })).toBe('ENOSPC');
    expect(await g.txEnd(tx, true)).toMatch(/^(ENOSPC|ENOMEM)$/);
    expect(await g.ask(Op.READ, 'tn/n0|')).toBe('ENOENT');
  });
});

describe('path length of a guest (§3.3, XSA-323)', () => {
  it('is measured after /local/domain/<N>/', async () => {
    const g = await guest(56);
    const rel = 'p'.repeat(2048);
    expect(await g.ask(Op.WRITE, `${rel}|v`)).toBe('OK|');
    expect(await c.ask(Op.READ, `/local/domain/56/${rel}|`)).toBe('v');
    expect(await g.ask(Op.WRITE, `${rel}q|v`)).toBe('EINVAL');
  });
});
