/**
 * Issue 17, item 2: a guest multiplied its watches. 1,000 connections x 128 watches x 4,000-byte
 * tokens made 128,000 watches: RSS 3.0 GB (kept after the connections closed), each of its writes
 * took 3.5-6.1 s and stalled every other client for as long. Scaled down here: 100 connections x
 * 128 watches (12,800, ~51 MB of tokens if the daemon kept them all), then a removal that fires
 * every one of them.
 *
 * `watches` is the domain's (server/quotas/domain-budget.ts): 128 over all its connections, E2BIG beyond
 * (cxenstored 4.17, spec §8.1); their tokens count against its `memory`; connections past 8 are
 * closed. Everything is given back when the connections close (XSA-330: no watch may outlive them).
 */
import { describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { connectMany, guestWithHome, pipelineSettled, tally, usage } from '../helpers/attack.js';
import { eventually } from '../helpers/poll.js';
import { sharedDaemon } from '../helpers/shared-daemon.js';
import { vmRss } from '../helpers/proc.js';

const ATTACKER = 7;
const BYSTANDER = 8;
const TOKEN = 't'.repeat(4000);

const shared = sharedDaemon();

const stat = async (name: string): Promise<number> => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(await shared.c.control('stats'))![1]);

describe('a guest registering watches from many connections (issue 17, item 2)', () => {
  it('holds 128 watches in all; its events stay few, others are not stalled, and all is given back', async () => {
    const { d, c } = shared;
    const bystander = await guestWithHome(d, c, BYSTANDER);
    await bystander.write('data', 'kept');
    await bystander.watch('data', 'mine');
    expect((await bystander.nextEvent()).token).toBe('mine');
    const attacker = await guestWithHome(d, c, ATTACKER);
    await attacker.mkdir('w');
    const watchesBefore = await stat('watches');
    const rssBefore = vmRss(d.pid);

    const conns = await connectMany(d, ATTACKER, 100);
    const replies = (
      await Promise.all(conns.map((w, k) => pipelineSettled(w, Array.from({ length: 128 }, (_, i) => [Op.WATCH, `w/${k}-${i}|${TOKEN}|`] as const))))
    ).flat();
    const t = tally(replies);
    // 128 watches for the domain (one allowance, whichever connection asks); 8 connections in all,
    // counting the one it already had.
    expect(t['OK|']).toBe(128);
    expect(t['E2BIG']).toBe(7 * 128 - 128);
    expect(t['closed']).toBe(93 * 128);
    expect(await stat('watches')).toBe(watchesBefore + 128);
    const u = await usage(c, ATTACKER);
    expect(u['watches']).toEqual([128, 128]);
    expect(u['memory']![0]).toBeGreaterThan(128 * TOKEN.length);
    expect(u['memory']![0]).toBeLessThanOrEqual(u['memory']![1]);
    // ~51 MB of tokens had every watch been kept; the daemon holds half a megabyte of them.
    expect(vmRss(d.pid) - rssBefore).toBeLessThan(40 * 1024 * 1024);

    // Removing the watched directory fires each of its watches once: 128 events, not 12,800, and
    // dom0 is answered meanwhile without waiting behind them.
    const events = conns.filter((w) => w.isOpen);
    for (const w of events) w.events();
    const t0 = performance.now();
    const rm = attacker.ask(Op.RM, 'w|');
    const dom0 = await d.connect();
    await dom0.write('/during/attack', 'dom0');
    expect(await dom0.read('/during/attack')).toBe('dom0');
    const dom0Ms = performance.now() - t0;
    expect(await rm).toBe('OK|');
    let fired = 0;
    for (const w of events) fired += (await w.drain()).length;
    expect(fired).toBe(128);
    expect(dom0Ms).toBeLessThan(1000);

    // The other guest's data and watch are untouched.
    expect(await bystander.read('data')).toBe('kept');
    await bystander.write('data', 'changed');
    expect(await bystander.drain()).toEqual(['data mine']);
    expect(d.exited()).toBeUndefined();

    // Everything is given back when the connections go.
    for (const w of conns) w.close();
    attacker.close();
    const after = await eventually(() => usage(c, ATTACKER), (x) => x['watches']![0] === 0 && x['memory']![0] === 0);
    expect(after['watches']![0]).toBe(0);
    expect(after['memory']![0]).toBe(0);
    expect(await stat('watches')).toBe(watchesBefore);
  });
});
