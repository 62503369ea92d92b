/**
 * Live update with the HTTP gateway on: the gateway's clients have no descriptor to hand over, so
 * the old process closes the gateway just before the hand-over and the new one listens again,
 * keeping the privileged token and the guest tokens (README, Live update).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/poll.js';

let d: RunningDaemon;

beforeAll(async () => {
  d = await startDaemon({ args: ['--http', '127.0.0.1:0'] });
});

afterAll(async () => {
  await d?.stop();
});

const address = () => {
  try {
    return readFileSync(join(d.rundir, 'http-address'), 'latin1').trim();
  } catch {
    return ''; // between the old process's close and the new one's write
  }
};

async function get(url: string, path: string, token: string): Promise<{ status: number; body: unknown } | undefined> {
  try {
    const r = await fetch(`${url}/v1/node${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: r.status, body: await r.json() };
  } catch {
    return undefined; // not listening (yet)
  }
}

describe('live update with --http', () => {
  it('serves the gateway again from the new process, with the same privileged and guest tokens', async () => {
    const { url, token } = await d.gateway();
    const issued = await fetch(`${url}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ domid: 5 }),
    });
    expect(issued.status).toBe(200);
    const guestToken = ((await issued.json()) as { token: string }).token;
    const asGuest = (base: string) => fetch(`${base}/v1/node/lu/gw`, { headers: { authorization: `Bearer ${guestToken}` } });
    const put = await fetch(`${url}/v1/node/lu/gw`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ value: 'before' }),
    });
    expect(put.status).toBe(200);
    const pid = d.currentPid();
    const c = await d.connect();
    expect(await c.control('live-update', '-s')).toBe('OK');
    expect(d.currentPid()).not.toBe(pid);

    // Port 0: the new process picks a port of its own and says so in http-address.
    const next = await eventually(address, (a) => a !== url && a.startsWith('http://'));
    expect(next).not.toBe(url);
    const read = await eventually(() => get(next, '/lu/gw', token), (r) => r?.status === 200);
    expect(read?.body).toMatchObject({ path: '/lu/gw', value: 'before' });

    const again = await fetch(`${next}/v1/node/lu/gw`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ value: 'after' }),
    });
    expect(again.status).toBe(200);
    expect(await c.read('/lu/gw')).toBe('after');
    // The guest token still names guest 5: a dom0-only node is 403 for it (an unknown token would
    // be 401), exactly as before the update.
    expect((await asGuest(next)).status).toBe(403);
    c.close();
  });
});
