/**
 * Starting the way systemd starts us: socket activation under Debian's `systemd-socket-activate`
 * (sd_listen_fds convention, named descriptors), readiness over a datagram `NOTIFY_SOCKET` bound
 * by the test (sd_notify protocol), and `--idle-exit`. The daemon is the real built one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Map as ImmMap } from 'immutable';
import { afterEach, describe, expect, it } from 'vitest';
import { DOM0_ONLY, XsNode, encodeSnapshot, fromRoot } from '../../store/index.js';
import { writeSnapshotFileSync } from '../../server/persistence/index.js';
import { DAEMON_NODE_FLAGS } from '../../src/node-flags.js';
import { DAEMON_JS, REPO } from '../helpers/daemon.js';
import { Wire } from '../helpers/wire.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A data directory holding a snapshot of `n` nodes under /big, so that loading takes a while. */
function bigDataDir(n: number): string {
  const dir = tmp('nxs-big-');
  const kids: [string, XsNode][] = [];
  for (let i = 0; i < n; i++) kids.push([`k${i}`, XsNode.leaf(`value ${i}`, DOM0_ONLY)]);
  const root = new XsNode('', DOM0_ONLY, ImmMap([['big', new XsNode('', DOM0_ONLY, ImmMap(kids))]]));
  writeSnapshotFileSync(dir, encodeSnapshot(fromRoot(root, 42)));
  return dir;
}

