/**
 * Gateway HTTP load test (`npm run bench:gateway`, with ws-load.ts): autocannon against the real
 * daemon's gateway, and etcd 3.4's JSON gateway as the peer, in the same run:
 *
 * - reads (`GET /v1/node/bench/r/k<i>`) and writes (`PUT`, privileged token) over TCP, and
 *   etcd's `POST /v3/kv/range` / `POST /v3/kv/put` (keys base64) on the same keys;
 * - the same reads and writes over a Unix socket (`--http unix:/path`);
 * - atomic batches (`POST /v1/transaction`: a guard, two writes and a read).
 *
 * Each row prints requests per second (total requests / duration), p50 and p99 latency, the CPU
 * the server and this load generator spent per request (all threads, /proc/<pid>/stat), and the
 * count of non-2xx answers and socket errors, which must be 0 for the row to mean anything. Each
 * connection walks the --keys keys in turn, so no row measures one hot node only. The requests
 * are a fixed list built once (autocannon then sends prebuilt buffers): a `setupRequest` callback
 * would rebuild every request in the load generator, which shares the machine's two cores with
 * the server under test.
 *
 * Rows run with one request in flight per connection (`-p 1`, the headline and the targets'
 * setting) and, for the TCP reads and writes of both servers, also with HTTP pipelining (`-p 8`:
 * eight requests in flight per connection, as autocannon's `pipelining`), labelled `-p 8`.
 *
 * The targets (issue 5): our reads >= 5x etcd's reads, our writes >= 3x etcd's writes, both under
 * autocannon -c 32 on this machine.
 *
 * The rows run --rounds times, our rows and etcd's interleaved (ours, etcd, ours, etcd, ...), so a
 * change in the machine's load hits both sides of a ratio alike; the summary shows each row's
 * median over the rounds, and each ratio as the median of the per-round ratios.
 *
 * With --floor, the TCP read and write rows also run, in the same rounds, against the fastify
 * floor (`bench/null-gateway.ts`: the gateway's fastify set-up answering the same requests with no
 * store behind it). It is not a peer; the summary prints its ratio to etcd beside ours, which is
 * as far as any gateway on fastify could take the ratio on this machine.
 *
 * Options: --duration=10 (seconds per row)  --warmup=2 (seconds per row, discarded)  --rounds=3
 * --connections=32  --keys=1000  --pipelining=1,8 (depths of the TCP read/write rows)
 * --only=REGEX (rows by name)  --no-etcd  --floor  --json=FILE
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { dirname } from 'node:path';
import autocannon from 'autocannon';
import { b64, cpuSeconds, startEtcd, startNullGateway, startNxenstored, type Server } from './http-servers.js';
import { option } from './cli-option.js';
import { fmt, markdownTable, median, runContext } from './metric.js';

const DURATION = Number(option('duration', '10'));
const WARMUP = Number(option('warmup', '2'));
const CONNECTIONS = Number(option('connections', '32'));
const KEYS = Number(option('keys', '1000'));
const ROUNDS = Number(option('rounds', '3'));
const DEPTHS = option('pipelining', '1,8')
  .split(',')
  .map(Number)
  .filter((n) => Number.isInteger(n) && n >= 1);
const ONLY = new RegExp(option('only', '.'));
const ETCD_ON = option('no-etcd', 'false') !== 'true';
const FLOOR_ON = option('floor', 'false') !== 'false';
/** The target name of the floor's rows (not a peer: in no ratio of ours). */
const FLOOR = 'fastify floor';
const JSON_FILE = option('json', '');

interface Row {
  readonly name: string;
  readonly target: string;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly requests: number;
  readonly bad: number;
  readonly errors: number;
  /** Requests per CPU-second of the server process (all its threads) during the row. */
  readonly perCpu: number;
  /** CPU µs of the server (all threads) per request. */
  readonly serverUs: number;
  /** CPU µs of this load generator (all threads) per request. */
  readonly clientUs: number;
  readonly round: number;
}

type Requests = autocannon.Request[];

