/**
 * Issue 17 item 6: anonymous HTTP reads were privileged. Without a token a gateway client was
 * `socket_ro`, dom0 reading: it read domain 6's `n6` node, dumped the store with `/v1/tree/` and
 * watched `/` over a WebSocket, from any local user's process (a loopback port is open to all).
 * Now a client without a token is refused (401) everywhere but the health probes and the web
 * view's files; with `--http-anonymous read` it reads as an unprivileged domain with no grants:
 * only what every domain may read, never a write, never a privileged route, and its watch
 * events filtered by what it may read (XSA-115).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { FrameDecoder, Op, type Frame } from '../../protocol/index.js';
import { frame, type Wire } from '../helpers/wire.js';
import { call, JsonWs } from '../gateway/gateway-client.js';
import { SECRET, SECRET_PATH, startTarget, type Target } from './victim.js';

/** Every route that shows or changes the store, as a client without a token would call it. */
const ROUTES: readonly [method: string, path: string, body?: unknown][] = [
  ['GET', `/v1/node${SECRET_PATH}`],
  ['GET', '/v1/node/'],
  ['GET', '/v1/tree/'],
  ['GET', `/v1/perms${SECRET_PATH}`],
  ['GET', '/v1/children/local/domain/6'],
  ['PUT', `/v1/node${SECRET_PATH}`, { value: 'overwritten' }],
  ['DELETE', `/v1/node${SECRET_PATH}`],
  ['POST', '/v1/mkdir/local/domain/6/new'],
  ['PUT', `/v1/perms${SECRET_PATH}`, { perms: ['r0'] }],
  ['POST', '/v1/transaction', { ops: [{ op: 'read', path: SECRET_PATH }] }],
  ['POST', '/v1/tokens', { domid: 6 }],
  ['GET', '/metrics'],
];

async function wsRefusal(url: string, protocols: string[] = []): Promise<number | 'open'> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.once('open', () => {
      ws.close();
      resolve('open');
    });
    ws.once('unexpected-response', (req, res) => {
      req.destroy();
      resolve(res.statusCode ?? 0);
    });
    ws.once('error', reject);
  });
}