interface Proc {
  readonly child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
  const child = spawn(cmd, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  cleanup.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, output: () => out, exited };
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 3000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

const NODES = 200_000;

describe('socket activation (systemd-socket-activate)', () => {
  it('serves a client that connected before the daemon was ready, on the named sockets', async () => {
    const rundir = tmp('nxs-act-');
    const data = bigDataDir(NODES);
    const sock = join(rundir, 'socket');
    const sockRo = join(rundir, 'socket_ro');
    // The built file itself, as package.json's `bin` names it and a unit's ExecStart= runs it: its
    // shebang execs node in place, so LISTEN_PID (the activator's pid) is still ours.
    const p = run('systemd-socket-activate', [
      '-l', sock, '-l', sockRo, '--fdname=socket:socket_ro',
      DAEMON_JS, '--rundir', rundir, '--data-dir', data,
    ]);
    await until('the activator to listen', () => p.output().includes(`Listening on ${sockRo}`));
    // The first connection makes the activator exec the daemon, which then loads 2·10⁵ nodes:
    // this client is queued by the kernel meanwhile, and its request answered once we are ready.
    const c = await Wire.connect(sock);
    const early = c.read(`/big/k${NODES - 1}`);
    expect(p.output()).not.toMatch(/\bready\b/);
    expect(await early).toBe(`value ${NODES - 1}`);
    await expect.poll(() => p.output(), { timeout: 5000 }).toMatch(/ready .*activated=true/);
    // The activator's process is now the daemon: nothing in between (LISTEN_PID holds).
    const cmdline = readFileSync(`/proc/${p.child.pid}/cmdline`, 'utf8').split('\0');
    expect(cmdline).toContain(DAEMON_JS);
    // The #! line's V8 options reached node (`env -S`, src/node-flags.ts).
    expect(cmdline).toEqual(expect.arrayContaining([...DAEMON_NODE_FLAGS]));
    // The descriptor named socket_ro is the read-only one.
    const ro = await Wire.connect(sockRo);
    expect(await ro.read('/big/k0')).toBe('value 0');
    await expect(ro.write('/x', '1')).rejects.toThrow(/EACCES/);
    await c.write('/x', '1');
    c.close();
    ro.close();
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
    // The sockets are systemd's: they stay for the next activation.
    expect(existsSync(sock) && existsSync(sockRo)).toBe(true);
  });

  it('follows the names, not the order, of the inherited descriptors', async () => {
    const rundir = tmp('nxs-act-');
    const sock = join(rundir, 'socket');
    const sockRo = join(rundir, 'socket_ro');
    const p = run('systemd-socket-activate', [
      '-l', sockRo, '-l', sock, '--fdname=socket_ro:socket',
      process.execPath, DAEMON_JS, '--rundir', rundir,
    ]);
    await until('the activator to listen', () => p.output().includes(`Listening on ${sock}`));
    const rw = await Wire.connect(sock);
    await rw.write('/named', 'yes');
    const ro = await Wire.connect(sockRo);
    await expect(ro.write('/named', 'no')).rejects.toThrow(/EACCES/);
    expect(await ro.read('/named')).toBe('yes');
    rw.close();
    ro.close();
    p.child.kill('SIGTERM');
    await p.exited;
  });
});

describe('readiness (NOTIFY_SOCKET)', () => {
  it('sends READY=1 only once the store is loaded and the sockets accept; RELOADING=1 on SIGHUP; STOPPING=1', async () => {
    const rundir = tmp('nxs-notify-');
    const data = bigDataDir(NODES);
    const notifyPath = join(rundir, 'notify');
    const require = createRequire(import.meta.url);
    const unix = require('unix-dgram') as {
      createSocket(type: 'unix_dgram', fn: (b: Buffer) => void): { bind(p: string): void; close(): void };
    };
    const messages: { text: string; socketAccepting: boolean }[] = [];
    const sock = join(rundir, 'socket');
    // The check runs synchronously when the datagram arrives: had READY=1 been sent before the
    // listeners existed, the socket file would not be there yet (the daemon creates it).
    const server = unix.createSocket('unix_dgram', (b) => messages.push({ text: b.toString(), socketAccepting: existsSync(sock) }));
    server.bind(notifyPath);
    cleanup.push(() => server.close());

    const p = run(process.execPath, [DAEMON_JS, '--rundir', rundir, '--data-dir', data], { ...process.env, NOTIFY_SOCKET: notifyPath });
    await until('READY=1', () => messages.some((m) => m.text.includes('READY=1')));
    const ready = messages.find((m) => m.text.includes('READY=1'))!;
    expect(messages.indexOf(ready)).toBe(0);
    expect(ready.socketAccepting).toBe(true);
    // The status counts the loaded tree: the root, /big and its children, plus nothing else.
    expect(ready.text).toContain(`STATUS=serving ${NODES + 2} nodes, generation 42`);
    expect(ready.text).toContain(`MAINPID=${p.child.pid}`);
    const c = await Wire.connect(sock);
    expect(await c.read('/big/k7')).toBe('value 7');
    c.close();

    p.child.kill('SIGHUP');
    await until('READY=1 after the reload', () => messages.filter((m) => m.text.includes('READY=1')).length === 2);
    const texts = messages.map((m) => m.text.split('\n')[0]);
    expect(texts).toEqual(['READY=1', 'RELOADING=1', 'READY=1']);
    expect(messages[1]!.text).toMatch(/MONOTONIC_USEC=\d+/);

    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
    expect(messages.map((m) => m.text.split('\n')[0])).toEqual(['READY=1', 'RELOADING=1', 'READY=1', 'STOPPING=1']);
  });
});

describe('readiness on an abstract NOTIFY_SOCKET (@name)', () => {
  it('reaches it through systemd-notify, with a warning, since unix-dgram cannot address it', async () => {
    const rundir = tmp('nxs-abstract-');
    const name = `nxs-test-${process.pid}-${Date.now()}`;
    // A datagram socket in the abstract namespace, bound by Python (neither Node nor unix-dgram can).
    const listener = run('python3', [
      '-c',
      'import socket,sys,json\n' +
        's=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\n' +
        's.bind("\\0"+sys.argv[1])\n' +
        'print("bound",flush=True)\n' +
        'while True: print(json.dumps(s.recv(4096).decode()),flush=True)\n',
      name,
    ]);
    await until('the abstract socket', () => listener.output().includes('bound'));
    const p = run(process.execPath, [DAEMON_JS, '--rundir', rundir], { ...process.env, NOTIFY_SOCKET: `@${name}` });
    await until('READY=1', () => listener.output().includes('READY=1'));
    expect(listener.output()).toContain('STATUS=serving');
    await expect.poll(() => p.output(), { timeout: 5000 }).toMatch(/abstract socket, which unix-dgram cannot address/);
    p.child.kill('SIGTERM');
    await p.exited;
    await until('STOPPING=1', () => listener.output().includes('STOPPING=1'));
  });
});

describe('--idle-exit', () => {
  it('exits on its own when idle, keeping the store; refused without --data-dir', async () => {
    const rundir = tmp('nxs-idle-');
    const data = tmp('nxs-idle-data-');
    // 5 s, not 1: the client must connect before the daemon is idle that long, and on a loaded
    // machine (CI beside other jobs) a 1 s window was missed: ECONNREFUSED from a daemon gone idle.
    const p = run(process.execPath, [DAEMON_JS, '--rundir', rundir, '--data-dir', data, '--idle-exit', '5']);
    await until('the socket', () => p.output().includes('clients:'));
    const c = await Wire.connect(join(rundir, 'socket'));
    await c.write('/kept', 'yes');
    c.close();
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.output()).toMatch(/stopping why="?idle for 5s/);

    const again = run(process.execPath, [DAEMON_JS, '--rundir', rundir, '--data-dir', data]);
    await until('the socket', () => again.output().includes('clients:'));
    const c2 = await Wire.connect(join(rundir, 'socket'));
    expect(await c2.read('/kept')).toBe('yes');
    c2.close();
    again.child.kill('SIGTERM');
    await again.exited;

    const refused = run(process.execPath, [DAEMON_JS, '--rundir', rundir, '--idle-exit', '5']);
    expect((await refused.exited).code).toBe(2);
    expect(refused.output()).toContain('--idle-exit needs --data-dir');
  });
});
