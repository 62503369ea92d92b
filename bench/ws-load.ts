/**
 * Gateway WebSocket load test (`npm run bench:gateway`, with http-load.ts): request/response load
 * on `/v1/ws` (JSON frames), which autocannon cannot drive, so this is a small pipelined driver:
 * --connections sockets, each keeping `depth` requests in flight (a new one leaves as each reply
 * arrives), over --keys keys, for --duration seconds. Latency is from send to the reply with the
 * same id. Rows: reads and writes at depth 1 (like autocannon -c N) and at depth 16 (pipelined).
 *
 * Options: --duration=10  --warmup=2  --connections=32  --depths=1,16  --keys=1000
 * --only=REGEX  --json=FILE
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { cpuSeconds, startNxenstored, type Server } from './http-servers.js';
import { option } from './cli-option.js';
import { fmt, markdownTable, runContext } from './metric.js';

const DURATION = Number(option('duration', '10'));
const WARMUP = Number(option('warmup', '2'));
const CONNECTIONS = Number(option('connections', '32'));
const DEPTHS = option('depths', '1,16').split(',').map(Number);
const KEYS = Number(option('keys', '1000'));
const ONLY = new RegExp(option('only', '.'));
const JSON_FILE = option('json', '');

type Make = (id: number, key: number) => string;

interface Outcome {
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  /** Every reply's latency in ms, unsorted. */
  readonly latencies: Float64Array;
}

function wsUrl(s: Server): string {
  return `${s.url.replace(/^http/, 'ws')}/v1/ws?token=${encodeURIComponent(s.token ?? '')}`;
}

/** One connection: keeps `depth` requests in flight until `until`, then drains and closes. */
function drive(
  url: string,
  depth: number,
  make: Make,
  until: () => boolean,
  record: (ms: number, ok: boolean) => void,
  firstKey: number,
): Promise<void> {
  return new Promise((res, rej) => {
    const ws = new WebSocket(url);
    const sent = new Map<number, number>();
    let nextId = 1;
    let key = firstKey;
    const send = () => {
      const id = nextId++;
      sent.set(id, performance.now());
      ws.send(make(id, key));
      key = (key + 1) % KEYS;
    };
    ws.on('error', rej);
    ws.on('open', () => {
      for (let i = 0; i < depth; i++) send();
    });
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString('utf8')) as { id?: number; ok?: boolean; event?: string };
      if (msg.event !== undefined || msg.id === undefined) return;
      const t0 = sent.get(msg.id);
      if (t0 === undefined) return;
      sent.delete(msg.id);
      record(performance.now() - t0, msg.ok === true);
      if (!until()) send();
      else if (sent.size === 0) ws.close();
    });
    ws.on('close', (code) => (sent.size === 0 ? res() : rej(new Error(`closed with ${sent.size} requests unanswered (code ${code})`))));
  });
}

async function run(s: Server, depth: number, make: Make, seconds: number): Promise<Outcome> {
  let lat = new Float64Array(1 << 20);
  let n = 0;
  let errors = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  let stopped = false;
  const until = () => stopped || (stopped = performance.now() >= end);
  const record = (ms: number, ok: boolean) => {
    if (n === lat.length) {
      const bigger = new Float64Array(lat.length * 2);
      bigger.set(lat);
      lat = bigger;
    }
    lat[n++] = ms;
    if (!ok) errors++;
  };
  const url = wsUrl(s);
  await Promise.all(
    Array.from({ length: CONNECTIONS }, (_, c) => drive(url, depth, make, until, record, (c * Math.ceil(KEYS / CONNECTIONS)) % KEYS)),
  );
  return { requests: n, errors, seconds: (performance.now() - start) / 1000, latencies: lat.subarray(0, n) };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function populate(s: Server): Promise<void> {
  const ops = Array.from({ length: KEYS }, (_, i) => ({ op: 'write', path: `/bench/r/k${i}`, value: `value-${i}` }));
  const body = JSON.stringify({ ops: ops.slice(0, 1024) });
  return new Promise((res, rej) => {
    const u = new URL(s.url);
    const req = httpRequest(
      {
        method: 'POST',
        host: u.hostname,
        port: u.port,
        path: '/v1/transaction',
        headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (r) => {
        r.resume();
        r.on('end', () => (r.statusCode! < 300 ? res() : rej(new Error(`populate: HTTP ${r.statusCode}`))));
      },
    );
    req.on('error', rej);
    req.end(body);
  });
}

async function main(): Promise<void> {
  if (KEYS > 1024) throw new Error('--keys at most 1024 (one batch populates them)');
  const ctx = runContext();
  process.stderr.write(`gateway WebSocket load: ${CONNECTIONS} connections, depths ${DEPTHS.join(',')}, ${DURATION} s per row\n`);
  const s = await startNxenstored('tcp');
  const rows: { name: string; depth: number; rps: number; p50: number; p99: number; perCpu: number; requests: number; errors: number }[] = [];
  try {
    await populate(s);
    const loads: [string, Make][] = [
      ['ws read', (id, k) => `{"id":${id},"op":"read","path":"/bench/r/k${k}"}`],
      ['ws write', (id, k) => `{"id":${id},"op":"write","path":"/bench/w/k${k}","value":"written-${k}"}`],
    ];
    for (const depth of DEPTHS) {
      for (const [name, make] of loads) {
        const label = `${name} depth ${depth}`;
        if (!ONLY.test(label)) continue;
        process.stderr.write(`  ${label} ...`);
        if (WARMUP > 0) await run(s, depth, make, WARMUP);
        const cpu0 = cpuSeconds(s.pid);
        const o = await run(s, depth, make, DURATION);
        const cpu = cpuSeconds(s.pid) - cpu0;
        const sorted = o.latencies.slice().sort();
        const row = {
          name,
          depth,
          rps: o.requests / o.seconds,
          p50: percentile(sorted, 50),
          p99: percentile(sorted, 99),
          perCpu: o.requests / cpu,
          requests: o.requests,
          errors: o.errors,
        };
        rows.push(row);
        process.stderr.write(` ${fmt(row.rps)} req/s, p50 ${fmt(row.p50)} ms, p99 ${fmt(row.p99)} ms, ${fmt(row.perCpu)} per server CPU-s${row.errors ? `, ${row.errors} errors` : ''}\n`);
      }
    }
  } finally {
    await s.stop();
  }
  const table = markdownTable(
    ['load', 'in flight / conn', 'req/s', 'p50 ms', 'p99 ms', 'req per server CPU-s', 'requests', 'errors'],
    rows.map((r) => [r.name, String(r.depth), fmt(r.rps), fmt(r.p50), fmt(r.p99), fmt(r.perCpu), String(r.requests), String(r.errors)]),
  );
  process.stdout.write(`\n${ctx.date}  node ${ctx.node}  ${ctx.cpu} x${ctx.cores}  ${CONNECTIONS} connections  ${DURATION} s per row\n\n${table}\n\n`);
  const json = rows.map((r) => JSON.stringify({ bench: 'gateway-ws', ...r, connections: CONNECTIONS, duration: DURATION, date: ctx.date, node: ctx.node, cpu: ctx.cpu }));
  process.stdout.write(`${json.join('\n')}\n`);
  if (JSON_FILE !== '') {
    mkdirSync(dirname(JSON_FILE), { recursive: true });
    writeFileSync(JSON_FILE, `${json.join('\n')}\n`);
  }
  if (rows.some((r) => r.errors > 0)) process.exitCode = 1;
}

main().catch((e: unknown) => {
  process.stderr.write(`ws-load: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
