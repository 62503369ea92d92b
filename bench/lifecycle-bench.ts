/**
 * Lifecycle benchmark (issue 6): what persistence and socket activation cost.
 *
 *   npm run bench:lifecycle        (= tsc, then node dist/bench/lifecycle-bench.js)
 *
 * 1. Cold start to first reply, 10³ / 10⁵ / 10⁶ nodes: a data directory holding a snapshot of
 *    that size; `systemd-socket-activate` listens on the sockets; the clock starts when a client
 *    connects and sends a READ (which makes the activator exec the daemon: node start-up, module
 *    loading, snapshot decode, listeners) and stops at the reply. Without the activator (not
 *    installed) the daemon is spawned and polled for its socket instead, and the row says so.
 * 2. Recovery after a crash, 10⁵ / 10⁶ nodes: the same snapshot plus 10 000 log records after it
 *    (writes to existing nodes), as `kill -9` would leave them; the daemon's own "store recovered"
 *    time (read + decode + replay + open the log) and the time to first reply.
 * 3. Write throughput, `--sync always` vs `batch` vs `none` vs no `--data-dir`, same run,
 *    modes interleaved round by round, same 10³-node store: 1 client × 1 outstanding write
 *    (every write pays its own fdatasync under `always`), and 8 clients × 16 pipelined writes
 *    (group commit: one fdatasync covers a batch).
 * Also the snapshot codec alone (encode, decode) per size, in this process.
 * Each figure is the median of 3 rounds (`--rounds`; throughput: 3 s per mode and load).
 * Beside them, the bare runtime: `node -e 0`'s CPU, measured in the same run (issue 16: the cold
 * start is judged as a ratio to it, steadier on a shared machine than any absolute figure), and
 * `node -e 0` started by the activator: the difference is the activator's own CPU, which the
 * daemon's process carries (it is exec'd in place) and which is taken off the daemon's figures.
 *
 * Options (for before/after runs of one part): `--sizes 1000,100000` (default 10³, 10⁵, 10⁶),
 * `--no-throughput`, `--daemon <path to nxenstored.js>` (another build, e.g. the one before a change),
 * `--node <path to a node binary>` (the runtime for the daemons and the `node -e 0` row; default
 * the one running the bench: issue 16's target is per Node line, 20, 22 and 24), `--rounds 3`
 * (starts per row; more for steadier medians on a busy machine).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { XsClient } from '../clients/index.js';
import { frameRecord, segmentName, writeSnapshotFileSync } from '../server/persistence/index.js';
import {
  advance,
  decodeSnapshot,
  DEFAULT_LIMITS,
  deltaOf,
  DOM0,
  encodeDelta,
  encodeSnapshot,
  execute,
  type Store,
} from '../store/index.js';
import { domainTree } from './domain-tree.js';
import { fmt, markdownTable, median, runContext } from './metric.js';

const { values: argv } = parseArgs({
  options: { sizes: { type: 'string' }, 'no-throughput': { type: 'boolean' }, daemon: { type: 'string' }, node: { type: 'string' }, rounds: { type: 'string' } },
});
const DAEMON = argv.daemon ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'nxenstored.js');
const NODE = argv.node ?? process.execPath;
const SIZES = (argv.sizes ?? '1000,100000,1000000').split(',').map(Number);
const ROUNDS = Number(argv.rounds ?? 3);
const LOG_RECORDS = 10_000;
const THROUGHPUT_MS = 3000;
const TICKS = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;
const hasActivator = spawnSync('systemd-socket-activate', ['--version']).status === 0;
const scratch = mkdtempSync(join(tmpdir(), 'nxs-lifecycle-bench-'));
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});
// Interrupted: take the daemons along (the 'exit' handler runs on process.exit).
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

function nodes(s: Store): number {
  let total = 0;
  for (const c of s.quota.values()) total += c;
  return total;
}

/** A data directory: the snapshot, plus `records` log records of writes after it. */
function dataDir(s: Store, records: number): string {
  const dir = mkdtempSync(join(scratch, 'data-'));
  writeSnapshotFileSync(dir, encodeSnapshot(s));
  if (records > 0) {
    const chunks: Buffer[] = [];
    let cur = s;
    for (let i = 0; i < records; i++) {
      const path = `/local/domain/1/data/k${i % 1000}`;
      const next = advance(execute(cur, DOM0, DEFAULT_LIMITS, { op: 'write', path, value: `rewritten ${i}` }).store, cur);
      chunks.push(frameRecord(encodeDelta(deltaOf(cur, next))));
      cur = next;
    }
    writeFileSync(join(dir, segmentName(s.generation + 1)), Buffer.concat(chunks));
  }
  return dir;
}

