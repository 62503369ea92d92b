#!/usr/bin/env node
/**
 * `npm run bench:peers`: nxenstored against Xen's cxenstored and oxenstored, on the same machine,
 * in the same run, through the same load generator (bench/loadgen, its own process per run).
 *
 * 1. Starts cxenstored, oxenstored (access log on, as shipped), oxenstored without access log
 *    (`XS_ACCESS_LOG=0`) from ../shared/refd, and nxenstored as built, default options.
 * 2. For each round, for each load, runs the load against every daemon, rotating the order each
 *    round, so machine noise (the machine is shared) hits every daemon alike. The figure is the
 *    median round; the ratio is ours / the faster peer.
 * 3. Store-size series: two fresh nxenstored and two fresh oxenstored (no access log), one of each
 *    filled to 10^3 keys and one to 10^6 (fan-out 100, same path depth); random reads and writes
 *    over all keys, interleaved; heap and RSS per node.
 *
 * 4. With `--floor`, also `bench/null-xenstored.ts` (the wire protocol on Node with no store): a
 *    reference row, never a peer, that shows what any Node daemon pays per request.
 *
 *     node dist/bench/peers.js [--rounds 3] [--duration 3] [--warmup 1] [--loads read,write,...]
 *                              [--big 1000000] [--no-scale] [--floor] [--json FILE]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { XsClient } from '../clients/index.js';
import type { LoadResult } from './loadgen/result.js';
import { fmt, markdownTable, median, runContext } from './metric.js';
import { rssOf, startDaemon, type DaemonKind, type RunningDaemon } from './peers/daemons.js';
import { runLoadgen } from './peers/runner.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    loads: { type: 'string', default: 'read,write,mixed,tx,vm,vm-dir,watch' },
    big: { type: 'string', default: '1000000' },
    'no-scale': { type: 'boolean', default: false },
    floor: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const LOADS = values.loads!.split(',').filter((l) => l !== '');
const BIG = Number(values.big);
const SMALL = 1000;
const timing = ['--duration', values.duration!, '--warmup', values.warmup!];

const OURS = 'nxenstored';
/** The reference row of `--floor`: not a peer, not in any ratio. */
const FLOOR = 'Node floor (no store)';
/** Loads the floor can answer (it sends no watch events). */
const FLOOR_LOADS = new Set(['read', 'write', 'mixed', 'tx', 'vm', 'vm-dir']);
const PEERS: readonly [DaemonKind, string][] = [
  ['cxenstored', 'cxenstored'],
  ['oxenstored', 'oxenstored'],
  ['oxenstored-nolog', 'oxenstored (no access log)'],
  [OURS, OURS],
  ...(values.floor ? [['node-floor', FLOOR] as [DaemonKind, string]] : []),
];

const LOAD_TITLES: Record<string, string> = {
  read: 'read (8 conns × 16 in flight, 1,000 keys)',
  write: 'write (16-byte values)',
  mixed: '70/20/10 read/write/directory',
  tx: 'transactions, 2 reads + 2 writes, own subtree (16 clients)',
  vm: 'VM start transactions (16 clients)',
  'vm-dir': 'VM start + DIRECTORY of dom0 backends',
  watch: 'watch fan-out, 1,000 watchers (events/s)',
};

type Row = (LoadResult & { cpuUsPerOp?: number }) | { load: string; label: string; failed: string };
const ok = (r: Row): r is LoadResult & { cpuUsPerOp?: number } => !('failed' in r);

const base = mkdtempSync(join(tmpdir(), 'nxs-peers-'));
const running: RunningDaemon[] = [];
const results: Row[] = [];
const log = (s: string) => process.stderr.write(`${s}\n`);

async function stopAll(): Promise<void> {
  await Promise.all(running.splice(0).map((d) => d.stop()));
}
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));