/** `keyed(method, make)` is one request per key, sent in turn by every connection. */
function keyed(method: autocannon.Request['method'], make: (i: number) => { path: string; body?: string }): Requests {
  return Array.from({ length: KEYS }, (_, i) => ({ method, ...make(i) }));
}

async function load(server: Server, requests: Requests, headers: Record<string, string>, seconds: number, depth: number): Promise<autocannon.Result> {
  return autocannon({
    url: server.url,
    ...(server.socketPath !== undefined ? { socketPath: server.socketPath } : {}),
    connections: CONNECTIONS,
    pipelining: depth,
    duration: seconds,
    headers,
    requests,
  });
}

const rows: Row[] = [];
let round = 0;

async function measure(
  name: string,
  target: string,
  server: Server,
  requests: Requests,
  headers: Record<string, string> = {},
  depth = 1,
): Promise<void> {
  if (!ONLY.test(name)) return;
  process.stderr.write(`  [${round}/${ROUNDS}] ${name} (${target}) ...`);
  if (WARMUP > 0) await load(server, requests, headers, WARMUP, depth);
  const cpu0 = cpuSeconds(server.pid);
  const own0 = cpuSeconds(process.pid);
  const r = await load(server, requests, headers, DURATION, depth);
  const cpu = cpuSeconds(server.pid) - cpu0;
  const own = cpuSeconds(process.pid) - own0;
  const row: Row = {
    name,
    target,
    rps: r.requests.total / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    requests: r.requests.total,
    bad: r.non2xx,
    errors: r.errors + r.timeouts,
    perCpu: r.requests.total / cpu,
    serverUs: (1e6 * cpu) / r.requests.total,
    clientUs: (1e6 * own) / r.requests.total,
    round,
  };
  rows.push(row);
  process.stderr.write(
    ` ${fmt(row.rps)} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms, CPU per request: server ${row.serverUs.toFixed(1)} µs, load generator ${row.clientUs.toFixed(1)} µs${row.bad + row.errors > 0 ? `, ${row.bad} non-2xx, ${row.errors} errors` : ''}\n`,
  );
}

const auth = (s: Server) => ({ authorization: `Bearer ${s.token}`, 'content-type': 'application/json' });
/** Reads carry the token too: the gateway answers no client without one (README, gateway). */
const readAuth = (s: Server) => ({ authorization: `Bearer ${s.token}` });
const readPath = (i: number) => `/v1/node/bench/r/k${i}`;

/** Writes the read keys (and a node per batch key) before the rows run. */
async function populate(s: Server): Promise<void> {
  for (let start = 0; start < KEYS; start += 500) {
    const ops = [];
    for (let i = start; i < Math.min(KEYS, start + 500); i++) ops.push({ op: 'write', path: `/bench/r/k${i}`, value: `value-${i}` });
    await request(s, 'POST', '/v1/transaction', JSON.stringify({ ops }));
  }
}

/** One request with node:http (fetch cannot use a Unix socket); throws unless 2xx. */
function request(s: Server, method: string, path: string, body: string): Promise<string> {
  return new Promise((res, rej) => {
    const req = httpRequest(
      {
        method,
        path,
        ...(s.socketPath !== undefined ? { socketPath: s.socketPath } : { host: new URL(s.url).hostname, port: new URL(s.url).port }),
        headers: { ...auth(s), 'content-length': Buffer.byteLength(body) },
      },
      (r) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => (text += d));
        r.on('end', () => (r.statusCode! < 300 ? res(text) : rej(new Error(`${method} ${path}: ${r.statusCode} ${text}`))));
      },
    );
    req.on('error', rej);
    req.end(body);
  });
}

/** The other servers of a round: etcd (the peer) and the fastify floor, when they run. */
interface Others {
  readonly etcd: Server | undefined;
  readonly floor: Server | undefined;
}

async function ours(transport: 'tcp' | 'unix', others: Others): Promise<void> {
  const s = await startNxenstored(transport);
  try {
    await populate(s);
    const t = transport;
    for (round = 1; round <= ROUNDS; round++) await oneRound(t, s, others);
  } finally {
    await s.stop();
  }
}

