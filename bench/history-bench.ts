/**
 * History benchmark (`npm run bench:history`, issue 14): what recording history costs a commit,
 * and what its queries cost, on a store of 10^5 nodes with 10^5 commits of history.
 *
 * - Writes with history off (execute + advance: the commit the daemon makes) against the same
 *   writes with history on (+ History.record, what Daemon.install adds), alternated round by round
 *   in this one process, so the ratio is of the same machine at the same moment. Rates and p99
 *   per-write latency for each, and the ratio on/off.
 * - Bytes of history per commit: the bytes a record takes in memory (what the --history-bytes
 *   bound counts, store/history-codec.ts), the memory behind them (chunks and index), and on
 *   disk (the same bytes + 8 bytes of framing).
 * - Query times (median of several runs) for at (near the live version, and the oldest
 *   generation: the records since undone from the live version, or from the nearest checkpoint
 *   when history keeps some; and from a moment an earlier query kept: the same one again, and
 *   100 commits after and before it), diff, log and blame, each also given as a multiple of one
 *   write with history on (the baseline measured in the same run).
 *
 * Options: --nodes=100000 --commits=100000 --rounds=5 --writes=20000 --json=FILE
 */
import { writeFileSync } from 'node:fs';
import { Map as ImmMap } from 'immutable';
import {
  DEFAULT_LIMITS,
  DOM0,
  DOM0_ONLY,
  History,
  XsNode,
  advance,
  blameOf,
  diffOf,
  encodeRecord,
  execute,
  fromRoot,
  logOf,
  type Store,
  type Who,
} from '../store/index.js';
import { markdownTable, runContext } from './metric.js';

function option(name: string, fallback: string): string {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? fallback : a.slice(a.indexOf('=') + 1);
}

const NODES = Number(option('nodes', '100000'));
const COMMITS = Number(option('commits', '100000'));
const ROUNDS = Number(option('rounds', '5'));
const WRITES = Number(option('writes', '20000'));
const JSON_FILE = option('json', '');

/** A tree like a busy host's: /local/domain/<d>/{device/vif/0/{state,mac,...},data/k<i>}. */
function buildStore(nodes: number): { store: Store; paths: string[] } {
  const perDomain = 100;
  const domains = Math.max(1, Math.floor(nodes / perDomain));
  const leaf = (v: string) => XsNode.leaf(v, DOM0_ONLY);
  const paths: string[] = [];
  const doms: [string, XsNode][] = [];
  for (let d = 1; d <= domains; d++) {
    const data: [string, XsNode][] = [];
    for (let i = 0; i < perDomain - 4; i++) {
      data.push([`k${i}`, leaf(`v${i}`)]);
      paths.push(`/local/domain/${d}/data/k${i}`);
    }
    doms.push([String(d), new XsNode('', DOM0_ONLY, ImmMap([['data', new XsNode('', DOM0_ONLY, ImmMap(data))], ['name', leaf(`vm${d}`)]]))]);
  }
  const domain = new XsNode('', DOM0_ONLY, ImmMap(doms));
  const local = new XsNode('', DOM0_ONLY, ImmMap([['domain', domain]]));
  return { store: fromRoot(new XsNode('', DOM0_ONLY, ImmMap([['local', local], ['tool', leaf('')]]))), paths };
}

const WHO: Who = { domid: 0, connection: 'socket', id: 3 };

function quantile(xs: number[], q: number): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

function median(xs: number[]): number {
  return quantile(xs, 0.5);
}

/** `writes(live, n, history)`: n writes of random keys; per-write times (ns) and the last version. */
function writes(live: Store, paths: string[], n: number, history: History | undefined, seed: number): { store: Store; ns: number[] } {
  const ns: number[] = new Array<number>(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const path = paths[x % paths.length]!;
    const t0 = process.hrtime.bigint();
    const out = execute(live, DOM0, DEFAULT_LIMITS, { op: 'write', path, value: `w${i}-${seed}` });
    const next = advance(out.store, live);
    // As Daemon.install does: what the request touched, so the record needs no walk.
    if (history !== undefined) history.record(live, next, { time: Date.now(), who: WHO, requests: [{ op: 'write', path }] }, undefined, out.touched);
    live = next;
    ns[i] = Number(process.hrtime.bigint() - t0);
  }
  return { store: live, ns };
}

