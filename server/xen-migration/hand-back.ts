import type { ChildProcess, StdioOptions } from 'node:child_process';
import { accessSync, constants, existsSync, linkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeHeader, HEADER_SIZE, Op, type Header } from '../../protocol/index.js';
import { encodeStream, type StateRecord, type WatchRecord } from '../../protocol/xen-state/index.js';
import { toNodeList, type Perms } from '../../store/index.js';
import type { Connection } from '../connection/index.js';
import type { Daemon } from '../daemon.js';
import { descriptor, listenUnix, type Listeners } from '../transport/index.js';
import type { XenCarried } from './carried.js';
import { XEN_STATE_FILE } from './take-over.js';
import { drainOutput } from '../live-update/index.js';

/** How long cxenstored may take to read the state (it unlinks the file once it has). */
const READ_TIMEOUT_MS = 30_000;
/** However long that took, queued replies get this long to reach their clients first. */
const FLUSH_MS = 5_000;
const POLL_MS = 5;

export interface HandBackOptions {
  readonly daemon: Daemon;
  readonly listeners: Listeners;
  /** What the take-over from cxenstored left us (evtchn device, rings); undefined if we never took over. */
  readonly carried: XenCarried | undefined;
  /** The pid file to pass on as `-F` when the command names no options. */
  readonly pidFile?: string | undefined;
  /** Called with cxenstored's pid just before we exit (systemd: `MAINPID=`). */
  readonly handedOver?: (pid: number) => void | Promise<void>;
}

/**
 * CONTROL `hand-back [-e NAME=VALUE]... FILE [ARG...]`: give the daemon back to cxenstored (FILE,
 * e.g. /usr/sbin/xenstored) without a restart. The reverse of `takeOverFromXen`; Xen's own
 * migration stream (version 1, what 4.17 reads; 4.22 reads it too) in `<rundir>/state_dump`, then
 * `FILE ARG... -U` (default ARGs: `-N [-F <our pid file>]`) started with every descriptor the
 * stream names at that very number (Node cannot exec in place: `spawn` with a stdio array whose
 * index is the child's descriptor; xen-migration notes §5 verified that 4.17 needs nothing more).
 * `-e` adds variables to its environment (under refd: its LD_PRELOAD shim).
 *
 * What cxenstored gets: the tree and permissions, the special names' permissions, dom0's and
 * every guest's ring exactly as the take-over left them (guests released since are dropped), the
 * listening socket, each socket connection with its watches and unread input, and the `OK` to
 * this request in its connection's output: cxenstored sends it, so the client learns of success
 * from the daemon that now serves. Not carried (README): read-only socket connections and our
 * socket-based guests' connections (cxenstored has neither; they are closed), watch depths (4.17
 * has no WATCH_DATA_EXTENDED: such a watch becomes an unlimited one), quotas (cxenstored takes
 * them from its command line), open transactions (refused: the command waits for none to be open).
 *
 * Answers a reason (and serves on) when it cannot; on success it does not answer (cxenstored
 * does) and this process exits once cxenstored has read the state. The pid changes: the pid
 * file is cxenstored's to rewrite (`-F`), and systemd is told the new main pid.
 */
export class XenHandBack {
  private busy = false;
  /** The listening socket was bound by path again after a failed hand-back (see `run`). */
  private pathBound = false;

  constructor(private readonly options: HandBackOptions) {}

