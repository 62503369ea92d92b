/**
 * Starts the REAL daemon (`dist/src/nxenstored.js`, built by `npx tsc -p tsconfig.json`) on a fresh
 * run directory, for integration and compatibility tests. One process per `startDaemon()`; the
 * caller stops it with `stop()` (SIGTERM, then SIGKILL if it does not exit).
 *
 *     const d = await startDaemon();
 *     const c = await d.connect();          // privileged dom0 socket
 *     const g = await d.guest(5);           // INTRODUCE 5 from dom0, connect as domain 5
 *     ...
 *     await d.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Op } from '../../protocol/index.js';
import { DAEMON_NODE_FLAGS } from '../../src/node-flags.js';
import { Wire } from './wire.js';
import { answers } from '../../server/index.js';

/** The repository root (this file is `<repo>/test/helpers/daemon.ts`). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DAEMON_JS = join(REPO, 'dist', 'src', 'nxenstored.js');

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

export interface DaemonOptions {
  /** Extra command-line arguments, e.g. `['--quota', 'nodes=50']`. */
  readonly args?: readonly string[];
  /** Start under `ulimit -n` of this many descriptors (set by a shell that then execs node). */
  readonly nofile?: number;
}

export interface StopResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly forced: boolean;
}

export interface RunningDaemon {
  readonly rundir: string;
  /** `<rundir>/socket`: privileged (dom0). */
  readonly socket: string;
  /** `<rundir>/socket_ro`: read-only. */
  readonly socketRo: string;
  readonly pid: number;
  /**
   * The pid serving now: after a live update (CONTROL `live-update`) the process that took over,
   * which writes `<rundir>/nxenstored.pid`; else `pid`.
   */
  currentPid(): number;
  /** Everything the daemon wrote to stdout and stderr so far (for failure messages). */
  output(): string;
  /** Exit code / signal once the process has exited, undefined while it runs. */
  exited(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** A new wire client on the privileged socket. */
  connect(): Promise<Wire>;
  /** A new wire client on the read-only socket. */
  connectRo(): Promise<Wire>;
  /** `<rundir>/domains/<domid>/socket`: where an introduced guest's connections arrive. */
  domainSocket(domid: number): string;
  /** A new connection acting as (already introduced) domain `domid`. */
  connectDomain(domid: number): Promise<Wire>;
  /**
   * INTRODUCEs `domid` from a privileged connection (`domid|mfn|port|`; the reply must be OK) and
   * returns a connection acting as that domain.
   */
  guest(domid: number): Promise<Wire>;
  /**
   * With `args: ['--http', '127.0.0.1:0']`: the gateway's address (`http://127.0.0.1:PORT` or
   * `unix:/path`, from `<rundir>/http-address`) and the privileged token (`<rundir>/http-token`),
   * once the daemon has written them.
   */
  gateway(): Promise<{ url: string; token: string }>;
  /**
   * Stops the daemon (SIGTERM; SIGKILL after 5 s) and removes the run directory. Idempotent.
   * Resolves with how the process ended; `forced` when SIGTERM was not enough.
   */
  stop(): Promise<StopResult>;
}

/** `startDaemon(opts)` spawns nxenstored on a fresh `mkdtemp` run directory and waits for its socket. */
export async function startDaemon(opts: DaemonOptions = {}): Promise<RunningDaemon> {
  if (!existsSync(DAEMON_JS)) {
    throw new Error(`${DAEMON_JS} is missing: build the daemon first (cd ${REPO} && npx tsc -p tsconfig.json)`);
  }
  const rundir = mkdtempSync(join(tmpdir(), 'nxs-test-'));
  const socket = join(rundir, 'socket');
  // With the V8 options the executable's #! line gives it (src/node-flags.ts).
  const argv = [...DAEMON_NODE_FLAGS, DAEMON_JS, '--rundir', rundir, ...(opts.args ?? [])];
  // exec keeps the pid: the shell becomes the daemon, so `pid` and signals still reach it.
  const [cmd, args] =
    opts.nofile === undefined
      ? [process.execPath, argv]
      : ['/bin/sh', ['-c', `ulimit -n ${opts.nofile} && exec "$0" "$@"`, process.execPath, ...argv]];
  const child = spawn(cmd, args, {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, XENSTORED_PATH: socket },
  });
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString('utf8');
    // Keep the tail only: a test that floods the log must not grow our memory.
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  // If the test process goes away without stopping us (a crashed worker), take the daemon along.
  const orphanGuard = () => {
    child.kill('SIGKILL');
    const next = successor(rundir, child.pid!);
    if (next !== undefined) process.kill(next, 'SIGKILL');
  };
  process.once('exit', orphanGuard);
  const exitedPromise = new Promise<void>((res) =>
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      // The guard stays while a successor (live update) may run; stop() removes it.
      if (successor(rundir, child.pid!) === undefined) process.off('exit', orphanGuard);
      res();
    }),
  );

  try {
    // Both: the daemon listens on socket, then socket_ro; a test may use either at once.
    await waitForSocket(socket, () => exit, () => out);
    await waitForSocket(join(rundir, 'socket_ro'), () => exit, () => out);
  } catch (e) {
    await kill(child, exitedPromise);
    rmSync(rundir, { recursive: true, force: true });
    throw e;
  }

  const wires: Wire[] = [];
  const track = async (w: Promise<Wire>) => {
    const c = await w;
    wires.push(c);
    return c;
  };
  let stopped: Promise<StopResult> | undefined;
  const d: RunningDaemon = {
    rundir,
    socket,
    socketRo: join(rundir, 'socket_ro'),
    pid: child.pid!,
    currentPid: () => successor(rundir, child.pid!) ?? child.pid!,
    output: () => out,
    exited: () => exit,
    connect: () => track(Wire.connect(socket)),
    connectRo: () => track(Wire.connect(join(rundir, 'socket_ro'))),
    domainSocket: (domid) => join(rundir, 'domains', String(domid), 'socket'),
    connectDomain: (domid) => track(Wire.connect(join(rundir, 'domains', String(domid), 'socket'))),
    guest: async (domid) => {
      const c = await Wire.connect(socket);
      try {
        const r = await c.ask(Op.INTRODUCE, `${domid}|${0x1000 + domid}|${domid + 1}|`);
        if (r !== 'OK|') throw new Error(`INTRODUCE ${domid} answered ${r}\n${out}`);
      } finally {
        c.close();
      }
      return d.connectDomain(domid);
    },
    gateway: async () => {
      const file = join(rundir, 'http-address');
      const deadline = Date.now() + START_TIMEOUT_MS;
      while (!existsSync(file)) {
        if (exit !== undefined || Date.now() > deadline) throw new Error(`no ${file}: was --http given?\n${out}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      const url = readFileSync(file, 'utf8').trim();
      return { url, token: readFileSync(join(rundir, 'http-token'), 'utf8').trim() };
    },
    stop: () => {
      stopped ??= (async () => {
        for (const w of wires) w.close();
        let forced = await kill(child, exitedPromise);
        // After a live update the original process has gone and another one serves.
        const next = successor(rundir, child.pid!);
        if (next !== undefined) forced = (await killPid(next)) || forced;
        process.off('exit', orphanGuard);
        rmSync(rundir, { recursive: true, force: true });
        return { code: exit?.code ?? null, signal: exit?.signal ?? null, forced };
      })();
      return stopped;
    },
  };
  return d;
}

/** The live pid in `<rundir>/nxenstored.pid` when it is not `original` (a live update happened). */
function successor(rundir: string, original: number): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(join(rundir, 'nxenstored.pid'), 'latin1').trim());
  } catch {
    return undefined;
  }
  return Number.isSafeInteger(pid) && pid > 0 && pid !== original && alive(pid) ? pid : undefined;
}

/** True while `pid` runs (a zombie, which no one may reap in a container, counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** SIGTERM to a process that is not our child, then SIGKILL if it lingers; true when SIGKILL was needed. */
async function killPid(pid: number): Promise<boolean> {
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (alive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      while (alive(pid)) await new Promise((r) => setTimeout(r, 20));
      return true;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/** Polls until `path` accepts a connection; fails early if the daemon exits, or after a bound. */
async function waitForSocket(
  path: string,
  exited: () => { code: number | null; signal: NodeJS.Signals | null } | undefined,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const e = exited();
    if (e !== undefined) {
      throw new Error(`nxenstored exited before listening (code ${e.code}, signal ${e.signal}):\n${output()}`);
    }
    if (await answers(path)) return;
    if (Date.now() > deadline) {
      throw new Error(`nxenstored did not listen on ${path} within ${START_TIMEOUT_MS} ms:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** SIGTERM, then SIGKILL if the process has not exited in time; true when SIGKILL was needed. */
async function kill(child: ChildProcess, exited: Promise<void>): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return false;
  child.kill('SIGTERM');
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_TIMEOUT_MS).unref());
  if ((await Promise.race([exited.then(() => 'exited' as const), timer])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
    return true;
  }
  return false;
}
