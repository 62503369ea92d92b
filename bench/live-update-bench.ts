/**
 * Live update benchmark (issue 6): how long clients wait while the daemon changes process.
 *
 *   npm run bench:live-update      (= tsc, then node dist/bench/live-update-bench.js)
 *
 * For stores of 10³, 10⁵ and 10⁶ nodes (loaded from a snapshot with `--data-dir --sync none`):
 * - handover: CONTROL `live-update -s` round trip (quiesce, state file, spawn, the new process
 *   loads the state and the store, "go", OK); the time no request is answered is about this;
 * - longest READ: a client reading in a loop on its own connection the whole time; its slowest
 *   reply is what a client sees of the update;
 * - state file size (the store in the snapshot codec plus the JSON part).
 * Each figure is the median of 3 updates on the same daemon.
 *
 * Options (for before/after runs): `--sizes 1000,100000` (default 10³, 10⁵, 10⁶), `--daemon <path
 * to nxenstored.js>` (another build, e.g. the one before a change), `--history N` (N rewrites of
 * 1,000 keys before the first update, default 0: the history on disk the new process reads back
 * in the pause; 200000 fills the default window).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { XsClient } from '../clients/index.js';
import { answers } from '../server/index.js';
import { writeSnapshotFileSync } from '../server/persistence/index.js';
import { encodeSnapshot } from '../store/index.js';
import { domainTree } from './domain-tree.js';
import { fmt, markdownTable, median, runContext } from './metric.js';

const { values: argv } = parseArgs({ options: { sizes: { type: 'string' }, daemon: { type: 'string' }, history: { type: 'string' } } });
const DAEMON = argv.daemon ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'nxenstored.js');
const SIZES = (argv.sizes ?? '1000,100000,1000000').split(',').map(Number);
const ROUNDS = 3;
const HISTORY = Number(argv.history ?? 0);
const scratch = mkdtempSync(join(tmpdir(), 'nxs-lu-bench-'));
const children: ChildProcess[] = [];
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));

async function waitForSocket(path: string): Promise<void> {
  while (!(await answers(path))) await new Promise((r) => setTimeout(r, 20));
}

async function measure(n: number): Promise<string[]> {
  const store = domainTree(n);
  const data = mkdtempSync(join(scratch, 'data-'));
  writeSnapshotFileSync(data, encodeSnapshot(store));
  const rundir = mkdtempSync(join(scratch, 'run-'));
  const child = spawn(process.execPath, [DAEMON, '--rundir', rundir, '--data-dir', data, '--sync', 'none', '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  const socket = join(rundir, 'socket');
  await waitForSocket(socket);
  const control = await XsClient.connect(socket);
  const reader = await XsClient.connect(socket);
  for (let i = 0; i < HISTORY; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, HISTORY - i) }, (_, j) => control.write(`/local/domain/1/history/k${(i + j) % 1000}`, `v${i + j}`)));
  }
  // The state file exists only during the handover: catch its size as it is written.
  let stateBytes = 0;
  const watcher = watch(rundir, (_e, name) => {
    if (name !== 'live-update.state') return;
    try {
      stateBytes = Math.max(stateBytes, statSync(join(rundir, name)).size);
    } catch {
      /* already read and removed by the new process */
    }
  });
  const handovers: number[] = [];
  const longest: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let stop = false;
    let worst = 0;
    const loop = (async () => {
      while (!stop) {
        const t0 = performance.now();
        await reader.read('/local/domain/1/data/k1');
        worst = Math.max(worst, performance.now() - t0);
      }
    })();
    await new Promise((res) => setTimeout(res, 100));
    const t0 = performance.now();
    const reply = await control.control('live-update', '-s');
    handovers.push(performance.now() - t0);
    if (reply !== 'OK') throw new Error(`live-update answered ${reply}`);
    await new Promise((res) => setTimeout(res, 100));
    stop = true;
    await loop;
    longest.push(worst);
  }
  watcher.close();
  control.close();
  reader.close();
  return [String(n), fmt(median(handovers)), fmt(median(longest)), stateBytes > 0 ? `${Math.round(stateBytes / 1024)} KiB` : 'n/a'];
}

async function main(): Promise<void> {
  const rows: string[][] = [];
  try {
    for (const n of SIZES) rows.push(await measure(n));
  } finally {
    // The daemon serving now is not our child any more: its pid is in the run directory.
    for (const c of children) c.kill('SIGKILL');
    spawn('sh', ['-c', `for f in ${scratch}/run-*/nxenstored.pid; do [ -f "$f" ] && kill -9 $(cat "$f"); done`], { stdio: 'ignore' });
  }
  console.log(JSON.stringify(runContext()));
  console.log(`Daemon: ${DAEMON}.${HISTORY > 0 ? ` ${HISTORY} commits of history first.` : ''}`);
  console.log(markdownTable(['nodes', 'handover (ms)', 'longest READ (ms)', 'state file'], rows));
}

void main();