async function main(): Promise<void> {
  const ctx = runContext();
  log(`bench:peers in ${base}; ${ROUNDS} rounds × ${LOADS.length} loads × ${PEERS.length} daemons`);
  const daemons: RunningDaemon[] = [];
  for (const [kind, name] of PEERS) {
    const d = await startDaemon(kind, join(base, kind), name);
    running.push(d);
    daemons.push(d);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const load of LOADS) {
      for (let k = 0; k < daemons.length; k++) {
        const d = daemons[(k + round) % daemons.length]!;
        if (d.name === FLOOR && !FLOOR_LOADS.has(load)) continue;
        const r = await runLoadgen(d.socket, load, d.name, [...timing, '--seed', String(round + 1)], d.pid);
        results.push(r);
        log(`round ${round + 1} ${load} ${d.name}: ${ok(r) ? `${fmt(r.opsPerSec)}/s p99 ${r.p99Us}µs` : `FAILED ${r.failed}`}`);
      }
    }
  }
  await stopAll();
  const scale = values['no-scale'] ? undefined : await storeSize();
  await stopAll();

  const out: string[] = [];
  out.push(`# nxenstored vs Xen's daemons, ${ctx.date}`);
  out.push('');
  out.push(`${ctx.cpu}, ${ctx.cores} cores, ${ctx.memoryGiB} GiB, ${ctx.platform}, Node ${ctx.node}; ${ctx.command}`);
  out.push(`${ROUNDS} rounds, ${values.duration} s measured after ${values.warmup} s warm-up per run; median round.`);
  out.push('');
  out.push(throughputTable());
  out.push('');
  out.push(transactionTable());
  out.push('');
  out.push(cpuTable());
  if (scale !== undefined) {
    out.push('');
    out.push(scale);
  }
  process.stdout.write(`${out.join('\n')}\n`);
  if (values.json !== undefined) {
    writeFileSync(values.json, results.map((r) => JSON.stringify({ ...r, date: ctx.date, cpu: ctx.cpu })).join('\n') + '\n');
  }
}

function cell(daemon: string, load: string, pick: (r: LoadResult) => number): number | undefined {
  const xs = results.filter((r): r is LoadResult => ok(r) && r.label === daemon && r.load === load).map(pick);
  return xs.length === 0 ? undefined : median(xs);
}

function throughputTable(): string {
  const names = PEERS.map(([, n]) => n);
  const peers = names.filter((n) => n !== OURS && n !== FLOOR);
  const rows = LOADS.map((load) => {
    const rate = (n: string) => cell(n, load, (r) => r.opsPerSec);
    const p99 = (n: string) => cell(n, load, (r) => r.p99Us);
    const best = peers.reduce<string | undefined>((b, n) => ((rate(n) ?? 0) > (b === undefined ? -1 : rate(b) ?? 0) ? n : b), undefined);
    const bestP99 = Math.min(...peers.map((n) => p99(n) ?? Infinity));
    const ours = rate(OURS);
    const ratio = ours !== undefined && best !== undefined && rate(best) ? ours / rate(best)! : NaN;
    return [
      LOAD_TITLES[load] ?? load,
      ...names.map((n) => (rate(n) !== undefined ? fmt(rate(n)!) : n === FLOOR && !FLOOR_LOADS.has(load) ? '–' : 'failed')),
      `**${fmt(ratio)}×** (vs ${best === undefined ? '?' : best.replace(' (no access log)', ' no-log')})`,
      `${fmt(p99(OURS) ?? NaN)} / ${fmt(bestP99)}`,
    ];
  });
  return [
    '### Throughput (ops/s; transactions: commits/s; watch: events/s) and p99 latency (µs)',
    '',
    markdownTable(['load', ...names, 'ours / faster peer', 'p99 ours / best peer'], rows),
  ].join('\n');
}

function cpuTable(): string {
  const names = PEERS.map(([, n]) => n);
  const rows = LOADS.map((load) => [
    LOAD_TITLES[load] ?? load,
    ...names.map((n) => {
      const c = cell(n, load, (r) => (r as { cpuUsPerOp?: number }).cpuUsPerOp ?? NaN);
      return c === undefined || Number.isNaN(c) ? '-' : fmt(c);
    }),
  ]);
  return [
    '### Daemon CPU per operation (µs of user + system time per op/commit/event, median round; lower is better)',
    '',
    markdownTable(['load', ...names], rows),
  ].join('\n');
}

function transactionTable(): string {
  const names = PEERS.map(([, n]) => n);
  const txLoads = LOADS.filter((l) => l === 'tx' || l.startsWith('vm'));
  if (txLoads.length === 0) return '';
  const rows = txLoads.map((load) => [
    LOAD_TITLES[load] ?? load,
    ...names.map((n) => {
      const rate = cell(n, load, (r) => r.eagainRate);
      const worst = results
        .filter((r): r is LoadResult => ok(r) && r.label === n && r.load === load)
        .reduce((m, r) => Math.max(m, r.worstRetries), 0);
      return rate === undefined ? 'failed' : `${(rate * 100).toFixed(1)}% / ${worst}`;
    }),
  ]);
  return [
    '### Transactions: EAGAIN rate (EAGAIN / (commits + EAGAIN), median round) / worst retries of one transaction (all rounds)',
    '',
    markdownTable(['load', ...names], rows),
  ].join('\n');
}

