/**
 * The fastify floor of `http-load --floor` (bench/null-gateway.ts) is only a fair reference if it
 * answers the load test's requests as the daemon's gateway does: the same status, the same JSON
 * fields and value size, the same response headers. Checked side by side with the real daemon.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNullGateway, startNxenstored, type Server } from '../../bench/http-servers.js';

let floor: Server;
let ours: Server;

beforeAll(async () => {
  [floor, ours] = await Promise.all([startNullGateway(), startNxenstored('tcp')]);
  const w = await fetch(`${ours.url}/v1/node/bench/r/k1`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ours.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ value: 'value-0123456789' }),
  });
  expect(w.status).toBe(200);
});
afterAll(async () => {
  await Promise.all([floor?.stop(), ours?.stop()]);
});

/** Status, header names (not values: dates and lengths differ) and body of one request. */
async function shape(s: Server, method: string, body?: string) {
  const r = await fetch(`${s.url}/v1/node/bench/r/k1`, {
    method,
    headers: { authorization: `Bearer ${ours.token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body }),
  });
  return { status: r.status, headers: [...r.headers.keys()].sort(), body: await r.json() };
}

describe('null-gateway', () => {
  it('answers a read like the daemon: same status, headers and JSON', async () => {
    const [a, b] = [await shape(floor, 'GET'), await shape(ours, 'GET')];
    expect(a).toEqual(b);
    expect(a.body).toEqual({ path: '/bench/r/k1', value: 'value-0123456789', encoding: 'utf8' });
  });

  it('answers a write like the daemon', async () => {
    const body = JSON.stringify({ value: 'written-1' });
    const [a, b] = [await shape(floor, 'PUT', body), await shape(ours, 'PUT', body)];
    expect(a).toEqual(b);
    expect(a.body).toEqual({ ok: true });
  });
});
