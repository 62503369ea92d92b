/**
 * The gateway's port is open to every local user, and each of its connections holds a descriptor.
 * Before this test's fix nothing bounded them: a local process holding a few thousand idle TCP
 * connections to the port took the descriptors that dom0's socket and INTRODUCE need (the reserve
 * of issue 17 only counted guest sockets), and a guest with a token could open any number of
 * WebSockets beside its `connections` quota.
 *
 * Now the gateway holds at most `--http-connections` (one past it is closed at once by Node and
 * counted, not logged one line each), taken from the guests' side of the descriptors, and a
 * guest's WebSockets count against its `connections` quota with its socket's connections.
 * Idle connections do not hold the cap for good: one that sends nothing for `--request-idle-ms`
 * is closed (a WebSocket is not). Scaled down: `ulimit -n 256`, a reserve of 64, a gateway cap
 * of 24, a flood of 120 connections, an idle interval of 4 s.
 */
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { call, JsonWs } from '../gateway/gateway-client.js';
import { guestWithHome } from '../helpers/attack.js';
import { eventually } from '../helpers/poll.js';
import { openFiles } from '../helpers/proc.js';
import { sharedDaemon } from '../helpers/shared-daemon.js';
import { openAll } from '../helpers/wire.js';

const NOFILE = 256;
const RESERVE = 64;
const CAP = 24;
const IDLE_MS = 4000;

const shared = sharedDaemon({
  nofile: NOFILE,
  args: ['--request-idle-ms', String(IDLE_MS), '--fd-reserve', String(RESERVE), '--http', '127.0.0.1:0', '--http-connections', String(CAP), '--http-anonymous', 'read'],
});

/** A TCP connection to the gateway that sends nothing: resolves once open, records when it closes. */
function idle(port: number): Promise<{ socket: Socket; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    let closed = false;
    const socket = connect(port, '127.0.0.1');
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, closed: () => closed }));
    socket.once('error', reject);
  });
}

describe('connections to the gateway (a local user, a guest with a token)', () => {
  it('a flood of idle connections holds at most --http-connections; dom0 and INTRODUCE keep working', async () => {
    const { d, c } = shared;
    const { url, token } = await d.gateway();
    const port = Number(new URL(url).port);
    // The guests' side is smaller by the gateway's share: 256 - 64 - 24.
    expect(await c.control('stats')).toMatch(new RegExp(`^guest sockets 0 of ${NOFILE - RESERVE - CAP}, `, 'm'));

    const flood: { socket: Socket; closed: () => boolean }[] = [];
    for (let k = 0; k < 120; k++) flood.push(await idle(port));
    await eventually(
      () => flood.filter((f) => !f.closed()).length,
      (open) => open <= CAP,
    );
    expect(flood.filter((f) => !f.closed()).length).toBe(CAP);
    expect(openFiles(d.pid)).toBeLessThan(NOFILE - RESERVE);

    // dom0 connects and writes; a domain can be introduced; the daemon lives.
    const dom0 = await openAll(10, () => d.connect());
    await Promise.all(dom0.map((w, k) => w.write(`/flood/${k}`, 'v')));
    expect(await dom0[9]!.read('/flood/0')).toBe('v');
    expect(await c.ask(Op.INTRODUCE, '30|4126|31|')).toBe('OK|');
    for (const w of dom0) w.close();

    // A refusal per connection past the cap, counted; the log has one line, then summaries.
    // Logged soon after the daemon's start: written a moment after ready (server/logger.ts).
    await expect.poll(() => shared.d.output(), { timeout: 5000 }).toMatch(/connection refused/);
    const refusals = shared.d.output().split('\n').filter((l) => /connection refused/.test(l));
    expect(refusals.length).toBe(1);
    expect(refusals[0]).toMatch(/who=http|"who":"http"/);
    expect(await c.control('stats')).toMatch(/refused (9[6-9]|\d{3,})$/m);

    // Once the flood goes, the gateway serves again.
    for (const f of flood) f.socket.destroy();
    await eventually(
      () => call(url, 'GET', '/v1/node/flood/0', { token }).then((r) => r.status, () => 0),
      (s) => s === 200,
    );
  });

  it("a guest's WebSockets count against its connections quota, with its socket's", async () => {
    const { d, c } = shared;
    const { url, token } = await d.gateway();
    const wsBase = url.replace(/^http/, 'ws');
    const socket = await guestWithHome(d, c, 7);
    expect(await c.ask(Op.SET_QUOTA, '7|connections|3|')).toBe('OK|');
    const guestToken = (await call(url, 'POST', '/v1/tokens', { token, body: { domid: 7 } })).body.token as string;
    const a = await JsonWs.open(`${wsBase}/v1/ws?token=${guestToken}`);
    const b = await JsonWs.open(`${wsBase}/v1/ws?token=${guestToken}`);
    expect(await c.control('quota', '7')).toMatch(/^connections +3\/3$/m);
    // The fourth, a WebSocket or a socket connection, is refused.
    await expect(JsonWs.open(`${wsBase}/v1/ws?token=${guestToken}`)).rejects.toMatchObject({ status: 429 });
    const more = await d.connectDomain(7).then(
      (w) => w.ask(Op.GET_DOMAIN_PATH, '7|').then(() => 'served', () => 'closed'),
      () => 'closed',
    );
    expect(more).toBe('closed');
    // What it holds works; one closed makes room for another.
    await a.ok({ op: 'write', path: '/local/domain/7/ws', value: 'a' });
    expect(await socket.read('/local/domain/7/ws')).toBe('a');
    b.ws.close();
    await b.closed;
    await eventually(() => c.control('quota', '7'), (q) => /^connections +2\/3$/m.test(q));
    const again = await JsonWs.open(`${wsBase}/v1/ws?token=${guestToken}`);
    again.ws.close();
    a.ws.close();
    socket.close();
  });

  it('a connection that sends nothing is closed after --request-idle-ms; a quiet WebSocket is kept', async () => {
    const { d } = shared;
    const { url, token } = await d.gateway();
    const quiet = await JsonWs.open(`${url.replace(/^http/, 'ws')}/v1/ws?token=${token}`);
    const t0 = Date.now();
    const silent = await idle(Number(new URL(url).port));
    expect(await eventually(() => silent.closed(), (closed) => closed, 30_000)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(IDLE_MS - 100);
    // The WebSocket, silent all along, still answers.
    await quiet.ok({ op: 'write', path: '/quiet', value: 'still here' });
    quiet.ws.close();
  });
});
