/**
 * Route behaviour that real traffic cannot provoke on demand, with fastify `inject` against an
 * in-process daemon: a batch whose commit keeps conflicting, and readiness while stopping.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op, requestPayload } from '../../protocol/index.js';
import type { CommitResult, Transaction } from '../../store/index.js';
import type { Connection } from '../connection/index.js';
import { Daemon } from '../daemon.js';
import { Quotas } from '../quotas/index.js';
import { Gateway } from './gateway.js';
import { Tokens } from './identity.js';
import { buildApp } from './app.js';
import { CHILDREN_MAX } from './routes/node.js';

let rundir: string;
let daemon: Daemon;
let gw: Gateway;
let ready = true;
let app: Awaited<ReturnType<typeof buildApp>>;

beforeAll(async () => {
  rundir = mkdtempSync(join(tmpdir(), 'nxs-gw-unit-'));
  daemon = new Daemon({ rundir, log: pino({ level: 'silent' }), quotas: new Quotas(), accessLog: false });
  gw = new Gateway(daemon, new Tokens());
  app = await buildApp(gw, () => ready);
});
afterAll(async () => {
  await app.close();
  rmSync(rundir, { recursive: true, force: true });
});

/** Makes the next `n` commits report a conflict, as if another client had committed first. */
function conflictNext(n: number): void {
  // TRANSACTION_END commits through `commitFor` (the fairness turn's entry, server/transactions/fairness.ts).
  const real = daemon.commitFor.bind(daemon);
  let left = n;
  daemon.commitFor = (conn: Connection, tx: Transaction): CommitResult | Promise<CommitResult> => {
    if (left > 0) {
      left--;
      daemon.stats.conflicts++;
      return { kind: 'conflict' } as CommitResult;
    }
    return real(conn, tx);
  };
}

const auth = () => ({ authorization: `Bearer ${gw.tokens.privileged}` });

const batch = (retries?: number) => ({
  method: 'POST' as const,
  url: '/v1/transaction',
  headers: auth(),
  payload: { ops: [{ op: 'write', path: '/r/v', value: 'x' }], ...(retries === undefined ? {} : { retries }) },
});

describe('POST /v1/transaction retries', () => {
  it('retries a conflicting commit and reports the attempts', async () => {
    conflictNext(2);
    const r = await app.inject(batch());
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ ok: true, attempts: 3 });
    expect(daemon.store.root.children.get('r')?.children.get('v')?.value).toBe('x');
  });

  it('answers 409 EAGAIN once the retries are spent, leaving no transaction open', async () => {
    conflictNext(3);
    const r = await app.inject(batch(2));
    expect(r.statusCode).toBe(409);
    expect(r.json()).toEqual({ error: 'EAGAIN', message: 'transaction still conflicted after 3 attempts' });
    let open = 0;
    for (const c of daemon.connections) open += c.transactions.size;
    expect(open).toBe(0);
    conflictNext(0);
  });
});

describe('GET /v1/node', () => {
  // The 200 answer goes through a compiled serializer that drops fields its schema does not
  // list: every field of the answer must come back, childrenNext included.
  it('answers every field: value, permissions, a first page of children and where to go on', async () => {
    const s = gw.session({ kind: 'dom0' });
    const names = Array.from({ length: CHILDREN_MAX + 1000 }, (_, i) => `c${String(i).padStart(5, '0')}`);
    const replies = names.map((n) => s.request(Op.MKDIR, requestPayload.mkdir(`/huge/${n}`)));
    for (const r of await Promise.all(replies)) expect(r).toMatchObject({ kind: 'reply', request: { type: Op.MKDIR } });
    const r = await app.inject({ url: '/v1/node/huge?children=1&perms=1', headers: auth() });
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(Object.keys(body)).toEqual(['path', 'value', 'encoding', 'children', 'childrenNext', 'perms']);
    expect(body).toMatchObject({ path: '/huge', value: '', encoding: 'utf8', perms: ['n0'] });
    expect(body.children).toEqual(names.slice(0, body.children.length));
    expect(body.children.length).toBeGreaterThanOrEqual(CHILDREN_MAX);
    expect(body.children.length).toBeLessThan(names.length);
    // childrenNext is the byte offset of the first name not shown (DIRECTORY_PART, spec §7.6).
    expect(body.childrenNext).toBe(body.children.reduce((n: number, c: string) => n + c.length + 1, 0));
    const rest = await app.inject({ url: `/v1/children/huge?offset=${body.childrenNext}`, headers: auth() });
    expect(rest.json().children).toEqual(names.slice(body.children.length));
  });

  it('validates a query string, and reads without one', async () => {
    expect((await app.inject({ url: '/v1/node/huge?colour=1', headers: auth() })).statusCode).toBe(400);
    expect((await app.inject({ url: '/v1/node/huge?', headers: auth() })).json()).toEqual({ path: '/huge', value: '', encoding: 'utf8' });
    expect((await app.inject({ url: '/v1/node/huge?encoding=base64', headers: auth() })).json()).toEqual({ path: '/huge', value: '', encoding: 'base64' });
  });
});

describe('GET /readyz', () => {
  it('is 503 while the daemon stops; /healthz stays 200', async () => {
    ready = false;
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(503);
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    ready = true;
    expect((await app.inject({ url: '/readyz' })).json()).toEqual({ ready: true });
  });

  it('probes make no store request (they are not activity)', async () => {
    const before = daemon.stats.requests;
    await app.inject({ url: '/healthz' });
    await app.inject({ url: '/readyz' });
    await app.inject({ url: '/metrics', headers: auth() });
    expect(daemon.stats.requests).toBe(before);
  });
});
