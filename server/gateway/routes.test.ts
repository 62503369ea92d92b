/**
 * Route behaviour that real traffic cannot provoke on demand, with fastify `inject` against an
 * in-process daemon: a batch whose commit keeps conflicting, and readiness while stopping.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommitResult, Transaction } from '../../store/index.js';
import type { Connection } from '../connection.js';
import { Daemon } from '../daemon.js';
import { Quotas } from '../quotas.js';
import { Gateway } from './gateway.js';
import { Tokens } from './identity.js';
import { buildApp } from './index.js';

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
  // TRANSACTION_END commits through `commitFor` (the fairness turn's entry, server/fairness.ts).
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

const batch = (retries?: number) => ({
  method: 'POST' as const,
  url: '/v1/transaction',
  headers: { authorization: `Bearer ${gw.tokens.privileged}` },
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
    await app.inject({ url: '/metrics' });
    expect(daemon.stats.requests).toBe(before);
  });
});