/** The row name at a pipelining depth: the plain name at depth 1 (the headline rows). */
const atDepth = (name: string, depth: number) => (depth === 1 ? name : `${name} -p ${depth}`);

async function oneRound(t: 'tcp' | 'unix', s: Server, { etcd, floor }: Others): Promise<void> {
  const reads = keyed('GET', (i) => ({ path: readPath(i) }));
  const etcdReads = keyed('POST', (i) => ({ path: '/v3/kv/range', body: JSON.stringify({ key: b64(`bench/r/k${i}`) }) }));
  const writes = keyed('PUT', (i) => ({ path: `/v1/node/bench/w/k${i}`, body: JSON.stringify({ value: `written-${i}` }) }));
  const etcdWrites = keyed('POST', (i) => ({
    path: '/v3/kv/put',
    body: JSON.stringify({ key: b64(`bench/w/k${i}`), value: b64(`written-${i}`) }),
  }));
  // Pipelined rows over TCP only, where etcd answers the same load.
  for (const depth of t === 'tcp' ? DEPTHS : [1]) {
    await measure(atDepth(`read ${t}`, depth), 'nxenstored', s, reads, readAuth(s), depth);
    if (floor !== undefined && t === 'tcp') await measure(atDepth('read tcp', depth), FLOOR, floor, reads, readAuth(s), depth);
    if (etcd !== undefined && t === 'tcp') await measure(atDepth('read tcp', depth), 'etcd', etcd, etcdReads, {}, depth);
    await measure(atDepth(`write ${t}`, depth), 'nxenstored', s, writes, auth(s), depth);
    if (floor !== undefined && t === 'tcp') await measure(atDepth('write tcp', depth), FLOOR, floor, writes, auth(s), depth);
    if (etcd !== undefined && t === 'tcp') await measure(atDepth('write tcp', depth), 'etcd', etcd, etcdWrites, {}, depth);
  }
  if (t === 'tcp') {
    // A guarded read-modify-write: the guard holds (the read keys are never changed), so
    // every batch commits; the transaction runs all four ops on one version.
    await measure(
      'batch tcp (expect+2 writes+read)',
      'nxenstored',
      s,
      keyed('POST', (i) => ({
        path: '/v1/transaction',
        body: JSON.stringify({
          ops: [
            { op: 'expect', path: `/bench/r/k${i}`, value: `value-${i}` },
            { op: 'write', path: `/bench/b/k${i}/a`, value: `a-${i}` },
            { op: 'write', path: `/bench/b/k${i}/b`, value: `b-${i}` },
            { op: 'read', path: `/bench/b/k${i}/a` },
          ],
        }),
      })),
      auth(s),
    );
  }
}

