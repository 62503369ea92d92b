/**
 * The WebSocket endpoint against the real daemon over real sockets: the JSON protocol (every op,
 * errors, validation), watch events in commit order across a transaction, credentials at the
 * handshake, and the bound on a client that does not read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import type { Wire } from '../helpers/wire.js';
import { call, JsonWs } from './gateway-client.js';

let d: RunningDaemon;
let base: string;
let wsBase: string;
let root: string;
let dom0: Wire;
const open: JsonWs[] = [];

async function client(query = '', opts: Parameters<typeof JsonWs.open>[1] = {}): Promise<JsonWs> {
  const c = await JsonWs.open(`${wsBase}/v1/ws${query}`, opts);
  open.push(c);
  return c;
}

beforeAll(async () => {
  d = await startDaemon({ args: ['--http', '127.0.0.1:0'] });
  ({ url: base, token: root } = await d.gateway());
  wsBase = base.replace(/^http/, 'ws');
  dom0 = await d.connect();
});
afterAll(async () => {
  for (const c of open) c.close();
  await d?.stop();
});

describe('JSON protocol', () => {
  it('answers every op with one reply, results as the contract says', async () => {
    const c = await client(`?token=${root}`);
    expect(await c.ask({ op: 'write', path: '/j/a', value: 'v1' })).toEqual({ id: 1, ok: true });
    expect(await c.ask({ op: 'read', path: '/j/a' })).toEqual({ id: 2, ok: true, result: { value: 'v1', encoding: 'utf8' } });
    expect(await c.ok({ op: 'read', path: '/j/a', encoding: 'base64' })).toEqual({ value: 'djE=', encoding: 'base64' });
    await c.ok({ op: 'write', path: '/j/bin', value: '/w==', encoding: 'base64' });
    expect(await c.ok({ op: 'read', path: '/j/bin' })).toEqual({ value: '/w==', encoding: 'base64' });
    await c.ok({ op: 'mkdir', path: '/j/m' });
    expect(await c.ok({ op: 'directory', path: '/j' })).toEqual(['a', 'bin', 'm']);
    await c.ok({ op: 'set-perms', path: '/j/m', perms: ['n0', 'r4'] });
    expect(await c.ok({ op: 'get-perms', path: '/j/m' })).toEqual(['n0', 'r4']);
    await c.ok({ op: 'rm', path: '/j/m' });
    expect(await c.ok({ op: 'get-domain-path', domid: 4 })).toBe('/local/domain/4');
    expect(await c.ask({ id: 'text-id', op: 'read', path: '/j/a' })).toMatchObject({ id: 'text-id', ok: true });
    expect(await dom0.read('/j/a')).toBe('v1'); // the same store as the Unix socket
  });

  it('answers errors as { id, ok: false, error, message }', async () => {
    const c = await client(`?token=${root}`);
    expect(await c.ask({ id: 7, op: 'read', path: '/j/none' })).toEqual({
      id: 7,
      ok: false,
      error: 'ENOENT',
      message: 'read /j/none: no such node',
    });
    expect(await c.ask({ id: 8, op: 'read', path: 'bad path' })).toMatchObject({ id: 8, ok: false, error: 'EINVAL' });
    expect(await c.ask({ id: 'big', op: 'write', path: '/j/big', value: 'b'.repeat(5000) })).toMatchObject({ ok: false, error: 'E2BIG' });
    expect(await c.ask({ id: 9, op: 'transaction-end', tx: 99, commit: true })).toMatchObject({ id: 9, error: 'ENOENT' });
    expect(await c.ask({ id: 10, op: 'unwatch', path: '/j', token: 'none' })).toMatchObject({ id: 10, error: 'ENOENT' });
    // Schema failures name the field; the id is echoed when it can be read.
    const bad = await c.ask({ id: 11, op: 'write', path: '/j/a' });
    expect(bad).toMatchObject({ id: 11, ok: false, error: 'EINVAL' });
    expect(bad.message).toMatch(/value/);
    expect(await c.ask({ id: 12, op: 'launch' })).toMatchObject({ id: 12, error: 'EINVAL' });
    c.ws.send('{not json');
    c.ws.send(JSON.stringify({ op: 'read', path: '/j/a' }));
    expect(await c.ok({ op: 'read', path: '/j/a' })).toMatchObject({ value: 'v1' }); // still usable
    expect(c.log.filter((m) => m.id === null)).toEqual([
      { id: null, ok: false, error: 'EINVAL', message: 'not JSON' },
      { id: null, ok: false, error: 'EINVAL', message: expect.stringMatching(/id/) },
    ]);
  });

  it('closes with 1003 on a binary message in JSON mode', async () => {
    const c = await client(`?token=${root}`);
    c.ws.send(Buffer.from([1, 2, 3]));
    expect((await c.closed).code).toBe(1003);
  });
});

describe('watches and transactions', () => {
  it('delivers events in commit order: nothing before the commit, one per node after', async () => {
    const watcher = await client(`?token=${root}`);
    const unix = await d.connect();
    await watcher.ok({ op: 'watch', path: '/tw', token: 'T' });
    await unix.watch('/tw', 'U');
    expect(await watcher.events(1)).toEqual(['/tw T']); // a new watch fires once for its own path
    expect(await unix.drain()).toEqual(['/tw U']);

    const writer = await client(`?token=${root}`);
    const { tx } = await writer.ok({ op: 'transaction-start' });
    expect(tx).toBeGreaterThan(0);
    await writer.ok({ op: 'write', path: '/tw/b', value: '1', tx });
    await writer.ok({ op: 'write', path: '/tw/a', value: '2', tx });
    await writer.ok({ op: 'mkdir', path: '/tw/c', tx });
    expect(await writer.ok({ op: 'read', path: '/tw/a', tx })).toEqual({ value: '2', encoding: 'utf8' });
    // Not committed: invisible outside, and no event yet.
    expect(await call(base, 'GET', '/v1/node/tw/a', { token: root })).toMatchObject({ status: 404 });
    expect(await watcher.ok({ op: 'read', path: '/tw' }).catch(() => 'ENOENT')).toBe('ENOENT');
    expect(watcher.pendingEvents()).toEqual([]);
    await writer.ok({ op: 'transaction-end', tx, commit: true });
    // One event per node in first-touch order, the same on the WebSocket as on the Unix socket.
    expect(await watcher.events(3)).toEqual(['/tw/b T', '/tw/a T', '/tw/c T']);
    expect(await unix.drain()).toEqual(['/tw/b U', '/tw/a U', '/tw/c U']);

    // A batch over HTTP fires the same way, after its commit.
    const r = await call(base, 'POST', '/v1/transaction', {
      token: root,
      body: { ops: [{ op: 'write', path: '/tw/z', value: '' }, { op: 'rm', path: '/tw/b' }] },
    });
    expect(r.status).toBe(200);
    expect(await watcher.events(2)).toEqual(['/tw/z T', '/tw/b T']);
    await watcher.ok({ op: 'unwatch', path: '/tw', token: 'T' });
    await writer.ok({ op: 'write', path: '/tw/after', value: '' });
    await watcher.ok({ op: 'read', path: '/tw/after' }); // a round trip: any event would be here
    expect(watcher.pendingEvents()).toEqual([]);
    unix.close();
  });

  it('answers EAGAIN to a conflicting commit, and aborting applies nothing', async () => {
    const a = await client(`?token=${root}`);
    const b = await client(`?token=${root}`);
    await a.ok({ op: 'write', path: '/c/v', value: '0' });
    const ta = (await a.ok({ op: 'transaction-start' })).tx;
    const tb = (await b.ok({ op: 'transaction-start' })).tx;
    const va = await a.ok({ op: 'read', path: '/c/v', tx: ta });
    const vb = await b.ok({ op: 'read', path: '/c/v', tx: tb });
    await a.ok({ op: 'write', path: '/c/v', value: `${va.value}a`, tx: ta });
    await b.ok({ op: 'write', path: '/c/v', value: `${vb.value}b`, tx: tb });
    await a.ok({ op: 'transaction-end', tx: ta, commit: true });
    expect(await b.ask({ id: 'end', op: 'transaction-end', tx: tb, commit: true })).toMatchObject({ ok: false, error: 'EAGAIN' });
    const tc = (await b.ok({ op: 'transaction-start' })).tx;
    await b.ok({ op: 'write', path: '/c/v', value: 'never', tx: tc });
    await b.ok({ op: 'transaction-end', tx: tc, commit: false });
    expect(await dom0.read('/c/v')).toBe('0a');
  });

  it('drops the watches and transactions of a closed client', async () => {
    const c = await client(`?token=${root}`);
    await c.ok({ op: 'watch', path: '/gone', token: 'g' });
    const metrics = async () => (await call(base, 'GET', '/metrics', { token: root })).body as string;
    const before = await metrics();
    const count = (text: string) => Number(/^nxenstored_watches (\d+)$/m.exec(text)![1]);
    expect(count(before)).toBeGreaterThan(0);
    expect(before).toMatch(/^nxenstored_connections\{kind="ws"\} [1-9]/m);
    c.close();
    await c.closed;
    for (let i = 0; i < 100; i++) {
      const now = count(await metrics());
      if (now === count(before) - 1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(count(await metrics())).toBe(count(before) - 1);
  });
});

describe('credentials', () => {
  it('refuses a wrong token at the handshake with 401', async () => {
    await expect(client('?token=wrong')).rejects.toMatchObject({ status: 401 });
    await expect(client('', { headers: { authorization: 'Bearer wrong' } })).rejects.toMatchObject({ status: 401 });
    await expect(JsonWs.open(`${wsBase}/v1/elsewhere`)).rejects.toMatchObject({ status: 404 });
  });

  it('answers a malformed upgrade request 400 and stays up', async () => {
    const { connect } = await import('node:net');
    const { port } = new URL(base);
    const answer = await new Promise<string>((resolve, reject) => {
      const s = connect(Number(port), '127.0.0.1');
      let text = '';
      s.on('data', (c) => (text += c.toString()));
      s.on('close', () => resolve(text));
      s.on('error', reject);
      s.write(
        'GET http://[bad HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect((await call(base, 'GET', '/healthz')).status).toBe(200);
  });

  it('refuses a cross-site upgrade (another Origin) with 403, accepts its own', async () => {
    await expect(client('', { origin: 'http://evil.example' })).rejects.toMatchObject({ status: 403 });
    const own = await client(`?token=${root}`, { origin: base });
    expect(await own.ok({ op: 'read', path: '/j/a' })).toMatchObject({ value: 'v1' });
  });

  it('refuses a client without a token at the handshake with 401 (no anonymous reads by default)', async () => {
    await expect(client()).rejects.toMatchObject({ status: 401 });
    await expect(client('', { protocols: ['xenstore'] })).rejects.toMatchObject({ status: 401 });
  });

  it('takes the token from the Authorization header too', async () => {
    const c = await client('', { headers: { authorization: `Bearer ${root}` } });
    await c.ok({ op: 'write', path: '/j/h', value: 'x' });
  });

  it('acts as the guest of a guest token, hearing only what it may read (XSA-115)', async () => {
    const { token } = (await call(base, 'POST', '/v1/tokens', { token: root, body: { domid: 3 } })).body;
    await dom0.mkdir('/local/domain/3');
    await dom0.setPerms('/local/domain/3', ['n3']);
    const g = await client(`?token=${token}`);
    expect(await g.ok({ op: 'get-domain-path', domid: 3 })).toBe('/local/domain/3');
    expect(await g.ask({ op: 'read', path: '/j/a' })).toMatchObject({ error: 'EACCES' });
    await g.ok({ op: 'write', path: 'rel', value: 'relative to my home' });
    expect(await dom0.read('/local/domain/3/rel')).toBe('relative to my home');
    await g.ok({ op: 'watch', path: '/', token: 'all' });
    expect(await g.events(1)).toEqual(['/ all']);
    await dom0.write('/hidden', 'x'); // n0: the guest may not hear of it
    await dom0.write('/local/domain/3/seen', 'y');
    expect(await g.events(1)).toEqual(['/local/domain/3/seen all']);
  });

  it('closes a guest client when its domain is released, like the domain socket', async () => {
    const guestSocket = await d.guest(11); // INTRODUCE 11
    const { token } = (await call(base, 'POST', '/v1/tokens', { token: root, body: { domid: 11 } })).body;
    const g = await client(`?token=${token}`);
    expect(await g.ok({ op: 'get-domain-path', domid: 11 })).toBe('/local/domain/11');
    expect(await dom0.ask(Op.RELEASE, '11|')).toBe('OK|');
    expect(await g.closed).toEqual({ code: 1001, reason: 'connection closed by the daemon' });
    guestSocket.close();
  });
});

describe('slow consumer', () => {
  it('closes a client that does not read its events with 1013 and a reason', async () => {
    const slow = await JsonWs.open(`${wsBase}/v1/ws?token=${root}`);
    open.push(slow);
    // A long token makes every event ~3 KiB: the kernel buffers fill after a few thousand.
    await slow.ok({ op: 'watch', path: '/flood', token: 't'.repeat(3000) });
    await slow.events(1);
    slow.ws.pause();
    const ops = Array.from({ length: 1000 }, (_, i) => ({ op: 'write', path: `/flood/${i}`, value: '' }));
    let closes = 0;
    for (let round = 0; round < 20 && closes === 0; round++) {
      expect((await call(base, 'POST', '/v1/transaction', { token: root, body: { ops } })).status).toBe(200);
      closes = Number(/^nxenstored_ws_slow_consumer_closes_total (\d+)$/m.exec((await call(base, 'GET', '/metrics', { token: root })).body)![1]);
    }
    expect(closes).toBe(1);
    slow.ws.resume();
    const closed = await slow.closed;
    expect(closed.code).toBe(1013);
    expect(closed.reason).toMatch(/slow consumer/);
    // Everyone else is unaffected.
    expect(await call(base, 'GET', '/v1/node/flood/0', { token: root })).toMatchObject({ status: 200 });
  });
});