function time(fn: () => unknown, runs = 5, setup?: () => void): number {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    setup?.();
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

function main(): void {
  const ctx = runContext();
  process.stderr.write(`building a store of ${NODES} nodes\n`);
  const { store: base, paths } = buildStore(NODES);

  // 1. Writes, history off vs on, alternated.
  const off: { rate: number; p99: number }[] = [];
  const on: { rate: number; p99: number }[] = [];
  let live = base;
  let h = new History(live, { records: COMMITS });
  for (let r = 0; r < ROUNDS + 1; r++) {
    for (const mode of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      if (mode === 'on' && h.latest() !== live) h = new History(live, { records: COMMITS });
      const t0 = performance.now();
      const res = writes(live, paths, WRITES, mode === 'on' ? h : undefined, r * 7 + (mode === 'on' ? 1 : 2));
      const ms = performance.now() - t0;
      live = res.store;
      if (r === 0) continue; // warm-up round
      (mode === 'on' ? on : off).push({ rate: (WRITES / ms) * 1000, p99: quantile(res.ns, 0.99) / 1000 });
      process.stderr.write(`round ${r} ${mode}: ${Math.round((WRITES / ms) * 1000)} writes/s\n`);
    }
  }
  const rateOff = median(off.map((x) => x.rate));
  const rateOn = median(on.map((x) => x.rate));
  const p99Off = median(off.map((x) => x.p99));
  const p99On = median(on.map((x) => x.p99));

  // 2. A history of COMMITS commits on the NODES-node store.
  process.stderr.write(`recording ${COMMITS} commits\n`);
  h = new History(live, { records: COMMITS, bytes: 2 ** 40 });
  const first = live.generation;
  const t0 = performance.now();
  live = writes(live, paths, COMMITS, h, 99).store;
  const writeOnUs = ((performance.now() - t0) / COMMITS) * 1000;
  const memPerCommit = h.bytes / h.size;
  const allocatedPerCommit = h.allocated / h.size;
  let disk = 0;
  for (let i = 0; i < h.size; i += 100) disk += encodeRecord(h.nth(i)).length + 8;
  const diskPerCommit = disk / Math.ceil(h.size / 100);

  const oldest = h.oldest().generation;
  const latest = live.generation;
  // The nearest version kept whole at or after g: the next checkpoint (if history keeps any), or the live one.
  const every = h.options.every;
  const undone = (g: number): number => (Number.isFinite(every) ? Math.min(Math.ceil(g / every) * every, latest) : latest) - g;
  const from = Number.isFinite(every) ? 'from a checkpoint' : 'from the live version';
  // `at` keeps the moments it rebuilt (store/history.ts): each row's runs start with none kept,
  // but for the rows that measure a kept moment's use.
  const cold = (): void => h.forgetMoments();
  const keptAt = (g: number) => (): void => {
    h.forgetMoments();
    h.at(g);
  };
  const queries: [string, number][] = [
    ['at (10 commits back: 10 records undone from the live version)', time(() => h.at(latest - 10), 5, cold)],
    [`at (the oldest: ${undone(oldest)} records undone ${from})`, time(() => h.at(oldest), 3, cold)],
    ['at (the oldest again: kept by the query before)', time(() => h.at(oldest), 5, keptAt(oldest))],
    ['at (100 commits after a kept moment: 100 records redone)', time(() => h.at(oldest + 100), 5, keptAt(oldest))],
    ['at (100 commits before a kept moment: 100 records undone)', time(() => h.at(first + COMMITS / 2 - 100), 5, keptAt(first + COMMITS / 2))],
  ];
  if (Number.isFinite(every)) {
    // A generation just after a checkpoint, in the window: the most undos a query within reach pays.
    const worst = Math.ceil((oldest + 1) / every) * every + 1 <= latest - every ? Math.ceil((oldest + 1) / every) * every + 1 : oldest;
    queries.push([`at (a checkpoint's worst: ${every - 1} records undone)`, time(() => h.at(worst), 3, cold)]);
  }
  queries.push(
    [`at (half way back: ${undone(first + COMMITS / 2)} records undone ${from})`, time(() => h.at(first + COMMITS / 2), 3, cold)],
    ['diff oldest..latest of one domain (100 nodes)', time(() => diffOf(h, { generation: oldest }, { generation: latest }, '/local/domain/7'), 3, cold)],
    ['diff oldest..latest of / (capped at 1000 nodes)', time(() => diffOf(h, { generation: oldest }, { generation: latest }, '/'), 3, cold)],
    ['log of one key (50 entries; scans until found)', time(() => logOf(h, { path: paths[17]!, limit: 50 }))],
    ['log of / (50 entries)', time(() => logOf(h, { limit: 50 }))],
    ['log matching nothing (scan cap: 100 000 records)', time(() => logOf(h, { domid: 4242 }))],
    ['blame of one domain (98 nodes)', time(() => blameOf(h, '/local/domain/7'))],
  );

  const lines = {
    context: ctx,
    nodes: NODES,
    commits: COMMITS,
    writes: { perRound: WRITES, rounds: ROUNDS, offPerSec: Math.round(rateOff), onPerSec: Math.round(rateOn), ratio: rateOn / rateOff, p99OffUs: p99Off, p99OnUs: p99On, p99Ratio: p99On / p99Off },
    bytesPerCommit: { memory: Math.round(memPerCommit), allocated: Math.round(allocatedPerCommit), disk: Math.round(diskPerCommit) },
    queries: Object.fromEntries(queries.map(([k, ms]) => [k, { ms, writes: (ms * 1000) / writeOnUs }])),
  };
  process.stdout.write(`${JSON.stringify(lines)}\n\n`);
  process.stdout.write(`history bench: ${NODES} nodes, ${COMMITS} commits of history; ${ctx.cpu} x${ctx.cores}, node ${ctx.node}\n\n`);
  process.stdout.write(
    markdownTable(
      ['writes (random keys)', 'history off', 'history on', 'on/off'],
      [
        ['writes/s (median of rounds)', String(Math.round(rateOff)), String(Math.round(rateOn)), (rateOn / rateOff).toFixed(3)],
        ['p99 per write (µs)', p99Off.toFixed(1), p99On.toFixed(1), (p99On / p99Off).toFixed(3)],
      ],
    ),
  );
  process.stdout.write(
    `\nbytes of history per commit: ${Math.round(memPerCommit)} in memory (${Math.round(allocatedPerCommit)} with its chunks and index), ${Math.round(diskPerCommit)} on disk\n\n`,
  );
  process.stdout.write(markdownTable(['query', 'ms (median)', 'in writes'], queries.map(([k, ms]) => [k, ms.toFixed(2), ((ms * 1000) / writeOnUs).toFixed(0)])));
  process.stdout.write('\n');
  if (JSON_FILE !== '') writeFileSync(JSON_FILE, `${JSON.stringify(lines)}\n`);
}

main();
