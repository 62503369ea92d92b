/**
 * Finds and runs Xen's own command-line tools for the compatibility tests.
 *
 * - The libxenstore clients (`xenstore-read`, `-write`, `-ls`, ...) come from Debian's
 *   xenstore-utils, in /usr/bin.
 * - `xenstore-control` and `test-xenstore` come from xen-utils-4.17, whose /usr/bin entries are
 *   wrappers that demand a hypervisor; `test/setup/tools.sh` (run by `npm test`) unpacks the package
 *   into `<repo>/.xen-tools/root` and we run the real binaries from `usr/lib/xen-4.17/bin`.
 *
 * Search order: `$XEN_TOOLS_BIN`, then (clients only) /usr/bin, then the checkout's own
 * `.xen-tools/root`; never a shared /tmp tree, which may belong to another checkout. A missing tool
 * is an error that says how to get it, never a skipped test.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './daemon.js';

const UNPACKED_ROOTS = [join(REPO, '.xen-tools', 'root')];
const LIB_BIN = join('usr', 'lib', 'xen-4.17', 'bin');

/** Tools that only exist as real binaries inside the unpacked xen-utils package. */
const UNPACKED_ONLY = new Set(['xenstore-control', 'test-xenstore']);

function candidates(name: string): string[] {
  const dirs: string[] = [];
  const env = process.env['XEN_TOOLS_BIN'];
  if (env) dirs.push(env);
  if (UNPACKED_ONLY.has(name)) {
    for (const r of UNPACKED_ROOTS) dirs.push(join(r, LIB_BIN));
  } else {
    dirs.push('/usr/bin');
    for (const r of UNPACKED_ROOTS) dirs.push(join(r, 'usr', 'bin'));
  }
  return dirs.map((d) => join(d, name));
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** `xenTool(name)` is the path of a Xen tool; throws a message saying where it was looked for. */
export function xenTool(name: string): string {
  const tried = candidates(name);
  const found = tried.find(executable);
  if (found === undefined) {
    const how = UNPACKED_ONLY.has(name)
      ? `run 'bash test/setup/tools.sh' (npm test does), which unpacks Debian's xen-utils-4.17 into ${join(REPO, '.xen-tools', 'root')}, or set XEN_TOOLS_BIN`
      : `run 'bash test/setup/tools.sh' as root (npm test does), which installs Debian's xenstore-utils and libxenmisc4.17, or set XEN_TOOLS_BIN`;
    throw new Error(`Xen tool ${name} not found (tried ${tried.join(', ')}): ${how}`);
  }
  return found;
}

export interface ToolResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `runTool(name, args, socket, opts)` runs a Xen tool against the daemon listening on `socket`
 * (`XENSTORED_PATH`), with a bound on its run time (it is killed after `timeoutMs`).
 */
export function runTool(
  name: string,
  args: readonly string[],
  socket: string,
  opts: { timeoutMs?: number; input?: string } = {},
): Promise<ToolResult> {
  const bin = xenTool(name);
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      env: { ...process.env, XENSTORED_PATH: socket },
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString('latin1')));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString('latin1')));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {
        /* the tool may exit without reading its input */
      });
      child.stdin!.end(opts.input);
    }
  });
}

/** A long-running tool (e.g. `xenstore-watch`) whose output is read as it comes. */
export interface RunningTool {
  /** Resolves with the output once it contains `n` complete lines (rejects after `timeoutMs`). */
  lines(n: number, timeoutMs?: number): Promise<string[]>;
  readonly done: Promise<ToolResult>;
  kill(): void;
}

export function startTool(name: string, args: readonly string[], socket: string): RunningTool {
  const bin = xenTool(name);
  const child = spawn(bin, args, { env: { ...process.env, XENSTORED_PATH: socket }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout.on('data', (b: Buffer) => {
    stdout += b.toString('latin1');
    for (const l of listeners) l();
  });
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString('latin1')));
  const done = new Promise<ToolResult>((resolve) =>
    child.once('close', (code, signal) => {
      for (const l of listeners) l();
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return {
    done,
    kill: () => child.kill('SIGKILL'),
    lines: (n, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const complete = () => stdout.split('\n').slice(0, -1);
        const check = () => {
          if (complete().length >= n) {
            cleanup();
            resolve(complete());
          } else if (child.exitCode !== null || child.signalCode !== null) {
            cleanup();
            reject(new Error(`${name} exited (${child.exitCode}) after ${complete().length} lines: ${stdout}${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`${name}: ${complete().length} of ${n} lines within ${timeoutMs} ms: ${stdout}${stderr}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      }),
  };
}
