/**
 * The gateway on a Unix socket (`--http unix:PATH`), and `nxs token --domid N`, which finds the
 * gateway through `<rundir>/http-address` and authenticates with `<rundir>/http-token`.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type NxsIo } from '../../clients/nxs.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';

let socketPath: string;

let live: RunningDaemon;
beforeAll(async () => {
  socketPath = join(mkdtempSync(join(tmpdir(), 'nxs-http-')), 'http.sock');
  live = await startDaemon({ args: ['--http', `unix:${socketPath}`] });
});
afterAll(async () => {
  await live?.stop();
  rmSync(dirname(socketPath), { recursive: true, force: true });
});

function get(path: string, token?: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function nxs(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: NxsIo = { stdout: { write: (c) => (out += String(c)) }, stderr: { write: (c) => (err += c) }, env: {} };
  const code = await main(argv, io);
  return { code, out, err };
}

describe('gateway on a Unix socket', () => {
  it('serves HTTP there, mode 0600, and says so in http-address', async () => {
    const { url, token } = await live.gateway();
    expect(url).toBe(`unix:${socketPath}`);
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    expect(await get('/v1/node/tool', token)).toEqual({ status: 200, body: { path: '/tool', value: '', encoding: 'utf8' } });
    // The socket's mode is no reason to trust its clients: no token, no answer.
    expect(await get('/v1/node/tool')).toMatchObject({ status: 401, body: { error: 'EACCES' } });
  });

  it('nxs token --domid N prints a token that acts as guest N', async () => {
    const r = await nxs(['--rundir', live.rundir, 'token', '--domid', '12']);
    expect(r).toMatchObject({ code: 0, err: '' });
    const token = r.out.trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await get('/v1/node/tool', token)).toMatchObject({ status: 403, body: { error: 'EACCES' } });
    const w = await live.connect();
    await w.mkdir('/local/domain/12');
    await w.setPerms('/local/domain/12', ['n12']);
    expect(await get('/v1/node/local/domain/12', token)).toMatchObject({ status: 200 });
  });

  it('nxs token without --domid, or for domain 0, is a usage error (2)', async () => {
    expect((await nxs(['--rundir', live.rundir, 'token'])).code).toBe(2);
    expect((await nxs(['--rundir', live.rundir, 'token', '--domid', '0'])).code).toBe(2);
  });
});
