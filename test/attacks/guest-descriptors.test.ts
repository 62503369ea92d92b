/**
 * Issue 17, item 3: a guest locked dom0 out. 21,000 connections to its socket exhausted the
 * daemon's 20,000 descriptors: new dom0 connections were reset and INTRODUCE of a new domain
 * failed with EIO ("listen EMFILE"). Scaled down here: the daemon runs under `ulimit -n 256` with
 * a reserve of 64 (guests may hold 192, less one per introduced domain), and three guests, each
 * allowed 100 connections, open 300.
 *
 * Guests are refused (accept-and-close) once they hold every descriptor outside the reserve, and
 * each on its own socket once it holds its `connections` quota; refusals are counted, not logged
 * one line each (server/transport/descriptor-reserve.ts). dom0's socket, socket_ro (a quarter of the
 * reserve at most) and INTRODUCE keep working.
 */
import { describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { askSettled, connectMany, guestWithHome, usage } from '../helpers/attack.js';
import { eventually } from '../helpers/poll.js';
import { sharedDaemon } from '../helpers/shared-daemon.js';
import { openFiles } from '../helpers/proc.js';
import { openAll, Wire } from '../helpers/wire.js';

const NOFILE = 256;
const RESERVE = 64;
const ATTACKERS = [11, 12, 13];
const BYSTANDER = 14;

const shared = sharedDaemon({ nofile: NOFILE, args: ['--fd-reserve', String(RESERVE), '--quota', 'connections=100'] });

/** The connections among `ws` that the daemon serves (they answer a request). */
async function served(ws: readonly Wire[]): Promise<Wire[]> {
  const answers = await Promise.all(ws.map((w) => askSettled(w, Op.GET_DOMAIN_PATH, '0|')));
  return ws.filter((_, k) => answers[k] !== 'closed');
}

const refusalLines = () => shared.d.output().split('\n').filter((l) => /refused/.test(l)).length;

describe('guests opening connections (issue 17, item 3)', () => {
  it('a guest at its connections quota is refused on its own socket only', async () => {
    const { d, c } = shared;
    const bystander = await guestWithHome(d, c, BYSTANDER);
    await bystander.write('data', 'kept');
    expect(await c.ask(Op.SET_QUOTA, `${BYSTANDER}|connections|4|`)).toBe('OK|');
    const more = await connectMany(d, BYSTANDER, 10);
    expect((await served(more)).length).toBe(3);
    expect((await usage(c, BYSTANDER))['connections']).toEqual([4, 4]);
    for (const w of more) w.close();
    await eventually(() => usage(c, BYSTANDER), (u) => u['connections']![0] === 1);
  });

  it('guests together never take the reserve: dom0, socket_ro and INTRODUCE keep working', async () => {
    const { d, c } = shared;
    const bystander = await d.connectDomain(BYSTANDER);
    for (const id of ATTACKERS) (await guestWithHome(d, c, id)).close();
    const linesBefore = refusalLines();

    const flood = (await Promise.all(ATTACKERS.map((id) => connectMany(d, id, 100)))).flat();
    const held = await served(flood);
    // 256 - 64 - 4 domains = 188 guest connections, the bystander's two among them.
    expect(held.length).toBe(NOFILE - RESERVE - 4 - 2);
    expect(await c.control('stats')).toMatch(new RegExp(`^guest sockets 188 of 188, refused \\d+`, 'm'));
    expect(openFiles(d.pid)).toBeLessThan(NOFILE - 16);

    // dom0 connects and writes, as often as it needs.
    const dom0 = await openAll(10, () => d.connect());
    await Promise.all(dom0.map((w, k) => w.write(`/dom0/${k}`, 'v')));
    expect(await dom0[9]!.read('/dom0/0')).toBe('v');
    // A new domain can be introduced: its socket is opened from the reserve.
    expect(await c.ask(Op.INTRODUCE, '20|4116|21|')).toBe('OK|');
    expect(await c.ask(Op.IS_DOMAIN_INTRODUCED, '20|')).toBe('T|');
    // socket_ro may hold a quarter of the reserve, no more.
    const ro = await openAll(RESERVE / 4 + 4, () => d.connectRo());
    const roServed = await served(ro);
    expect(roServed.length).toBe(RESERVE / 4);
    expect(await roServed[0]!.read('/dom0/1')).toBe('v');
    for (const w of ro) w.close();
    // The bystander, connected before, works on and has lost nothing.
    expect(await bystander.read('data')).toBe('kept');
    await bystander.write('data', 'still mine');
    expect(await c.read(`/local/domain/${BYSTANDER}/data`)).toBe('still mine');
    expect(d.exited()).toBeUndefined();
    // Over a hundred refusals, one line (the rest wait for the 10 s summary).
    expect(refusalLines() - linesBefore).toBeLessThanOrEqual(2);

    // When the attackers let go, guests connect again.
    for (const w of flood) w.close();
    await eventually(() => c.control('stats'), (s) => /^guest sockets 2 of/m.test(s));
    const back = await d.connectDomain(ATTACKERS[0]!);
    expect(await back.ask(Op.GET_DOMAIN_PATH, '0|')).toBe('/local/domain/0|');
    for (const w of dom0) w.close();
  });
});
