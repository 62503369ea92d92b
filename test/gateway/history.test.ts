/**
 * History over HTTP (issue 14): /v1/history, /v1/diff, /v1/blame and /v1/node?at= answer what
 * CONTROL `history` answers, name the connection kind (http for the gateway's own writes), and
 * refuse a guest's token (403) and no token (401).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import type { Wire } from '../helpers/wire.js';
import { call } from './gateway-client.js';

let d: RunningDaemon;
let base: string;
let root: string;
let dom0: Wire;

beforeAll(async () => {
  d = await startDaemon({ args: ['--http', '127.0.0.1:0'] });
  ({ url: base, token: root } = await d.gateway());
  dom0 = await d.connect();
});
afterAll(async () => {
  await d?.stop();
});

const get = (path: string, token = root) => call(base, 'GET', path, { token });
const generation = async (): Promise<number> => Number(/^generation (\d+)$/m.exec(await dom0.control('stats'))![1]);

describe('history routes', () => {
  it('GET /v1/history lists a subtree\'s commits newest first, with who and what, paged', async () => {
    await dom0.write('/h/be/state', '1');
    expect((await call(base, 'PUT', '/v1/node/h/be/state', { token: root, body: { value: '2' } })).status).toBe(200);
    await dom0.write('/h/be/state', '5');
    const r = await get('/v1/history?path=/h/be/state&limit=2');
    expect(r.status).toBe(200);
    expect(r.body.entries.map((e: { connection: string; changes: { old?: string; new?: string }[] }) => [e.connection, e.changes[0]!.old, e.changes[0]!.new])).toEqual([
      ['socket', '2', '5'],
      ['http', '1', '2'],
    ]);
    expect(r.body.entries[1]).toMatchObject({ domid: 0, requests: ['write /h/be/state'] });
    expect(typeof r.body.next).toBe('number');
    const more = await get(`/v1/history?path=/h/be/state&before=${r.body.next}`);
    expect(more.body.entries.map((e: { changes: { kind: string }[] }) => e.changes[0]!.kind)).toEqual(['added']);
    expect(more.body.next).toBeUndefined();
    expect((await get('/v1/history?path=/h&connection=http')).body.entries).toHaveLength(1);
    expect((await get('/v1/history?path=/h&domid=3')).body).toEqual({ entries: [] });
    expect((await get('/v1/history?limit=0')).status).toBe(400);
    expect((await get('/v1/history?since=yesterday')).status).toBe(400);
  });

  it('GET /v1/node?at= answers the node as it was; /v1/diff and /v1/blame', async () => {
    await dom0.write('/h/vm/name', 'old');
    const g = await generation();
    await dom0.write('/h/vm/name', 'new');
    expect((await get(`/v1/node/h/vm/name?at=${g}`)).body).toEqual({ path: '/h/vm/name', value: 'old', encoding: 'utf8' });
    expect((await get(`/v1/node/h/vm?at=${g}&children=1&perms=1`)).body).toEqual({ path: '/h/vm', value: '', encoding: 'utf8', children: ['name'], perms: ['n0'] });
    expect((await get('/v1/node/h/vm/name')).body.value).toBe('new');
    expect((await get(`/v1/node/h/vm/name?at=${g - 1}`)).status).toBe(404);
    expect((await get('/v1/node/h?at=1970-01-01T00:00:00Z')).status).toBe(404);
    const diff = await get(`/v1/diff?from=${g}&to=${g + 1}&path=/h`);
    expect(diff.body).toEqual({ from: g, to: g + 1, path: '/h', changes: [{ path: '/h/vm/name', kind: 'changed', old: 'old', new: 'new', newPerms: ['n0'] }] });
    const blame = await get('/v1/blame/h/vm');
    expect(blame.body.lines).toEqual([
      expect.objectContaining({ path: '/h/vm', generation: g, connection: 'socket' }),
      expect.objectContaining({ path: '/h/vm/name', generation: g + 1, connection: 'socket', kind: 'changed' }),
    ]);
  });

  it('refuses a guest token (403) and no token (401): a guest sees nothing of history', async () => {
    const guest = (await call(base, 'POST', '/v1/tokens', { token: root, body: { domid: 5 } })).body.token as string;
    for (const path of ['/v1/history', '/v1/history?path=/local/domain/5', '/v1/diff?from=0&to=1', '/v1/blame/local', '/v1/node/local?at=1']) {
      const r = await get(path, guest);
      expect(r.status, path).toBe(403);
      expect(JSON.stringify(r.body)).not.toContain('entries');
      expect((await call(base, 'GET', path)).status, path).toBe(401);
    }
  });
});
