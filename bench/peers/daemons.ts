import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { answers } from '../../server/index.js';
import { DAEMON_NODE_FLAGS } from '../../src/node-flags.js';

const run = promisify(execFile);

/** The repository root, from `dist/bench/peers/daemons.js`. */
export const REPO = resolve(import.meta.dirname, '..', '..', '..');
export const REFD = resolve(REPO, '..', 'shared', 'refd');
/** Where `test/setup/tools.sh` had refd unpack Xen's daemons: inside the checkout. */
const XEN_DIR = process.env['XEN_DIR'] ?? join(REPO, '.xen-tools', 'refd');

/** One daemon under test: where its socket is and how to stop it. */
export interface RunningDaemon {
  readonly name: string;
  readonly socket: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export type DaemonKind = 'cxenstored' | 'oxenstored' | 'oxenstored-nolog' | 'nxenstored' | 'node-floor';

/**
 * `startDaemon(kind, dir, name)` starts one daemon serving `dir/socket`: Xen's two through
 * `../shared/refd/start-*.sh` (oxenstored with its access log as shipped, or with
 * `XS_ACCESS_LOG=0`), ours as built (`dist/src/nxenstored.js`, default options; with
 * `--expose-gc` when `exposeGc`, so CONTROL memreport can report live heap, not garbage).
 */
export async function startDaemon(kind: DaemonKind, dir: string, name: string, exposeGc = false): Promise<RunningDaemon> {
  if (kind === 'nxenstored') return startOurs(dir, name, exposeGc);
  if (kind === 'node-floor') return startOurs(dir, name, false, 'null-xenstored');
  const script = join(REFD, kind === 'cxenstored' ? 'start-cxenstored.sh' : 'start-oxenstored.sh');
  const env = { ...process.env, XEN_DIR, ...(kind === 'oxenstored-nolog' ? { XS_ACCESS_LOG: '0' } : {}) };
  await run(script, [dir], { env });
  const pid = Number(readFileSync(join(dir, 'pid'), 'utf8').trim());
  return {
    name,
    socket: join(dir, 'socket'),
    pid,
    stop: async () => {
      await run(join(REFD, 'stop.sh'), [dir], { env }).catch(() => undefined);
    },
  };
}

/** Ours as built, or with `floor` the protocol-only reference server (bench/null-xenstored.ts). */
async function startOurs(dir: string, name: string, exposeGc: boolean, floor?: 'null-xenstored'): Promise<RunningDaemon> {
  const js = floor === undefined ? join(REPO, 'dist', 'src', 'nxenstored.js') : join(REPO, 'dist', 'bench', `${floor}.js`);
  if (!existsSync(js)) throw new Error(`${js} is missing: build first (npx tsc -p tsconfig.json)`);
  mkdirSync(dir, { recursive: true });
  const args = floor === undefined ? [js, '--rundir', dir] : [js, '--socket', join(dir, 'socket')];
  // Ours with the V8 options its executable runs with (src/node-flags.ts), as a host runs it.
  const flags = floor === undefined ? DAEMON_NODE_FLAGS : [];
  const child: ChildProcess = spawn(process.execPath, [...flags, ...(exposeGc ? ['--expose-gc'] : []), ...args], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const socket = join(dir, 'socket');
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) before listening`);
    if (await answers(socket)) break;
    if (i > 400) throw new Error(`${name} did not listen on ${socket}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    name,
    socket,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** Resident set size of a process, bytes (from /proc). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU time (user + system) a process has used so far, seconds (from /proc; clock ticks of 100 Hz). */
export function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