interface Started {
  readonly child: ChildProcess;
  readonly firstReplyMs: number;
  /** CPU time (user + system) the daemon had used when its first reply arrived: steadier than wall time on a shared machine. */
  readonly cpuMs: number;
  readonly output: () => string;
}

/** Starts the daemon on `data` and times a client's first READ, as described in the header. */
async function coldStart(data: string | undefined, extra: string[] = []): Promise<Started> {
  const rundir = mkdtempSync(join(scratch, 'run-'));
  const sock = join(rundir, 'socket');
  const args = [DAEMON, '--rundir', rundir, ...(data === undefined ? [] : ['--data-dir', data]), ...extra];
  let out = '';
  const child = hasActivator
    ? spawn('systemd-socket-activate', ['-l', sock, '-l', join(rundir, 'socket_ro'), '--fdname=socket:socket_ro', NODE, ...args])
    : spawn(NODE, args);
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  // With the activator: wait until it listens (not part of the time), then connect: that starts us.
  while (hasActivator && !out.includes('socket_ro as')) await sleep(5);
  const t0 = performance.now();
  let client: XsClient | undefined;
  while (client === undefined) {
    try {
      if (existsSync(sock)) client = await XsClient.connect(sock);
    } catch {
      /* not listening yet */
    }
    if (client === undefined) await sleep(2);
  }
  await client.read(data === undefined ? '/local' : '/local/domain/1/data/k0');
  const firstReplyMs = performance.now() - t0;
  // The activator execs the daemon in place, so its pid is the daemon's.
  const cpuMs = cpuOf(child.pid!);
  client.close();
  // The daemon writes its log a moment after ready (server/logger.ts): the rounds read its lines.
  for (let i = 0; i < 400 && !/\bready\b.*socket=/.test(out); i++) await sleep(5);
  return { child, firstReplyMs, cpuMs, output: () => out };
}

/**
 * CPU (user + system, ms) of a bare `node -e 0`: the runtime's own start-up, the floor of ours.
 * With `activated`, started as the daemon is, by systemd-socket-activate on a first connection:
 * the activator execs it in place, so its own CPU (~14 ms here) is the process's, counted by
 * process.cpuUsage() as by /proc; the difference between the two is what the daemon's figures
 * carry that is not the daemon's, and is taken off them.
 */
async function bareNodeCpuMs(activated = false): Promise<number> {
  const script = 'const u = process.cpuUsage(); process.stdout.write(String(u.user + u.system))';
  if (!activated) return Number(spawnSync(NODE, ['-e', script]).stdout.toString()) / 1000;
  const sock = join(mkdtempSync(join(scratch, 'bare-')), 'socket');
  const child = spawn('systemd-socket-activate', ['-l', sock, NODE, '-e', script]);
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise((r) => child.once('exit', r));
  for (let i = 0; !err.includes('Listening on'); i++) {
    if (i === 2000 || child.exitCode !== null) throw new Error(`systemd-socket-activate did not listen on ${sock}: ${err}`);
    await sleep(5);
  }
  const trigger = connect(sock);
  trigger.on('error', () => undefined);
  await exited;
  trigger.destroy();
  children.delete(child);
  return Number(out) / 1000;
}

/**
 * CPU time of a process, every thread's, in ms: from the scheduler's own count (nanoseconds,
 * /proc/PID/task/TID/schedstat) where the kernel keeps it, else utime + stime from /proc/PID/stat
 * (clock ticks of 10 ms: a tenth of a start at 10^3 nodes, too coarse for its ratio to node -e 0).
 */
