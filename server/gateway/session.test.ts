/**
 * The gateway must not depend on replies coming back within `process()`: a connection's output
 * may be held back (e.g. until a commit is durable). Here every reply and error of every
 * connection is delayed to a later macrotask, and the routes must answer exactly as before.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op, requestPayload } from '../../protocol/index.js';
import { DOM0 } from '../../store/index.js';
import { Connection } from '../connection/index.js';
import { Daemon } from '../daemon.js';
import { Quotas } from '../quotas/index.js';
import { Gateway } from './gateway.js';
import { Tokens } from './identity.js';
import { buildApp } from './app.js';
import { payloadOf, Session } from './session.js';

let rundir: string;
let daemon: Daemon;
let gw: Gateway;
let app: Awaited<ReturnType<typeof buildApp>>;
const realReply = Connection.prototype.reply;
const realFail = Connection.prototype.fail;

beforeAll(async () => {
  rundir = mkdtempSync(join(tmpdir(), 'nxs-gw-session-'));
  daemon = new Daemon({ rundir, log: pino({ level: 'silent' }), quotas: new Quotas(), accessLog: false });
  gw = new Gateway(daemon, new Tokens());
  app = await buildApp(gw, () => true);
  Connection.prototype.reply = function (this: Connection, ...args: Parameters<Connection['reply']>) {
    setImmediate(() => realReply.apply(this, args));
  };
  Connection.prototype.fail = function (this: Connection, ...args: Parameters<Connection['fail']>) {
    setImmediate(() => realFail.apply(this, args));
  };
});
afterAll(async () => {
  Connection.prototype.reply = realReply;
  Connection.prototype.fail = realFail;
  await app.close();
  rmSync(rundir, { recursive: true, force: true });
});

const auth = () => ({ authorization: `Bearer ${gw.tokens.privileged}` });

describe('Session with delayed replies', () => {
  it('matches each reply to its request by req_id', async () => {
    const s = new Session(daemon, 'http', DOM0);
    const [w, r, missing] = await Promise.all([
      s.request(Op.WRITE, requestPayload.write('/s/a', 'one')),
      s.request(Op.READ, requestPayload.read('/s/a')),
      s.request(Op.READ, requestPayload.read('/s/none')),
    ]);
    expect(w.kind === 'reply' && payloadOf(w).toString('latin1')).toBe('OK\0');
    expect(r.kind === 'reply' && payloadOf(r).toString('latin1')).toBe('one'); // sent after the write: sees it
    expect(missing).toMatchObject({ kind: 'error', code: 'ENOENT' });
    s.close();
  });

  it('waits, as a socket client does, while the admission defers requests (live update)', async () => {
    const s = new Session(daemon, 'http', DOM0);
    daemon.admit = () => false;
    let answered = false;
    const p = s.request(Op.READ, requestPayload.read('/s/a')).then((a) => ((answered = true), a));
    await new Promise((r) => setTimeout(r, 20));
    expect(answered).toBe(false);
    daemon.admit = undefined;
    s.conn.poll();
    expect(await p).toMatchObject({ kind: 'reply', request: { type: Op.READ } });
    s.close();
  });

  it('rejects what is pending when the connection closes', async () => {
    const s = new Session(daemon, 'http', DOM0);
    const p = s.request(Op.READ, requestPayload.read('/s/a'));
    s.close();
    await expect(p).rejects.toMatchObject({ code: 'EIO' });
  });

  it('serves node reads, batches and subtrees the same', async () => {
    const put = await app.inject({ method: 'PUT', url: '/v1/node/g/x', headers: auth(), payload: { value: '1' } });
    expect(put.json()).toEqual({ ok: true });
    const batch = await app.inject({
      method: 'POST',
      url: '/v1/transaction',
      headers: auth(),
      payload: {
        ops: [
          { op: 'expect', path: '/g/x', value: '1' },
          { op: 'write', path: '/g/y', value: '2' },
          { op: 'read', path: '/g/y' },
        ],
      },
    });
    expect(batch.json()).toEqual({ ok: true, attempts: 1, results: [null, null, { value: '2', encoding: 'utf8' }] });
    const failed = await app.inject({
      method: 'POST',
      url: '/v1/transaction',
      headers: auth(),
      payload: { ops: [{ op: 'write', path: '/g/z', value: '' }, { op: 'expect', path: '/g/x', value: 'other' }] },
    });
    expect(failed.statusCode).toBe(412);
    const node = await app.inject({ url: '/v1/node/g?children=1&perms=1', headers: auth() });
    expect(node.json()).toEqual({ path: '/g', value: '', encoding: 'utf8', children: ['x', 'y'], perms: ['n0'] });
    const tree = await app.inject({ url: '/v1/tree/g', headers: auth() });
    expect(tree.json()).toMatchObject({ nodes: 3, truncated: false, tree: { children: [{ name: 'x' }, { name: 'y' }] } });
    expect((await app.inject({ url: '/v1/node/g/none', headers: auth() })).statusCode).toBe(404);
  });
});
