/**
 * The HTTP API against the real daemon over real TCP: every route, every error status the
 * routes can reach, and the token rules (none, privileged, guest). Semantics are the wire's:
 * what HTTP writes, a Unix socket client reads, and the other way round. Reads are made with the
 * privileged token (`get`): without one the gateway answers 401 (test/attacks/gateway-anonymous).
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import type { Wire } from '../helpers/wire.js';
import { call } from './gateway-client.js';

let d: RunningDaemon;
let base: string;
let root: string;
let dom0: Wire;

beforeAll(async () => {
  d = await startDaemon({ args: ['--http', '127.0.0.1:0', '--quota', 'nodes=4'] });
  ({ url: base, token: root } = await d.gateway());
  dom0 = await d.connect();
});
afterAll(async () => {
  await d?.stop();
});

const get = (path: string, token = root) => call(base, 'GET', path, { token });

describe('startup', () => {
  it('listens on loopback and writes the address and a 0600 token file', async () => {
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(root).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const { statSync } = await import('node:fs');
    expect(statSync(`${d.rundir}/http-token`).mode & 0o777).toBe(0o600);
  });

  it('starts without warnings on stderr (no deprecated fastify option)', () => {
    // An administrator reads the daemon's start-up output: a runtime warning there (fastify 5's
    // FSTDEP023 for a top-level disableRequestLogging) looks like a fault.
    expect(d.output()).not.toMatch(/Warning|FSTDEP/);
  });
});

describe('GET /v1/node', () => {
  it('reads a node, with children and permissions when asked', async () => {
    await dom0.write('/r/v', 'hello');
    await dom0.mkdir('/r/b');
    expect((await get('/v1/node/r/v')).body).toEqual({ path: '/r/v', value: 'hello', encoding: 'utf8' });
    const r = await get('/v1/node/r?children=1&perms=1');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ path: '/r', value: '', encoding: 'utf8', children: ['b', 'v'], perms: ['n0'] });
    expect((await get('/v1/node/?children=1')).body.children).toEqual(['local', 'r', 'tool']);
    expect((await get('/v1/node')).body.path).toBe('/');
  });

  it('answers bytes that are not UTF-8 as base64, and base64 when asked', async () => {
    await dom0.write('/r/bin', Buffer.from([0xff, 0x00, 0x41]));
    expect((await get('/v1/node/r/bin')).body).toEqual({ path: '/r/bin', value: '/wBB', encoding: 'base64' });
    expect((await get('/v1/node/r/v?encoding=base64')).body).toEqual({ path: '/r/v', value: 'aGVsbG8=', encoding: 'base64' });
  });

  it('is 404 ENOENT for a missing node and 400 EINVAL for a bad path or query', async () => {
    expect(await get('/v1/node/r/missing')).toMatchObject({ status: 404, body: { error: 'ENOENT' } });
    expect(await get('/v1/node/r/bad%20name')).toMatchObject({ status: 400, body: { error: 'EINVAL' } });
    expect(await get('/v1/node/r?children=maybe')).toMatchObject({ status: 400, body: { error: 'EINVAL' } });
    expect(await get('/v1/node/r?colour=1')).toMatchObject({ status: 400, body: { error: 'EINVAL' } });
  });

  it('pages a directory too big for one DIRECTORY reply (spec §7.5, §7.6)', async () => {
    const names = Array.from({ length: 300 }, (_, i) => `child-with-a-long-name-${String(i).padStart(4, '0')}`);
    const ops = names.map((n) => ({ op: 'mkdir', path: `/big/${n}` }));
    expect((await call(base, 'POST', '/v1/transaction', { token: root, body: { ops } })).status).toBe(200);
    // DIRECTORY itself cannot answer: the listing is over 4096 bytes.
    expect(await dom0.ask(Op.DIRECTORY, '/big|')).toBe('E2BIG');
    expect((await get('/v1/node/big?children=1')).body.children).toEqual(names);
    const seen: string[] = [];
    let offset = 0;
    let pages = 0;
    for (;;) {
      const r = await get(`/v1/children/big?offset=${offset}`);
      expect(r.status).toBe(200);
      pages++;
      seen.push(...r.body.children);
      if (r.body.next === undefined) break;
      offset = r.body.next;
    }
    expect(seen).toEqual(names);
    expect(pages).toBe(1); // one answer holds up to 10,000 names; the offset resumes anywhere:
    const tail = await get(`/v1/children/big?offset=${(names[0]!.length + 1) * 299}`);
    expect(tail.body.children).toEqual([names[299]]);
  });
});

describe('writes and tokens', () => {
  it('needs a token to write: none is 401, a wrong or malformed one is 401', async () => {
    const none = await call(base, 'PUT', '/v1/node/w/a', { body: { value: 'x' } });
    expect(none).toMatchObject({ status: 401, body: { error: 'EACCES' } });
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await call(base, 'PUT', '/v1/node/w/a', { token: 'nope', body: { value: 'x' } })).toMatchObject({ status: 401 });
    expect(await call(base, 'PUT', '/v1/node/w/a', { authorization: `Basic ${root}`, body: { value: 'x' } })).toMatchObject({
      status: 401,
      body: { error: 'EACCES' },
    });
    // A wrong token is refused for reads too: a client that tried to authenticate must know.
    expect(await get('/v1/node/r/v', 'nope')).toMatchObject({ status: 401 });
    expect(await call(base, 'DELETE', '/v1/node/r/v')).toMatchObject({ status: 401 });
    expect(await call(base, 'POST', '/v1/mkdir/w/m')).toMatchObject({ status: 401 });
    expect(await call(base, 'PUT', '/v1/perms/r/v', { body: { perms: ['n0'] } })).toMatchObject({ status: 401 });
  });

  it('keeps a connection open after refusing a request whose short body came with its headers', async () => {
    // A refusal is decided on the headers; a body already in the same read must not turn the
    // connection into a lingering close (linger.ts): a keep-alive client sends its next request
    // on it, and had it cut ("other side closed") when it was half-closed without a word.
    const { hostname, port } = new URL(base);
    const body = '{"value":"x"}';
    const put = `PUT /v1/node/w/a HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer nope\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const read = `GET /v1/node/r/v HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${root}\r\n\r\n`;
    const s = connect(Number(port), hostname);
    let got = '';
    let ended = false;
    s.on('data', (chunk: Buffer) => (got += chunk.toString('latin1')));
    s.on('end', () => (ended = true));
    s.write(put);
    await expect.poll(() => got.includes('\r\n\r\n{')).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(ended).toBe(false);
    s.write(read);
    // Responses follow each other with nothing between (the first one's body, then the second's status line).
    await expect.poll(() => got.match(/HTTP\/1\.1 \d{3}/g)?.length ?? 0).toBe(2);
    expect(got.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 401', 'HTTP/1.1 200']);
    s.destroy();
  });

  it('writes, mkdirs, sets permissions and removes with the privileged token, as the wire sees it', async () => {
    expect(await call(base, 'PUT', '/v1/node/w/a', { token: root, body: { value: 'é✓' } })).toMatchObject({ status: 200, body: { ok: true } });
    expect(await dom0.read('/w/a')).toBe(Buffer.from('é✓').toString('latin1'));
    expect(await call(base, 'PUT', '/v1/node/w/b', { token: root, body: { value: 'AAEC', encoding: 'base64' } })).toMatchObject({ status: 200 });
    expect(Buffer.from(await dom0.read('/w/b'), 'latin1')).toEqual(Buffer.from([0, 1, 2]));
    expect(await call(base, 'POST', '/v1/mkdir/w/m', { token: root })).toMatchObject({ status: 200 });
    expect(await dom0.dir('/w')).toEqual(['a', 'b', 'm']);
    expect(await call(base, 'PUT', '/v1/perms/w/m', { token: root, body: { perms: ['n0', 'r7'] } })).toMatchObject({ status: 200 });
    expect(await dom0.getPerms('/w/m')).toEqual(['n0', 'r7']);
    expect((await get('/v1/perms/w/m')).body).toEqual({ path: '/w/m', perms: ['n0', 'r7'] });
    expect(await call(base, 'DELETE', '/v1/node/w/m', { token: root })).toMatchObject({ status: 200 });
    expect(await get('/v1/node/w/m')).toMatchObject({ status: 404 });
  });

  it('validates bodies: 400 EINVAL with the field named', async () => {
    const bad = [
      { body: {} },
      { body: { value: 1 } },
      { body: { value: 'x', extra: true } },
      { body: { value: '***', encoding: 'base64' } },
      { rawBody: '{not json' },
    ];
    for (const b of bad) {
      const r = await call(base, 'PUT', '/v1/node/w/v', { token: root, ...b });
      expect(r.status, JSON.stringify(b)).toBe(400);
      expect(r.body.error).toBe('EINVAL');
      expect(r.body.message).not.toMatch(/at .*\.js/); // never a stack trace
    }
    expect((await call(base, 'PUT', '/v1/node/w/v', { token: root, body: { value: '' } })).status).toBe(200);
    expect(await call(base, 'PUT', '/v1/perms/w/v', { token: root, body: { perms: ['x0'] } })).toMatchObject({ status: 400 });
    expect(await call(base, 'PUT', '/v1/node/w//v', { token: root, body: { value: '' } })).toMatchObject({ status: 400 });
  });

  it('issues guest tokens to the privileged token only', async () => {
    expect(await call(base, 'POST', '/v1/tokens', { body: { domid: 5 } })).toMatchObject({ status: 401 });
    const g = await call(base, 'POST', '/v1/tokens', { token: root, body: { domid: 5 } });
    expect(g).toMatchObject({ status: 200, body: { domid: 5 } });
    expect(await call(base, 'POST', '/v1/tokens', { token: g.body.token, body: { domid: 6 } })).toMatchObject({
      status: 403,
      body: { error: 'EACCES' },
    });
    expect(await call(base, 'POST', '/v1/tokens', { token: root, body: { domid: 0 } })).toMatchObject({ status: 400 });
    expect(await call(base, 'POST', '/v1/tokens', { token: root, body: { domid: 0x7ff0 } })).toMatchObject({ status: 400 });
    expect(await call(base, 'POST', '/v1/tokens', { token: root, body: { domid: 'five' } })).toMatchObject({ status: 400 });
    // Revocation: the token stops working at once.
    expect(await call(base, 'DELETE', `/v1/tokens/${g.body.token}`, { token: root })).toMatchObject({ status: 200 });
    expect(await get('/v1/node/', g.body.token)).toMatchObject({ status: 401 });
    expect(await call(base, 'DELETE', `/v1/tokens/${g.body.token}`, { token: root })).toMatchObject({ status: 404 });
  });

  it('revokes the tokens of a released domain, so a domain reusing its id cannot use them (XSA-322)', async () => {
    const { token } = (await call(base, 'POST', '/v1/tokens', { token: root, body: { domid: 11 } })).body;
    const other = (await call(base, 'POST', '/v1/tokens', { token: root, body: { domid: 12 } })).body.token;
    const g = await d.guest(11);
    g.close();
    expect(await get('/v1/node/local', token)).toMatchObject({ status: 403 }); // known: acts as domain 11
    await dom0.ok(Op.RELEASE, '11\0');
    expect(await get('/v1/node/local', token)).toMatchObject({ status: 401, body: { error: 'EACCES' } });
    expect(await get('/v1/node/local', other)).toMatchObject({ status: 403 }); // another domain's stays
  });

  it('a guest token acts as that domain: its permissions, ownership and quotas', async () => {
    const { token } = (await call(base, 'POST', '/v1/tokens', { token: root, body: { domid: 9 } })).body;
    await dom0.mkdir('/local/domain/9');
    await dom0.setPerms('/local/domain/9', ['n9']);
    await dom0.write('/secret', 's');
    expect(await get('/v1/node/secret', token)).toMatchObject({ status: 403, body: { error: 'EACCES' } });
    expect(await call(base, 'PUT', '/v1/node/secret', { token, body: { value: 'x' } })).toMatchObject({ status: 403 });
    expect(await call(base, 'PUT', '/v1/node/local/domain/9/a', { token, body: { value: 'x' } })).toMatchObject({ status: 200 });
    expect(await dom0.getPerms('/local/domain/9/a')).toEqual(['n9']); // created by the guest: it owns it
    // Value size (node-size quota, unprivileged only): 413 E2BIG.
    const big = 'v'.repeat(2049);
    expect(await call(base, 'PUT', '/v1/node/local/domain/9/a', { token, body: { value: big } })).toMatchObject({
      status: 413,
      body: { error: 'E2BIG' },
    });
    expect((await call(base, 'PUT', '/v1/node/local/domain/9/a', { token: root, body: { value: big } })).status).toBe(200);
    // Not even dom0 sends more than a wire message holds (spec §1.3).
    expect(await call(base, 'PUT', '/v1/node/w/huge', { token: root, body: { value: 'h'.repeat(4096) } })).toMatchObject({
      status: 413,
      body: { error: 'E2BIG' },
    });
    // Node quota (--quota nodes=4; the guest owns /local/domain/9 and /a): 429 ENOSPC.
    const codes: number[] = [];
    for (const n of ['b', 'c', 'd']) codes.push((await call(base, 'PUT', `/v1/node/local/domain/9/${n}`, { token, body: { value: '' } })).status);
    expect(codes).toEqual([200, 200, 429]);
    // A guest's tree view: what it may not read is marked, not fatal.
    const t = await get('/v1/tree/?depth=1', token);
    expect(t.status).toBe(403); // the root is n0: the guest cannot read it
    const own = await get('/v1/tree/local/domain/9', token);
    expect(own.body.tree.children.map((c: { name: string }) => c.name)).toEqual(['a', 'b', 'c']);
  });
});

describe('GET /v1/tree', () => {
  it('returns a bounded subtree, breadth first, and says when it was cut', async () => {
    await dom0.write('/t/a/x', '1');
    await dom0.write('/t/a/y', '2');
    await dom0.write('/t/b', '3');
    const full = await get('/v1/tree/t?perms=1');
    expect(full.body).toEqual({
      path: '/t',
      nodes: 5,
      truncated: false,
      tree: {
        name: 't',
        path: '/t',
        value: '',
        encoding: 'utf8',
        perms: ['n0'],
        children: [
          {
            name: 'a',
            path: '/t/a',
            value: '',
            encoding: 'utf8',
            perms: ['n0'],
            children: [
              { name: 'x', path: '/t/a/x', value: '1', encoding: 'utf8', perms: ['n0'] },
              { name: 'y', path: '/t/a/y', value: '2', encoding: 'utf8', perms: ['n0'] },
            ],
          },
          { name: 'b', path: '/t/b', value: '3', encoding: 'utf8', perms: ['n0'] },
        ],
      },
    });
    const shallow = await get('/v1/tree/t?depth=1');
    expect(shallow.body).toMatchObject({ nodes: 3, truncated: true });
    expect(shallow.body.tree.children[0]).toMatchObject({ name: 'a', truncated: true });
    const few = await get('/v1/tree/t?limit=2');
    expect(few.body).toMatchObject({ nodes: 2, truncated: true });
    expect(await get('/v1/tree/t?limit=0')).toMatchObject({ status: 400 });
    expect(await get('/v1/tree/none')).toMatchObject({ status: 404 });
  });
});

describe('POST /v1/transaction', () => {
  it('commits a batch whole, with per-op results', async () => {
    const r = await call(base, 'POST', '/v1/transaction', {
      token: root,
      body: {
        ops: [
          { op: 'expect', path: '/x/none', value: null },
          { op: 'write', path: '/x/a', value: '1' },
          { op: 'write', path: '/x/b', value: 'Ag==', encoding: 'base64' },
          { op: 'read', path: '/x/a' },
          { op: 'directory', path: '/x' },
          { op: 'set-perms', path: '/x/a', perms: ['n0', 'r3'] },
          { op: 'get-perms', path: '/x/a' },
          { op: 'mkdir', path: '/x/c' },
          { op: 'rm', path: '/x/c' },
        ],
      },
    });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      ok: true,
      attempts: 1,
      results: [null, null, null, { value: '1', encoding: 'utf8' }, ['a', 'b'], null, ['n0', 'r3'], null, null],
    });
    expect(await dom0.dir('/x')).toEqual(['a', 'b']);
  });

  it('applies nothing when a guard fails (412) or an op fails (its status)', async () => {
    await dom0.write('/y/v', 'old');
    const guarded = await call(base, 'POST', '/v1/transaction', {
      token: root,
      body: { ops: [{ op: 'write', path: '/y/w', value: '1' }, { op: 'expect', path: '/y/v', value: 'new' }] },
    });
    expect(guarded).toMatchObject({ status: 412, body: { error: 'EAGAIN' } });
    expect(guarded.body.message).toContain('guard 1 failed');
    const failing = await call(base, 'POST', '/v1/transaction', {
      token: root,
      body: { ops: [{ op: 'write', path: '/y/w', value: '1' }, { op: 'read', path: '/y/missing' }] },
    });
    expect(failing).toMatchObject({ status: 404, body: { error: 'ENOENT' } });
    expect(failing.body.message).toContain('op 1');
    expect(await dom0.dir('/y')).toEqual(['v']);
    const exists = await call(base, 'POST', '/v1/transaction', {
      token: root,
      body: { ops: [{ op: 'expect', path: '/y/v', value: null }] },
    });
    expect(exists.status).toBe(412);
  });

  it('runs read-only batches with a token, refuses any batch without one (401), and validates ops', async () => {
    const ro = await call(base, 'POST', '/v1/transaction', { token: root, body: { ops: [{ op: 'read', path: '/y/v' }, { op: 'expect', path: '/y/v', value: 'old' }] } });
    expect(ro).toMatchObject({ status: 200, body: { results: [{ value: 'old', encoding: 'utf8' }, null] } });
    // What a batch does is in its body, which is not read without credentials.
    expect(await call(base, 'POST', '/v1/transaction', { body: { ops: [{ op: 'read', path: '/y/v' }] } })).toMatchObject({ status: 401 });
    expect(await call(base, 'POST', '/v1/transaction', { body: { ops: [{ op: 'write', path: '/y/v', value: '' }] } })).toMatchObject({
      status: 401,
    });
    expect(await call(base, 'POST', '/v1/transaction', { token: root, body: { ops: [] } })).toMatchObject({ status: 400 });
    expect(await call(base, 'POST', '/v1/transaction', { token: root, body: { ops: [{ op: 'launch', path: '/y' }] } })).toMatchObject({
      status: 400,
    });
  });
});

describe('service routes', () => {
  it('answers /healthz and /readyz, to anyone', async () => {
    expect(await call(base, 'GET', '/healthz')).toMatchObject({ status: 200, body: { ok: true } });
    expect(await call(base, 'GET', '/readyz')).toMatchObject({ status: 200, body: { ready: true } });
  });

  it('serves Prometheus metrics counting what happened, to the privileged token only', async () => {
    await get('/v1/node/r/missing');
    expect(await call(base, 'GET', '/metrics')).toMatchObject({ status: 401 });
    const guest = (await call(base, 'POST', '/v1/tokens', { token: root, body: { domid: 13 } })).body.token;
    expect(await get('/metrics', guest)).toMatchObject({ status: 403 }); // every domain's usage
    const m = await get('/metrics');
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = m.body as string;
    expect(text).toMatch(/^nxenstored_http_requests_total\{route="\/v1\/node\/\*",method="GET",status="404"\} [1-9]/m);
    expect(text).toMatch(/^nxenstored_gateway_ops_total\{op="READ",outcome="ENOENT"\} [1-9]/m);
    expect(text).toMatch(/^nxenstored_http_request_duration_seconds_bucket\{route="\/v1\/node\/\*",method="GET",le="\+Inf"\} [1-9]/m);
    expect(text).toMatch(/^nxenstored_connections\{kind="socket"\} [1-9]/m);
    expect(text).toMatch(/^nxenstored_connections\{kind="http"\} [1-9]/m);
    expect(text).toMatch(/^nxenstored_transactions_committed_total\{path="fast"\} [1-9]/m);
    expect(text).toMatch(/^nxenstored_domain_nodes\{domid="9"\} 4$/m);
    expect(text).toMatch(/^nxenstored_domain_value_bytes\{domid="9"\} \d+$/m);
    expect(text).toMatch(/^nxenstored_watches \d+$/m);
    expect(text).toMatch(/^nxenstored_pending_output_bytes\{transport="websocket"\} \d+$/m);
  });

  it('answers a foreign Host 403 (DNS rebinding against a loopback service)', async () => {
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${base}/v1/node/r/v`, { headers: { host: 'evil.example' } });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
  });

  it('answers a body of an unknown media type 415, and text 400', async () => {
    const put = (type: string) =>
      fetch(`${base}/v1/node/w/t`, { method: 'PUT', headers: { authorization: `Bearer ${root}`, 'content-type': type }, body: 'value=x' });
    const form = await put('application/x-www-form-urlencoded');
    expect(form.status).toBe(415);
    expect(await form.json()).toMatchObject({ error: 'EINVAL' });
    const text = await put('text/plain');
    expect(text.status).toBe(400);
    expect(await text.json()).toMatchObject({ error: 'EINVAL' });
  });

  it('answers unknown routes 404 and a plain GET of the WebSocket 426, as JSON', async () => {
    expect(await get('/v2/nothing')).toMatchObject({ status: 404, body: { error: 'ENOENT' } });
    expect(await get('/v1/ws')).toMatchObject({ status: 426, body: { error: 'EINVAL' } });
  });
});