async function main(): Promise<void> {
  const ctx = runContext();
  process.stderr.write(
    `gateway HTTP load: -c ${CONNECTIONS}, ${DURATION} s per row (+${WARMUP} s warm-up), ${KEYS} keys, pipelining ${DEPTHS.join(',')} (TCP reads/writes)\n`,
  );
  let etcd: Server | undefined;
  if (ETCD_ON) {
    etcd = await startEtcd();
    for (let i = 0; i < KEYS; i++) {
      const r = await fetch(`${etcd.url}/v3/kv/put`, {
        method: 'POST',
        body: JSON.stringify({ key: b64(`bench/r/k${i}`), value: b64(`value-${i}`) }),
      });
      if (!r.ok) throw new Error(`etcd put: ${r.status} ${await r.text()}`);
    }
  }
  const floor = FLOOR_ON ? await startNullGateway() : undefined;
  try {
    await ours('tcp', { etcd, floor });
  } finally {
    await etcd?.stop();
    await floor?.stop();
  }
  await ours('unix', { etcd: undefined, floor: undefined });

  // One line per (load, server): medians over the rounds.
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const k = `${r.name}\0${r.target}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const summary = [...groups.values()].map((g) => ({
    name: g[0]!.name,
    target: g[0]!.target,
    rps: median(g.map((r) => r.rps)),
    p50: median(g.map((r) => r.p50)),
    p99: median(g.map((r) => r.p99)),
    perCpu: median(g.map((r) => r.perCpu)),
    serverUs: median(g.map((r) => r.serverUs)),
    clientUs: median(g.map((r) => r.clientUs)),
    spread: g.length > 1 ? `${fmt(Math.min(...g.map((r) => r.rps)))}–${fmt(Math.max(...g.map((r) => r.rps)))}` : '',
    requests: g.reduce((a, r) => a + r.requests, 0),
    bad: g.reduce((a, r) => a + r.bad + r.errors, 0),
  }));
  const table = markdownTable(
    ['load', 'server', 'req/s (median)', 'req/s range', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'load gen. CPU µs/req', 'requests', 'failed'],
    summary.map((r) => [
      r.name,
      r.target,
      fmt(r.rps),
      r.spread,
      String(r.p50),
      String(r.p99),
      r.serverUs.toFixed(1),
      r.clientUs.toFixed(1),
      String(r.requests),
      String(r.bad),
    ]),
  );
  /** The per-round ratios `server` / etcd (ours unless said) of `of(row)` for one load. */
  const ratios = (name: string, of: (r: Row) => number, server = 'nxenstored') => {
    const out: number[] = [];
    for (let k = 1; k <= ROUNDS; k++) {
      const a = rows.find((r) => r.name === name && r.target === server && r.round === k);
      const b = rows.find((r) => r.name === name && r.target === 'etcd' && r.round === k);
      if (a && b) out.push(of(a) / of(b));
    }
    return out;
  };
  const lines = [
    '',
    `${ctx.date}  node ${ctx.node}  ${ctx.cpu} x${ctx.cores}  -c ${CONNECTIONS}  ${DURATION} s per row  ${ROUNDS} round(s)`,
    '',
    table,
    '',
  ];
  const targets: [string, number | undefined][] = [
    ['read tcp', 5],
    ['write tcp', 3],
  ];
  for (const d of DEPTHS.filter((n) => n > 1)) targets.push([atDepth('read tcp', d), undefined], [atDepth('write tcp', d), undefined]);
  for (const [name, target] of targets) {
    const xs = ratios(name, (r) => r.rps);
    const ys = ratios(name, (r) => r.perCpu);
    if (xs.length > 0) {
      const x = median(xs);
      lines.push(
        `${name}: nxenstored / etcd = ${x.toFixed(2)}x in req/s, median of rounds ${xs.map((v) => v.toFixed(2)).join(', ')} ` +
          `(${target === undefined ? 'no target: pipelined' : `target >= ${target}x: ${x >= target ? 'met' : 'MISSED'}`}); ` +
          `${median(ys).toFixed(2)}x in requests per server CPU-second`,
      );
    }
    const fs = ratios(name, (r) => r.rps, FLOOR);
    if (fs.length > 0) {
      lines.push(`${name}: ${FLOOR} / etcd = ${median(fs).toFixed(2)}x in req/s, median of rounds ${fs.map((v) => v.toFixed(2)).join(', ')} (not a peer: the framework with no store)`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  const json = rows.map((r) =>
    JSON.stringify({ bench: 'gateway-http', ...r, connections: CONNECTIONS, duration: DURATION, date: ctx.date, node: ctx.node, cpu: ctx.cpu }),
  );
  process.stdout.write(`${json.join('\n')}\n`);
  if (JSON_FILE !== '') {
    mkdirSync(dirname(JSON_FILE), { recursive: true });
    writeFileSync(JSON_FILE, `${json.join('\n')}\n`);
  }
  const broken = rows.filter((r) => r.bad + r.errors > 0);
  if (broken.length > 0) {
    process.stderr.write(`rows with failed requests (their figures do not count): ${broken.map((r) => `${r.name}/${r.target}`).join(', ')}\n`);
    process.exitCode = 1;
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`http-load: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