/** The store-size series and memory per node (see the header comment). */
async function storeSize(): Promise<string> {
  const kinds: [DaemonKind, string, number][] = [
    ['nxenstored', 'nxenstored 10^3', SMALL],
    ['nxenstored', `nxenstored 10^${Math.round(Math.log10(BIG))}`, BIG],
    ['oxenstored-nolog', 'oxenstored 10^3', SMALL],
    ['oxenstored-nolog', `oxenstored 10^${Math.round(Math.log10(BIG))}`, BIG],
  ];
  const ds: { d: RunningDaemon; nodes: number; rssBefore: number }[] = [];
  for (const [i, [kind, name, nodes]] of kinds.entries()) {
    const d = await startDaemon(kind, join(base, `scale-${i}`), name, kind === 'nxenstored');
    running.push(d);
    ds.push({ d, nodes, rssBefore: rssOf(d.pid) });
  }
  const fills: string[] = [];
  for (const { d, nodes } of ds) {
    const r = await runLoadgen(d.socket, 'fill', d.name, ['--nodes', String(nodes)]);
    results.push(r);
    fills.push(`${d.name}: ${ok(r) ? `${fmt(r.opsPerSec)} writes/s, ${r.errors} errors` : r.failed}`);
    log(`fill ${fills.at(-1)}`);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const load of ['scale-read', 'scale-write']) {
      for (let k = 0; k < ds.length; k++) {
        const { d, nodes } = ds[(k + round) % ds.length]!;
        const r = await runLoadgen(d.socket, load, d.name, [...timing, '--nodes', String(nodes), '--seed', String(round + 1)]);
        results.push(r);
        log(`round ${round + 1} ${load} ${d.name}: ${ok(r) ? `${fmt(r.opsPerSec)}/s` : `FAILED ${r.failed}`}`);
      }
    }
  }
  const rows: string[][] = [];
  for (const daemon of ['nxenstored', 'oxenstored']) {
    const [small, big] = ds.filter((x) => x.d.name.startsWith(daemon));
    for (const load of ['scale-read', 'scale-write']) {
      const a = cell(small!.d.name, load, (r) => r.opsPerSec);
      const b = cell(big!.d.name, load, (r) => r.opsPerSec);
      rows.push([`${daemon} ${load.slice(6)}`, fmt(a ?? NaN), fmt(b ?? NaN), fmt((b ?? NaN) / (a ?? NaN))]);
    }
  }
  // Memory: RSS growth per node for both; our live heap per node after a full GC (memreport).
  const mem: string[] = [];
  for (const daemon of ['nxenstored', 'oxenstored']) {
    const [small, big] = ds.filter((x) => x.d.name.startsWith(daemon));
    const perNode = (rssOf(big!.d.pid) - rssOf(small!.d.pid)) / (big!.nodes - small!.nodes);
    mem.push(`${daemon}: RSS ${fmt(rssOf(big!.d.pid) / 2 ** 20)} MiB at ${fmt(big!.nodes)} keys, ${fmt(perNode)} B of RSS per added node`);
  }
  const [ourSmall, ourBig] = ds;
  const heap = async (d: RunningDaemon) => {
    const c = await XsClient.connect(d.socket);
    try {
      const text = await c.control('memreport');
      const get = (k: string) => Number(new RegExp(`^${k} (\\d+)`, 'm').exec(text)?.[1]);
      return { nodes: get('nodes'), heap: get('heapUsed') };
    } finally {
      c.close();
    }
  };
  const hs = await heap(ourSmall!.d);
  const hb = await heap(ourBig!.d);
  mem.push(
    `nxenstored: live heap ${fmt(hb.heap / 2 ** 20)} MiB for ${fmt(hb.nodes)} nodes; ${fmt((hb.heap - hs.heap) / (hb.nodes - hs.nodes))} B of heap per added node`,
  );
  return [
    `### Store size: random reads and writes over all keys, 10^3 vs ${fmt(BIG)} keys (ops/s, median round)`,
    '',
    markdownTable(['daemon, load', '10^3 keys', `${fmt(BIG)} keys`, 'big / small'], rows),
    '',
    ...fills.map((f) => `- fill ${f}`),
    ...mem.map((m) => `- ${m}`),
  ].join('\n');
}

try {
  await main();
} catch (e) {
  log(`bench:peers: ${e instanceof Error ? e.stack : String(e)}`);
  process.exitCode = 1;
} finally {
  await stopAll();
  rmSync(base, { recursive: true, force: true });
}