  async command(conn: Connection, header: Header, args: readonly string[]): Promise<string> {
    const env: Record<string, string> = {};
    let i = 0;
    for (; args[i] === '-e' && i + 1 < args.length; i += 2) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(args[i + 1]!);
      if (!m) return `hand-back: bad -e ${JSON.stringify(args[i + 1])}`;
      env[m[1]!] = m[2]!;
    }
    const file = args[i];
    if (file === undefined) return 'usage: hand-back [-e NAME=VALUE]... FILE [ARG...]';
    const rest = args.slice(i + 1);
    const carried = this.options.carried;
    // A 4.17 reader needs dom0's ring before any node (else it crashes) and the event channel
    // device with the rings' ports bound: only a take-over from cxenstored gave us both.
    if (carried === undefined || !carried.rings.some((r) => r.connection.end.kind === 'ring' && r.connection.end.domid === 0)) {
      return 'hand-back needs the state of a take-over from cxenstored (its event channel device and dom0\'s ring)';
    }
    try {
      accessSync(file, constants.X_OK);
    } catch {
      return `${file}: not executable`;
    }
    if (this.busy) return 'a hand-back is already under way';
    this.busy = true;
    const { daemon } = this.options;
    try {
      return await this.run(conn, header, file, rest.length > 0 ? rest : ['-N', ...(this.options.pidFile === undefined ? [] : ['-F', this.options.pidFile])], env, carried);
    } finally {
      this.busy = false;
      daemon.admit = undefined;
      for (const c of daemon.connections) {
        c.unsuspend();
        c.poll();
      }
    }
  }

  private stopAccepting(listeners: Listeners): void {
    if (!this.pathBound) return void listeners.servers.socket.close();
    const keep = `${listeners.socket}.hand-back`;
    try {
      rmSync(keep, { force: true });
      linkSync(listeners.socket, keep);
    } catch (e) {
      // Without the second name, stay open until exit rather than remove cxenstored's socket file.
      this.options.daemon.log.warn({ err: (e as Error).message }, 'hand-back: listening on until exit');
      return;
    }
    listeners.servers.socket.close();
    renameSync(keep, listeners.socket);
  }

  private async run(requester: Connection, header: Header, file: string, args: readonly string[], env: Record<string, string>, carried: XenCarried): Promise<string> {
    const { daemon, listeners } = this.options;
    const log = daemon.log;
    const open = [...daemon.connections].filter((c) => c.transactions.size > 0);
    if (open.length > 0) return `Open transactions on ${open.length} connection(s) (Xen's stream cannot carry them): retry later`;
    // Take no more requests; what is queued reaches the kernel, so that nothing is left in our buffers.
    daemon.admit = () => false;
    // The requester waits for this very request; anything else queued for it must go first too.
    const stuck = await drainOutput(daemon, Date.now() + FLUSH_MS, (c) => c !== requester && c.awaitingReply);
    if (stuck !== undefined) return `${stuck.length} connection(s) are not reading their replies`;

    // Synchronously from here to the spawn: nothing is read or accepted in between.
    const socketFd = descriptor(listeners.servers.socket);
    if (socketFd === undefined) return 'the listening socket has no descriptor';
    const fds = new Set<number>([socketFd, carried.evtchnFd]);
    const records: StateRecord[] = [{ type: 'global', socketFd, evtchnFd: carried.evtchnFd }];
    let connId = 0;
    // Rings first, dom0's first of all: 4.17 builds its tree when it restores dom0's ring.
    const rings = [...carried.rings]
      .filter((r) => r.connection.end.kind === 'ring' && (r.connection.end.domid === 0 || daemon.domains.has(r.connection.end.domid)))
      .sort((a, b) => (a.connection.end.kind === 'ring' && a.connection.end.domid === 0 ? -1 : b.connection.end.kind === 'ring' && b.connection.end.domid === 0 ? 1 : 0));
    for (const r of rings) {
      const id = ++connId;
      records.push({ ...r.connection, connId: id }, ...r.watches.map((w): WatchRecord => ({ ...w, connId: id })));
    }
    const passed: Connection[] = [];
    for (const c of daemon.connections) {
      const fd = c.netSocket === undefined ? undefined : descriptor(c.netSocket);
      if (c.kind !== 'socket' || c.state !== 'open' || fd === undefined) continue;
      c.suspend();
      passed.push(c);
      fds.add(fd);
      const id = ++connId;
      const output = c === requester ? okReply(header) : Buffer.alloc(0);
      records.push({ type: 'connection', connId: id, end: { kind: 'socket', fd }, input: c.unread(), output, partial: 0 });
      for (const w of daemon.watches.ownedBy(c)) records.push({ type: 'watch', connId: id, path: w.path, token: w.token });
    }
    const perms = (p: Perms) => p.map((e) => ({ access: e.access, ignore: false, domid: e.domid }));
    for (const name of ['@releaseDomain', '@introduceDomain'] as const) {
      records.push({ type: 'node', connId: 0, txId: 0, txAccess: 0, path: name, value: Buffer.alloc(0), perms: perms(daemon.store.special[name]) });
    }
    for (const n of toNodeList(daemon.store)) {
      records.push({ type: 'node', connId: 0, txId: 0, txAccess: 0, path: n.path, value: Buffer.from(n.value, 'latin1'), perms: perms(n.perms) });
    }
    const stateFile = join(daemon.options.rundir, XEN_STATE_FILE);
    let child: ChildProcess;
    try {
      rmSync(stateFile, { force: true });
      writeFileSync(stateFile, encodeStream({ version: 1, records }), { mode: 0o600, flag: 'wx' });
      // stdio[n] is the child's descriptor n: each at the number the stream names.
      const stdio: StdioOptions = Array.from({ length: Math.max(...fds) + 1 }, (_, n) => (fds.has(n) ? n : n === 1 || n === 2 ? 'inherit' : 'ignore'));
      child = process.getBuiltinModule('node:child_process').spawn(file, [...args, '-U'], { stdio, detached: true, env: { ...process.env, ...env, XENSTORED_RUNDIR: daemon.options.rundir } });
    } catch (e) {
      rmSync(stateFile, { force: true });
      return `could not start ${file}: ${(e as Error).message}`;
    }
    // Accepting is cxenstored's now (it holds the listening socket too): a connection we
    // accepted from here on would die with us. A socket we bound by path ourselves (after a
    // failed hand-back) is unlinked by libuv when closed, and the path is cxenstored's socket
    // file now: a second name keeps the file across the close and is renamed back at once.
    this.stopAccepting(listeners);
    let exited: string | undefined;
    child.once('exit', (code, signal) => (exited = signal ?? `exit code ${code}`));
    child.once('error', (e) => (exited = e.message));
    const deadline = Date.now() + READ_TIMEOUT_MS;
    while (existsSync(stateFile) && exited === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, POLL_MS));
    if (exited !== undefined || existsSync(stateFile)) {
      log.warn({ file, why: exited ?? 'timeout' }, 'hand-back: the program did not take over; serving on');
      child.kill('SIGKILL');
      rmSync(stateFile, { force: true });
      // Listen again: the socket file is ours once more (nobody answers on it).
      if (!listeners.servers.socket.listening) {
        this.pathBound = true;
        await listenUnix(listeners.servers.socket, listeners.socket).catch((e: unknown) => log.error({ err: (e as Error).message }, 'hand-back: could not listen again'));
      }
      return `${file} did not take over: ${exited ?? 'it did not read the state in time'}`;
    }
    log.info({ pid: child.pid, file, connections: passed.length, rings: rings.length }, 'hand-back: cxenstored serves; exiting');
    await Promise.resolve(this.options.handedOver?.(child.pid!)).catch(() => undefined);
    child.unref();
    // Without closing anything first: the sockets live on in cxenstored, and exit neither
    // shuts them down nor unlinks cxenstored's socket file (only socket_ro, which it lacks, goes).
    rmSync(listeners.socketRo, { force: true });
    process.exit(0);
  }
}

/** The `OK` reply to the hand-back request, as cxenstored will send it (`lu_write_response`). */
function okReply(h: Header): Buffer {
  const payload = Buffer.from('OK\0', 'latin1');
  const head = Buffer.alloc(HEADER_SIZE);
  encodeHeader(head, 0, { type: Op.CONTROL, reqId: h.reqId, txId: h.txId, len: payload.length });
  return Buffer.concat([head, payload]);
}
