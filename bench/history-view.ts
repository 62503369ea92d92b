/**
 * The web view's reads of a past moment, through the daemon (`npm run bench:history-view`, issue
 * 14): the view shows each row of the tree as it was with three CONTROL `history at` queries of
 * the same moment (value, children, permissions: server/gateway/routes/node.ts), and scrubbing its
 * timeline asks the same rows at the next tick. This starts the daemon on a temporary run
 * directory, makes `--commits` rewrites of `--keys` keys in 20 directories (values of
 * `--value-bytes`), then, `--rounds` times,
 * reads `--rows` rows at a moment `--back` commits before the latest, and once more the same rows
 * 100 commits later (the next tick); meanwhile a second client reads a key in a loop, and its
 * longest wait is what every guest would have waited.
 *
 * Options: --commits=100000 --back=99000 --rows=20 --rounds=3 --keys=1000 --value-bytes=0 (0:
 * short values, `v<n>`) --daemon=<nxenstored.js> (another build, e.g. the one before a change;
 * the default is this build's).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XsClient } from '../clients/index.js';
import { option } from './cli-option.js';
import { markdownTable, runContext } from './metric.js';

const COMMITS = Number(option('commits', '100000'));
const BACK = Number(option('back', '99000'));
const ROWS = Number(option('rows', '20'));
const ROUNDS = Number(option('rounds', '3'));
const DAEMON = option('daemon', join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'nxenstored.js'));
const KEYS = Number(option('keys', '1000'));
const VALUE_BYTES = Number(option('value-bytes', '0'));
const DIRS = 20;

async function connect(sock: string): Promise<XsClient> {
  for (let i = 0; ; i++) {
    try {
      return await XsClient.connect(sock);
    } catch (e) {
      if (i >= 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The rows' three queries each at generation `g`, all asked at once as the view does; ms. */
async function showRows(c: XsClient, rows: readonly string[], g: number): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    rows.map(async (p) => {
      for (const what of ['read', 'ls', 'perms']) await c.control('history', 'at', String(g), what, p);
    }),
  );
  return performance.now() - t0;
}

/** Runs `f` while `probe` reads a key in a loop: f's ms, and the probe's longest wait. */
async function whileProbed(probe: XsClient, f: () => Promise<number>): Promise<{ ms: number; worst: number }> {
  let worst = 0;
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const t = performance.now();
      await probe.read('/vm/d0/k0');
      worst = Math.max(worst, performance.now() - t);
    }
  })();
  const ms = await f();
  stop = true;
  await loop;
  return { ms, worst };
}

async function main(): Promise<void> {
  if (!(BACK > 100 && BACK < COMMITS)) throw new Error('--back must be above 100 and below --commits');
  const dir = mkdtempSync(join(tmpdir(), 'nx-history-view-'));
  const daemon = spawn(process.execPath, [DAEMON, '--rundir', dir, '--log-level', 'error'], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    const sock = join(dir, 'socket');
    const c = await connect(sock);
    const probe = await connect(sock);
    const keys = Array.from({ length: KEYS }, (_, i) => `/vm/d${i % DIRS}/k${i}`);
    const pad = 'x'.repeat(VALUE_BYTES);
    process.stderr.write(`making ${COMMITS} commits\n`);
    for (let i = 0; i < COMMITS; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, COMMITS - i) }, (_, j) => c.write(keys[(i + j) % KEYS]!, `${pad}v${i + j}`)));
    }
    const info = JSON.parse(await c.control('history', 'info')) as { latest: { generation: number } };
    const g = info.latest.generation - BACK;
    const rows = ['/vm', ...Array.from({ length: ROWS - 1 }, (_, i) => `/vm/d${i % DIRS}`)];
    const table: string[][] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const at = await whileProbed(probe, () => showRows(c, rows, g));
      table.push([`${r + 1}: ${ROWS} rows at generation ${g}`, at.ms.toFixed(1), at.worst.toFixed(1)]);
    }
    const next = await whileProbed(probe, () => showRows(c, rows, g + 100));
    table.push([`the same rows 100 commits later`, next.ms.toFixed(1), next.worst.toFixed(1)]);
    await c.close();
    await probe.close();
    const ctx = runContext();
    process.stdout.write(`history view bench: ${DAEMON}, ${COMMITS} commits of history (${KEYS} keys, values of ${VALUE_BYTES || 'a few'} bytes), the moment ${BACK} back; ${ctx.cpu} x${ctx.cores}, node ${ctx.node}\n\n`);
    process.stdout.write(markdownTable([`rows (3 queries each)`, 'ms', 'longest read meanwhile (ms)'], table));
    process.stdout.write('\n');
  } finally {
    daemon.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