function cpuOf(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    if (ns > 0) return ns / 1e6;
  } catch {
    /* no schedstat: the ticks below */
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL'); // no final snapshot: keep the data directory as it was for the next round
  await exited;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Writes/s for `clients` connections each keeping `window` writes outstanding. */
async function throughput(sync: string, clients: number, window: number): Promise<number> {
  // 'off': no --data-dir at all (the writes create their nodes first, then rewrite them).
  const started =
    sync === 'off'
      ? await coldStart(undefined)
      : await coldStart(dataDirFrom(mkdtempSync(join(scratch, 'tp-'))), ['--sync', sync]);
  const sock = started.output().match(/socket=(\S+)/)?.[1] ?? '';
  const conns = await Promise.all(Array.from({ length: clients }, () => XsClient.connect(sock)));
  let done = 0;
  const deadline = performance.now() + THROUGHPUT_MS;
  const t0 = performance.now();
  await Promise.all(
    conns.flatMap((c, k) =>
      Array.from({ length: window }, async (_, w) => {
        for (let i = 0; performance.now() < deadline; i++) {
          await c.write(`/local/domain/1/data/k${(k * window + w) % 1000}`, `v${i}`);
          done++;
        }
      }),
    ),
  );
  const rate = done / ((performance.now() - t0) / 1000);
  for (const c of conns) c.close();
  await stop(started.child);
  return rate;
}

let small: Store | undefined;
function dataDirFrom(dir: string): string {
  small ??= domainTree(1000);
  writeSnapshotFileSync(dir, encodeSnapshot(small));
  return dir;
}

function recoveredMs(output: string): number {
  const m = /store recovered .*ms=(\d+)/.exec(output);
  return m ? Number(m[1]) : NaN;
}

async function main(): Promise<void> {
  // The Node line measured is the daemons' (`--node`), not necessarily the bench's own.
  const ctx = { ...runContext(), node: spawnSync(NODE, ['--version']).stdout.toString().trim() };
  const loadAtStart = loadavg()[0]!.toFixed(1);
  const sizes = SIZES;
  const bare: number[] = [];
  const bareActivated: number[] = [];
  /**
   * The activator's own CPU, carried by every daemon figure when it starts the daemon: the median
   * of each round's difference (the two `node -e 0` of a round run back to back, so a busy spell
   * of the machine weighs on both), never below 0.
   */
  const activator = () => (hasActivator ? Math.max(0, median(bareActivated.map((a, i) => a - bare[i]!))) : 0);
  const cold: string[][] = [];
  const codec: string[][] = [];
  const recovery: string[][] = [];
  for (const n of sizes) {
    const s = domainTree(n);
    const total = nodes(s);
    let t = performance.now();
    const bytes = encodeSnapshot(s);
    const encMs = performance.now() - t;
    t = performance.now();
    decodeSnapshot(bytes);
    const decMs = performance.now() - t;
    codec.push([`10^${Math.log10(n)}`, total.toLocaleString('en-US'), `${fmt(bytes.length / 2 ** 20)} MiB`, fmt(encMs), fmt(decMs)]);

    const plain = dataDir(s, 0);
    const first: number[] = [];
    const loaded: number[] = [];
    const cpu: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      bare.push(await bareNodeCpuMs());
      if (hasActivator) bareActivated.push(await bareNodeCpuMs(true));
      const st = await coldStart(plain);
      first.push(st.firstReplyMs);
      loaded.push(recoveredMs(st.output()));
      cpu.push(st.cpuMs);
      await stop(st.child);
    }
    cold.push([
      `10^${Math.log10(n)}`,
      total.toLocaleString('en-US'),
      fmt(median(loaded)),
      fmt(median(first)),
      first.map(fmt).join(' / '),
      fmt(median(cpu) - activator()),
      fmt((median(cpu) - activator()) / median(bare)),
    ]);
    process.stderr.write(`cold start ${n}: ${first.map(fmt).join(', ')} ms\n`);

    if (n >= 100_000) {
      const withLog = dataDir(s, LOG_RECORDS);
      const rec: number[] = [];
      const firstRec: number[] = [];
      const cpuRec: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const st = await coldStart(withLog);
        rec.push(recoveredMs(st.output()));
        firstRec.push(st.firstReplyMs);
        cpuRec.push(st.cpuMs);
        await stop(st.child);
      }
      recovery.push([
        `10^${Math.log10(n)}`,
        total.toLocaleString('en-US'),
        LOG_RECORDS.toLocaleString('en-US'),
        fmt(median(rec)),
        fmt(median(firstRec)),
        fmt(median(cpuRec) - activator()),
        fmt((median(cpuRec) - activator()) / (median(cpu) - activator())),
      ]);
      process.stderr.write(`recovery ${n}: ${rec.join(', ')} ms\n`);
    }
  }

  // Modes interleaved round by round, so that a noisy minute hits every mode alike.
  const tp: string[][] = [];
  const MODES = ['always', 'batch', 'none', 'off'] as const;
  for (const [clients, window] of argv['no-throughput'] === true
    ? []
    : ([
        [1, 1],
        [8, 16],
      ] as const)) {
    const samples = new Map<string, number[]>(MODES.map((m) => [m, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const sync of MODES) samples.get(sync)!.push(await throughput(sync, clients, window));
    }
    const none = median(samples.get('none')!);
    for (const sync of MODES) {
      const xs = samples.get(sync)!;
      process.stderr.write(`throughput ${sync} ${clients}x${window}: ${xs.map(fmt).join(', ')}\n`);
      const label = sync === 'off' ? 'no --data-dir' : sync;
      tp.push([`${clients} × ${window}`, label, fmt(median(xs)), xs.map(fmt).join(' / '), fmt(median(xs) / none)]);
    }
  }

  const out = [
    `Run: ${ctx.date}, ${ctx.command}; Node ${ctx.node}, ${ctx.cpu}, ${ctx.cores} cores, ${ctx.memoryGiB} GiB, ${ctx.platform}.`,
    `Load average (1 min) ${loadAtStart} at the start, ${loadavg()[0]!.toFixed(1)} at the end, on ${ctx.cores} cores.`,
    `Daemon: ${DAEMON}.`,
    `Start-up: ${hasActivator ? 'systemd-socket-activate (the first connection starts the daemon)' : 'spawned and polled (no systemd-socket-activate)'}.`,
    '',
    `#### Cold start to first reply (snapshot only; median of ${ROUNDS}, ms)`,
    '',
    ...(hasActivator ? ["Daemon CPU is the daemon's own: the activator's (the last row's difference) taken off.", ''] : []),
    markdownTable(
      ['store', 'nodes', 'store recovered (ms)', 'first reply (ms)', 'rounds (ms)', 'daemon CPU (ms)', 'CPU / node -e 0'],
      [
        ...cold,
        ['`node -e 0`', '', '', '', '', fmt(median(bare)), '1'],
        ...(hasActivator ? [['`node -e 0` by the activator', '', '', '', '', fmt(median(bareActivated)), `(activator ${fmt(activator())} ms)`]] : []),
      ],
    ),
    '',
    `#### Recovery after a crash: snapshot + log records (median of ${ROUNDS}, ms)`,
    '',
    markdownTable(['store', 'nodes', 'log records', 'store recovered (ms)', 'first reply (ms)', 'daemon CPU (ms)', 'CPU / cold start'], recovery),
    '',
    `#### Write throughput by --sync mode (writes/s, median of ${ROUNDS} × 3 s; 10^3-node store)`,
    '',
    markdownTable(['clients × outstanding', '--sync', 'writes/s', 'rounds', 'vs none'], tp),
    '',
    '#### Snapshot codec alone (this process, one run)',
    '',
    markdownTable(['store', 'nodes', 'size', 'encode (ms)', 'decode (ms)'], codec),
  ].join('\n');
  process.stdout.write(out + '\n');
}

void main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`lifecycle bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
