/**
 * The servers the gateway load tests run against, each a child process on a temporary directory:
 * nxenstored with `--http` (TCP on an ephemeral loopback port, or a Unix socket), and etcd 3.4 as
 * the peer (loopback-only client and peer URLs, a temporary --data-dir, its JSON gateway).
 * `stop()` ends the process it started and removes its directory.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository root: the nearest directory up with a package.json. This file runs as
 * `<repo>/dist/bench/http-servers.js`, and from source as `<repo>/bench/http-servers.ts` in tests.
 */
const REPO = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
})();
const DAEMON_JS = join(REPO, 'dist', 'src', 'nxenstored.js');
const NULL_GATEWAY_JS = join(REPO, 'dist', 'bench', 'null-gateway.js');
export const ETCD = process.env['ETCD'] ?? '/usr/bin/etcd';
const START_TIMEOUT_MS = 30_000;

export interface Server {
  /** `http://host:port`, or `http://localhost` for a Unix socket (see `socketPath`). */
  readonly url: string;
  readonly socketPath?: string;
  /** The privileged bearer token (nxenstored only). */
  readonly token?: string;
  readonly pid: number;
  /** What the process printed (for error messages). */
  output(): string;
  stop(): Promise<void>;
}

function child(cmd: string, args: string[], dir: string): { proc: ChildProcess; output: () => string; exited: () => boolean } {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString('utf8')).slice(-20_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  let gone = false;
  proc.once('exit', (code, signal) => {
    gone = true;
    out += `\n[${cmd} exited: code ${code}, signal ${signal}]`;
  });
  // If the benchmark dies, take the server along.
  const guard = () => proc.kill('SIGKILL');
  process.once('exit', guard);
  proc.once('exit', () => process.off('exit', guard));
  return { proc, output: () => out, exited: () => gone };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, exited: () => boolean, output: () => string): Promise<T> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exited()) throw new Error(`${what} exited before it was ready:\n${output()}`);
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${START_TIMEOUT_MS} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stopper(proc: ChildProcess, dir: string): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () =>
    (done ??= new Promise<void>((res) => {
      const finish = () => {
        rmSync(dir, { recursive: true, force: true });
        res();
      };
      if (proc.exitCode !== null || proc.signalCode !== null) return finish();
      const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      proc.once('exit', () => {
        clearTimeout(t);
        finish();
      });
      proc.kill('SIGTERM');
    }));
}

/**
 * `ready(what, c, dir, probe)` waits until `probe` gives a value; if the process exits or the wait
 * times out, the process is stopped and its directory removed before the error is thrown.
 */
function ready<T>(what: string, c: ReturnType<typeof child>, dir: string, probe: () => Promise<T | undefined>): Promise<T> {
  return waitFor(what, probe, c.exited, c.output).catch(async (e: unknown) => {
    await stopper(c.proc, dir)();
    throw e;
  });
}

/** `startNxenstored('tcp' | 'unix')` starts the built daemon with its gateway on and waits for it. */
export async function startNxenstored(transport: 'tcp' | 'unix', extraArgs: string[] = []): Promise<Server> {
  if (!existsSync(DAEMON_JS)) throw new Error(`${DAEMON_JS} is missing: run npx tsc -p tsconfig.json first`);
  const dir = mkdtempSync(join(tmpdir(), 'nxs-bench-'));
  const rundir = join(dir, 'run');
  const httpSock = join(dir, 'http.sock');
  const listen = transport === 'tcp' ? '127.0.0.1:0' : `unix:${httpSock}`;
  // BENCH_DAEMON_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles the daemon under load.
  const nodeArgs = (process.env['BENCH_DAEMON_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const c = child(process.execPath, [...nodeArgs, DAEMON_JS, '--rundir', rundir, '--http', listen, '--log-level', 'warn', ...extraArgs], dir);
  const address = await ready('nxenstored', c, dir, async () => {
    const f = join(rundir, 'http-address');
    const text = existsSync(f) ? readFileSync(f, 'utf8').trim() : '';
    return text === '' ? undefined : text;
  });
  const token = readFileSync(join(rundir, 'http-token'), 'utf8').trim();
  const socketPath = address.startsWith('unix:') ? address.slice(5) : address.startsWith('/') ? address : undefined;
  const url = socketPath !== undefined ? 'http://localhost' : /^https?:\/\//.test(address) ? address : `http://${address}`;
  return {
    url,
    ...(socketPath !== undefined ? { socketPath } : {}),
    token,
    pid: c.proc.pid!,
    output: c.output,
    stop: stopper(c.proc, dir),
  };
}

/**
 * `startNullGateway()` starts the fastify floor (`bench/null-gateway.ts`: the gateway's fastify
 * set-up with no store behind it) on an ephemeral loopback port; ready when it prints its URL.
 */
export async function startNullGateway(): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'null-gateway-'));
  const c = child(process.execPath, [NULL_GATEWAY_JS, '--listen', '127.0.0.1:0'], dir);
  const url = await ready('null-gateway', c, dir, async () => /^(http:\/\/\S+)$/m.exec(c.output())?.[1]);
  return { url, pid: c.proc.pid!, output: c.output, stop: stopper(c.proc, dir) };
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a !== null ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

/**
 * `startEtcd()` runs a one-member etcd on loopback only (client and peer URLs on 127.0.0.1, a
 * fresh --data-dir), with its defaults otherwise: in particular it fsyncs its WAL on every write,
 * as deployed. Ready when the JSON gateway answers a range request.
 */
export async function startEtcd(): Promise<Server> {
  if (!existsSync(ETCD)) throw new Error(`${ETCD} is missing (apt-get install etcd-server, or set ETCD=)`);
  const dir = mkdtempSync(join(tmpdir(), 'etcd-bench-'));
  const [client, peer] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const c = child(
    ETCD,
    [
      '--name', 'bench',
      '--data-dir', join(dir, 'data'),
      '--listen-client-urls', url,
      '--advertise-client-urls', url,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `bench=${peerUrl}`,
      '--initial-cluster-state', 'new',
      '--log-level', 'error',
      '--logger', 'zap',
    ],
    dir,
  );
  await ready('etcd', c, dir, async () => {
    const r = await fetch(`${url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: b64('ready') }) });
    return r.ok ? true : undefined;
  });
  return { url, pid: c.proc.pid!, output: c.output, stop: stopper(c.proc, dir) };
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * `cpuSeconds(pid)`: user + system CPU time the process has used so far (all its threads), from
 * /proc/<pid>/stat; NaN where there is no /proc. On a shared machine, requests per server
 * CPU-second is steadier than requests per wall-clock second.
 */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

export function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}
