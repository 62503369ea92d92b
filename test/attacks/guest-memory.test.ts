/**
 * Issue 17, item 1: a guest ran the daemon out of heap. Each of its connections opened 10
 * transactions and wrote 1,024 values of 2 KiB into one node inside each (~23 MB of transaction
 * state per connection); after 183 connections node died at 4.2 GB. Scaled down here: 20
 * connections x 10 transactions x 300 writes of 2 KiB (120 MB if the daemon kept it all) against
 * a 256 KiB `memory` quota.
 *
 * The domain's budget (server/quotas/domain-budget.ts) allows 8 connections and 10 transactions over all
 * of them, and charges every request a transaction keeps to the domain's `memory`: past it the
 * guest is answered ENOSPC (spec §10.2, cxenstored's per-domain memory quota; XSA-326). Output
 * waiting for a guest that does not read counts too: events for it are dropped past the quota.
 */
import { describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { askSettled, connectMany, guestWithHome, pipelineSettled, tally, usage } from '../helpers/attack.js';
import { eventually } from '../helpers/poll.js';
import { sharedDaemon } from '../helpers/shared-daemon.js';
import { vmRss } from '../helpers/proc.js';
import { enc } from '../helpers/wire.js';

const MEMORY = 256 * 1024;
const ATTACKER = 5;
const BYSTANDER = 6;
const SLEEPER = 9;
const VALUE = Buffer.alloc(2048, 0x61);

const shared = sharedDaemon({ args: ['--quota', `memory=${MEMORY}`] });

describe('a guest filling transactions from many connections (issue 17, item 1)', () => {
  it('is answered ENOSPC at its memory quota; the daemon stays small and serves everyone else', async () => {
    const { d, c } = shared;
    const bystander = await guestWithHome(d, c, BYSTANDER);
    await bystander.write('data', 'kept');
    const theirTx = await bystander.txStart();
    await bystander.write('in-tx', 'pending', theirTx);
    (await guestWithHome(d, c, ATTACKER)).close();
    await eventually(() => usage(c, ATTACKER), (x) => x['connections']![0] === 0);
    const rssBefore = vmRss(d.pid);

    const conns = await connectMany(d, ATTACKER, 20);
    const starts = await Promise.all(conns.map((w) => Promise.all(Array.from({ length: 10 }, () => askSettled(w, Op.TRANSACTION_START, '|')))));
    const writes = await Promise.all(
      conns.flatMap((w, k) =>
        starts[k]!.filter((r) => /^\d+\|$/.test(r)).map((id) =>
          pipelineSettled(
            w,
            Array.from({ length: 300 }, () => [Op.WRITE, Buffer.concat([enc('big|'), VALUE])] as const),
            Number(id.slice(0, -1)),
          ),
        ),
      ),
    );

    // 8 connections at most, 10 transactions over all of them (the rest ENOSPC or closed).
    const answered = conns.filter((_, k) => starts[k]!.some((r) => r !== 'closed'));
    expect(answered.length).toBe(8);
    const started = tally(starts.flat());
    expect(started['id']).toBe(10);
    expect(Object.keys(started).sort()).toEqual(['ENOSPC', 'closed', 'id']);
    // The writes that fit the budget were taken; the rest are ENOSPC.
    const written = tally(writes.flat());
    expect(Object.keys(written).sort()).toEqual(['ENOSPC', 'OK|']);
    expect(written['OK|']).toBeLessThan(MEMORY / VALUE.length);
    expect(written['OK|']).toBeGreaterThan(MEMORY / (2 * VALUE.length));

    // The daemon's own account stays within the quota (one request's outcome over at most).
    const u = await usage(c, ATTACKER);
    expect(u['memory']![0]).toBeLessThanOrEqual(MEMORY);
    expect(u['memory']![1]).toBe(MEMORY);
    expect(u['transactions']).toEqual([10, 10]);
    expect(u['connections']).toEqual([8, 8]);
    // 120 MB if it had been kept: the process grows by far less.
    expect(vmRss(d.pid) - rssBefore).toBeLessThan(48 * 1024 * 1024);

    // Still up, and dom0 connects and writes as ever.
    expect(d.exited()).toBeUndefined();
    const dom0 = await d.connect();
    await dom0.write('/after/attack', 'dom0');
    expect(await dom0.read('/after/attack')).toBe('dom0');
    // The other guest has its own budget: its data, its open transaction and new ones are intact.
    expect(await bystander.read('data')).toBe('kept');
    await bystander.write('in-tx2', VALUE, theirTx);
    expect(await bystander.txEnd(theirTx, true)).toBe('OK|');
    expect(await c.read(`/local/domain/${BYSTANDER}/in-tx`)).toBe('pending');
    // Nothing the attacker wrote in its transactions reached the store.
    expect(await c.ask(Op.READ, `/local/domain/${ATTACKER}/big|`)).toBe('ENOENT');

    // Everything is given back when its connections go.
    for (const w of conns) w.close();
    const after = await eventually(() => usage(c, ATTACKER), (x) => x['memory']![0] === 0 && x['connections']![0] === 0);
    expect(after['memory']![0]).toBe(0);
    expect(after['transactions']![0]).toBe(0);
    expect(after['connections']![0]).toBe(0);
    // And the guest can work again.
    const again = await d.connectDomain(ATTACKER);
    const tx = await again.txStart();
    await again.write('big', VALUE, tx);
    expect(await again.txEnd(tx, true)).toBe('OK|');
  });
});

describe('a guest that watches and does not read (issue 17, item 1: pending output)', () => {
  it('holds output up to its memory quota; events past it are dropped, dom0 is not held up', async () => {
    const { d, c } = shared;
    const g = await guestWithHome(d, c, SLEEPER);
    await c.mkdir('/flood');
    await c.setPerms('/flood', ['n0', `r${SLEEPER}`]);
    const token = 'k'.repeat(3000);
    await g.watch('/flood', token);
    await g.nextEvent();
    g.pause();
    // 1,500 events of 3 KiB (4.5 MB) for a guest that reads none of them.
    const writes = await pipelineSettled(
      c,
      Array.from({ length: 1500 }, (_, i) => [Op.WRITE, `/flood/x${i % 10}|${i}`] as const),
    );
    expect(tally(writes)).toEqual({ 'OK|': 1500 });
    const held = (await usage(c, SLEEPER))['memory']![0];
    // What the kernel's socket buffer took is gone from us; what we hold stays within the quota.
    expect(held).toBeGreaterThan(MEMORY / 2);
    expect(held).toBeLessThanOrEqual(MEMORY + 4096);
    // Once it reads, it gets what was kept, and its budget comes back.
    g.resume();
    const after = await eventually(() => usage(c, SLEEPER), (x) => x['memory']![0] < MEMORY / 4);
    expect(after['memory']![0]).toBeLessThan(MEMORY / 4);
    const got = (await g.drain()).length;
    expect(got).toBeGreaterThan(0);
    expect(got).toBeLessThan(1500);
  });
});