describe('a gateway without --http-anonymous', () => {
  let t: Target;

  beforeAll(async () => {
    t = await startTarget();
  });
  afterAll(async () => {
    await t?.d.stop();
  });

  it('answers every store route 401 without a token, saying how to get one', async () => {
    for (const [method, path, body] of ROUTES) {
      const r = await call(t.base, method, path, body === undefined ? {} : { body });
      expect(r.status, `${method} ${path}`).toBe(401);
      expect(r.body.error, `${method} ${path}`).toBe('EACCES');
      expect(r.body.message, `${method} ${path}`).toMatch(/token.*http-token/);
      expect(JSON.stringify(r.body)).not.toContain(SECRET);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    await t.victim.intact();
  });

  it('refuses a WebSocket without a token at the handshake, JSON or binary', async () => {
    const ws = `${t.base.replace(/^http/, 'ws')}/v1/ws`;
    expect(await wsRefusal(ws)).toBe(401);
    expect(await wsRefusal(ws, ['xenstore'])).toBe(401);
    await t.victim.intact();
  });

  it('still answers the health probes, the web view and unknown URLs (404) to anyone: they show nothing of the store', async () => {
    expect((await call(t.base, 'GET', '/healthz')).status).toBe(200);
    expect((await call(t.base, 'GET', '/readyz')).status).toBe(200);
    expect((await call(t.base, 'GET', '/')).status).toBe(200);
    // An unknown URL is 404 for anyone: it is no credentials problem, and it shows nothing.
    expect(await call(t.base, 'GET', '/ui/')).toMatchObject({ status: 404, body: { error: 'ENOENT' } });
  });
});

describe('a gateway with --http-anonymous read', () => {
  let t: Target;
  let dom0: Wire;

  beforeAll(async () => {
    t = await startTarget(['--http-anonymous', 'read']);
    dom0 = await t.d.connect();
    // World-readable (entry 0 grants read to every domain), world-writable, and dom0's own.
    await dom0.write('/pub/notice', 'for everyone');
    await dom0.setPerms('/pub', ['r0']);
    await dom0.setPerms('/pub/notice', ['r0']);
    await dom0.write('/pub/board', 'anyone may write');
    await dom0.setPerms('/pub/board', ['b0']);
    await dom0.write('/pub/private', 'dom0 only');
    await dom0.setPerms('/pub/private', ['n0']);
    await dom0.write('/hidden/x', 'dom0 only');
    // Readable by domain 6 only: an ACL grant is not a grant to everyone.
    await t.victim.dom6.write('/local/domain/6/shared', 'for dom0 and 6');
    await t.victim.dom6.setPerms('/local/domain/6/shared', ['n6', 'r0']);
  });
  afterAll(async () => {
    await t?.d.stop();
  });

  it('reads what every domain may read, and nothing else', async () => {
    expect(await call(t.base, 'GET', '/v1/node/pub/notice')).toMatchObject({ status: 200, body: { value: 'for everyone' } });
    expect(await call(t.base, 'GET', '/v1/node/pub/board')).toMatchObject({ status: 200, body: { value: 'anyone may write' } });
    for (const path of [SECRET_PATH, '/local/domain/6/shared', '/pub/private', '/', '/local/domain/6']) {
      const r = await call(t.base, 'GET', `/v1/node${path}`);
      expect(r, path).toMatchObject({ status: 403, body: { error: 'EACCES' } });
    }
    expect(await call(t.base, 'GET', `/v1/perms${SECRET_PATH}`)).toMatchObject({ status: 403 });
    expect(await call(t.base, 'GET', '/v1/children/local/domain/6')).toMatchObject({ status: 403 });
    // The store's t.root is n0: no dump of the store.
    expect(await call(t.base, 'GET', '/v1/tree/')).toMatchObject({ status: 403, body: { error: 'EACCES' } });
    // Below a readable node, what it may not read carries the error and no value.
    const pub = await call(t.base, 'GET', '/v1/tree/pub');
    expect(pub.status).toBe(200);
    const byName = Object.fromEntries(pub.body.tree.children.map((c: { name: string }) => [c.name, c]));
    expect(byName.notice).toMatchObject({ value: 'for everyone' });
    expect(byName.private).toEqual({ name: 'private', path: '/pub/private', error: 'EACCES' });
    await t.victim.intact();
  });

  it('never writes, not even where every domain may, and never calls a privileged route', async () => {
    for (const [method, path, body] of [
      ['PUT', '/v1/node/pub/board', { value: 'defaced' }],
      ['DELETE', '/v1/node/pub/board'],
      ['POST', '/v1/mkdir/pub/board/x'],
      ['PUT', '/v1/perms/pub/board', { perms: ['b0'] }],
      ['POST', '/v1/transaction', { ops: [{ op: 'write', path: '/pub/board', value: 'defaced' }] }],
      ['POST', '/v1/tokens', { domid: 6 }],
      ['GET', '/metrics'],
    ] as const) {
      const r = await call(t.base, method, path, body === undefined ? {} : { body });
      expect(r.status, `${method} ${path}`).toBe(401);
    }
    expect(await dom0.read('/pub/board')).toBe('anyone may write');
    await t.victim.intact();
  });

  it('over a WebSocket: reads as the same domain, writes nothing, and hears only of nodes it may read (XSA-115)', async () => {
    const ws = await JsonWs.open(`${t.base.replace(/^http/, 'ws')}/v1/ws`);
    expect(await ws.ok({ op: 'read', path: '/pub/notice' })).toEqual({ value: 'for everyone', encoding: 'utf8' });
    expect(await ws.ask({ op: 'read', path: SECRET_PATH })).toMatchObject({ ok: false, error: 'EACCES' });
    expect(await ws.ask({ op: 'directory', path: '/' })).toMatchObject({ ok: false, error: 'EACCES' });
    expect(await ws.ask({ op: 'write', path: '/pub/board', value: 'defaced' })).toMatchObject({ ok: false, error: 'EACCES' });
    const { tx } = await ws.ok({ op: 'transaction-start' });
    expect(await ws.ask({ op: 'write', path: '/pub/board', value: 'defaced', tx })).toMatchObject({ ok: false, error: 'EACCES' });
    await ws.ok({ op: 'transaction-end', tx, commit: true });

    await ws.ok({ op: 'watch', path: '/', token: 'all' });
    expect(await ws.events(1)).toEqual(['/ all']); // a new watch fires once for its own path
    await t.victim.dom6.write(SECRET_PATH, SECRET); // domain 6 rewrites its secret: not to be heard
    await dom0.write('/hidden/x', 'changed'); // n0, under n0: not to be heard either
    await dom0.write('/pub/notice', 'for everyone');
    expect(await ws.events(1)).toEqual(['/pub/notice all']);
    await ws.ok({ op: 'read', path: '/pub/notice' }); // a round trip: a later event would be here
    expect(ws.pendingEvents()).toEqual([]);
    ws.close();
    expect(await dom0.read('/pub/board')).toBe('anyone may write');
    await t.victim.intact();
  });

  it('in binary mode too: the wire requests of an unprivileged read-only domain', async () => {
    const ws = new WebSocket(`${t.base.replace(/^http/, 'ws')}/v1/ws`, ['xenstore']);
    const frames: Frame[] = [];
    const decoder = new FrameDecoder();
    ws.on('message', (data: Buffer) => {
      decoder.push(data);
      for (let f = decoder.next(); f !== undefined; f = decoder.next()) frames.push({ header: f.header, payload: Buffer.from(f.payload) });
    });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(frame(Op.READ, `${SECRET_PATH}\0`, 1));
    ws.send(frame(Op.WRITE, '/pub/board\0defaced', 2));
    ws.send(frame(Op.INTRODUCE, '9\0' + '4096\0' + '10\0', 3));
    ws.send(frame(Op.READ, '/pub/notice\0', 4));
    const deadline = Date.now() + 10_000;
    while (frames.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    ws.close();
    expect(frames.map((f) => `${f.header.reqId} ${f.header.type === Op.ERROR ? 'ERROR' : 'OK'} ${f.payload.toString('latin1')}`)).toEqual([
      '1 ERROR EACCES\0',
      '2 ERROR EACCES\0',
      '3 ERROR EACCES\0',
      '4 OK for everyone',
    ]);
    await t.victim.intact();
  });
});
