import type { ChildProcess } from 'node:child_process';
import { rmSync, statSync, writeFileSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { Op, type Header } from '../../protocol/index.js';
import type { Connection } from '../connection/index.js';
import type { Daemon } from '../daemon.js';
import { type Listeners, descriptor } from '../transport/index.js';
import { parseLiveUpdate } from './command.js';
import { deltaOf, encodeDelta, type Store } from '../../store/index.js';
import { encodeInSlices } from '../persistence/index.js';
import { BASE_FILE, encodeHandoff } from './handoff-file.js';
import type { ConnectionHandoff, HandoffState, LateConnection } from './handoff-state.js';
import { drainOutput } from './drain-output.js';

/**
 * The `-v` of `live-update -s` we answer to (xenstore-control's default when it sends none is
 * 1). Unchanged by the state file becoming a Xen stream (version 2, for DOMAIN_DATA's features):
 * its reader is our next process, not a C daemon, and version 1 cannot carry the feature bits.
 */
const LIVE_UPDATE_VERSION = 1;
/** The flag that tells the next process where the state is (`src/options.ts`). */
export const STATE_FLAG = '--live-update-state';
/** The state file, in the run directory (cxenstored: `<rundir>/state_dump`). */
export const STATE_FILE = 'live-update.state';
/** The pause's part of the state (pre-copy): what changed since STATE_FILE, in the run directory. */
export const FINAL_FILE = 'live-update.final';
/** How long the next process may take to load the state and say it is ready (or loaded). */
const READY_TIMEOUT_MS = 60_000;
/** However short `-t`, the replies already queued get this long to reach their clients. */
const MIN_FLUSH_MS = 5_000;
const POLL_MS = 5;

export interface LiveUpdaterOptions {
  readonly daemon: Daemon;
  readonly listeners: Listeners;
  /** The running program (the entry script run by `process.execPath`) and its arguments. */
  readonly script: string;
  readonly args: readonly string[];
  /** Node's own flags for the next process (`process.execArgv`). */
  readonly execArgv?: readonly string[];
  /** Variables the next process gets on top of ours (systemd's `NOTIFY_SOCKET`, which we consumed). */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Around the hand-over, for listeners that cannot be handed on (the HTTP gateway: its clients
   * have no descriptor we pass): `suspend` closes them just before the spawn, so that the next
   * process can listen on the same address, and says what of theirs the next process needs (the
   * gateway's guest tokens); `resume` reopens them if this process serves on.
   */
  readonly suspend?: () => Promise<Suspended | void>;
  readonly resume?: () => Promise<void>;
  /** Called with the next process's pid just before this one exits (systemd: `MAINPID=`). */
  readonly handedOver?: (pid: number) => void | Promise<void>;
  /**
   * What a take-over from cxenstored left to hand back (server/xen-migration/carried.ts): its
   * event channel descriptor goes to the next process at the spawn, with the sockets.
   */
  readonly xen?: () => { readonly evtchnFd: number; readonly rings: string } | undefined;
}

/** What the listeners closed by `suspend` hand to the next process. */
export interface Suspended {
  readonly gatewayTokens?: readonly (readonly [string, number])[];
}

interface Session {
  readonly conn: Connection;
  script: string;
  args: readonly string[] | undefined;
  cancelled: boolean;
  started: boolean;
  /** The new process has been spawned: too late to cancel. */
  spawned: boolean;
}

/**
 * Live update, the running process's side (Xen 4.15+ `xenstore-control live-update`): hands the
 * whole daemon to a fresh process of possibly new code, without clients noticing.
 *
 * 1. Wait for open transactions to end, up to `-t` seconds. Meanwhile new TRANSACTION_STARTs are
 *    left unread (cxenstored delays them the same way), every other request is served. After the
 *    wait, without `-F` the update fails and says which connections hold transactions; with `-F`
 *    it goes on and those transactions commit with EAGAIN in the next process. We do not carry
 *    transactions over: their versions T1/T2 are whole trees, and a client retries on EAGAIN.
 * 2. Stop taking requests (they stay unread in the connections' decoders), let queued replies and
 *    events reach the kernel, stop reading the sockets.
 * 3. Write what changed since the pre-copy (below) and tell the next process (IPC "final").
 * 4. The next process applies it, adopts the descriptors and says "ready"; we answer "go" and
 *    exit without shutting any socket down (the descriptors live on in the next process). It
 *    answers the `live-update -s` request `OK` and serves on.
 * Before 1, the pre-copy (issue 16), while we serve as usual: the version being served is
 * immutable, so it is encoded in slices of the event loop and written asynchronously to its own
 * file (`BASE_FILE`: tens of megabytes at 10⁶ nodes, which a synchronous write would make every
 * client wait for); then the state (a Xen state stream, `handoff-file.ts`, marked `precopy`,
 * without a tree) is written and the next process is spawned with every listening socket, domain
 * and connection as an inherited descriptor (child_process `stdio`) plus an IPC
 * channel. It starts, loads its code and that version, and says "loaded", reading nothing. The
 * pause (1 to 4) then passes only the delta since that version (`deltaOf`: what changed, not the
 * store) and each connection's state; connections accepted since the spawn go over the IPC
 * channel with their sockets, and a connection closed since is closed by the next process too.
 * If anything fails before "ready", the next process is killed, the state removed, and we serve on
 * as if nothing happened; the CONTROL reply says why. A next process whose parent goes away
 * before "final" exits without serving (it holds an older version): a restart recovers from the
 * data directory, which we kept writing all along.
 */
export class LiveUpdater {
  private session: Session | undefined;
  /** The spawned next process; `decided` once it is told to go (no way back). */
  private handover: { child: ChildProcess; decided: boolean } | undefined;

  constructor(private readonly options: LiveUpdaterOptions) {}

  /** CONTROL `live-update ARGS…`: the reply text (cxenstored replies `OK` or a reason, not errors). */
  command(conn: Connection, header: Header, args: readonly string[]): string | Promise<string> {
    const cmd = parseLiveUpdate(args);
    const s = this.session;
    switch (cmd.kind) {
      case 'abort':
        if (s === undefined) return 'No live-update session active.';
        if (s.spawned) return 'live-update already handing over.';
        if (s.started) {
          // Only the wait can be cancelled: the -s request then answers "Cancellation was requested".
          s.cancelled = true;
          return 'OK';
        }
        this.session = undefined;
        return 'OK';
      case 'file': {
        if (s !== undefined) return 'live-update session already active.';
        const script = resolve(cmd.file);
        try {
          if (!statSync(script).isFile()) return 'File not accessible.';
        } catch {
          return 'File not accessible.';
        }
        this.session = { conn, script, args: undefined, cancelled: false, started: false, spawned: false };
        return 'OK';
      }
      case 'cmdline':
        if (s === undefined || s.conn !== conn) return 'Not in live-update session.';
        s.args = cmd.cmdline.split(/[ \t]+/).filter((a) => a !== '');
        return 'OK';
      case 'start': {
        if (cmd.version !== LIVE_UPDATE_VERSION) return 'Migration stream version not supported.';
        if (s !== undefined && (s.conn !== conn || s.started)) return 'live-update session already active.';
        const session = s ?? { conn, script: this.options.script, args: undefined, cancelled: false, started: false, spawned: false };
        session.started = true;
        this.session = session;
        return this.run(session, header, cmd.force, cmd.timeoutSeconds * 1000).finally(() => {
          if (this.session === session) this.session = undefined;
        });
      }
    }
  }

  private async run(session: Session, header: Header, force: boolean, timeoutMs: number): Promise<string> {
    const { daemon } = this.options;
    const log = daemon.log;
    log.info({ conn: session.conn.id, force, timeoutMs, script: session.script }, 'live-update: start');
    let suspended = false;
    let spawned = false;
    let handedOn: Suspended | void = undefined;
    const file = join(daemon.options.rundir, STATE_FILE);
    const finalFile = join(daemon.options.rundir, FINAL_FILE);
    try {
      // 0. Pre-copy, serving as usual.
      const base = daemon.store;
      const baseFile = join(daemon.options.rundir, BASE_FILE);
      rmSync(baseFile, { force: true });
      try {
        await process.getBuiltinModule('node:fs/promises').writeFile(baseFile, await encodeInSlices(base), { mode: 0o600, flag: 'wx' });
      } catch (e) {
        rmSync(baseFile, { force: true });
        return this.failed(`could not write the pre-copy: ${(e as Error).message}`);
      }
      if (session.cancelled) {
        rmSync(baseFile, { force: true });
        return this.failed('Cancellation was requested');
      }
      let child: ChildProcess;
      let atSpawn: PrecopySpawn;
      try {
        spawned = true;
        ({ child, atSpawn } = this.spawnNext(session, file));
        this.handover = { child, decided: false };
      } catch (e) {
        rmSync(file, { force: true });
        rmSync(baseFile, { force: true });
        return this.failed(`could not start the new process: ${(e as Error).message}`);
      }
      const loaded = await message(child, 'loaded', READY_TIMEOUT_MS);
      if (loaded !== 'loaded' || session.cancelled) {
        child.kill('SIGKILL');
        this.handover = undefined;
        rmSync(file, { force: true });
        rmSync(baseFile, { force: true });
        return this.failed(session.cancelled && loaded === 'loaded' ? 'Cancellation was requested' : `the new process failed: ${loaded}`);
      }
      log.info({ next: child.pid, generation: base.generation }, 'live-update: the new process holds the pre-copied version');

      const deadline = Date.now() + timeoutMs;
      daemon.admit = (_c, type) => type !== Op.TRANSACTION_START;
      // 1. Open transactions end; requests that wait on I/O (INTRODUCE) finish.
      for (;;) {
        if (session.cancelled) return this.abandon(child, 'Cancellation was requested');
        if (session.conn.state === 'closed') return this.abandon(child, 'the requesting connection closed');
        const open = [...daemon.connections].filter((c) => c.transactions.size > 0);
        const busy = [...daemon.connections].filter((c) => c !== session.conn && c.awaitingReply);
        if (open.length === 0 && busy.length === 0) break;
        if (Date.now() >= deadline) {
          if (busy.length > 0) return this.abandon(child, `requests still in progress on ${busy.length} connection(s)`);
          if (!force) return this.abandon(child, describeTransactions(open));
          log.warn({ connections: open.map((c) => c.id) }, 'live-update: forced; open transactions will fail with EAGAIN');
          break;
        }
        await sleep(POLL_MS);
      }

      // 2. Take no more requests; queued output reaches the kernel.
      daemon.admit = () => false;
      const stuck = await drainOutput(daemon, Math.max(deadline, Date.now() + MIN_FLUSH_MS));
      if (stuck !== undefined) {
        return this.abandon(child, `${stuck.length} connection(s) are not reading their replies (${stuck.map((c) => c.id).join(' ')})`);
      }
      if (session.cancelled) return this.abandon(child, 'Cancellation was requested');
      if (this.options.suspend !== undefined) {
        suspended = true;
        handedOn = await this.options.suspend();
      }

      // 3. Synchronously, so that nothing moves in between: stop reading, record what changed.
      const passed = new Set<Connection>();
      try {
        session.spawned = true;
        this.final(session, header, finalFile, force, base, atSpawn, passed, handedOn ?? {});
        child.send({ type: 'final', file: finalFile });
      } catch (e) {
        rmSync(finalFile, { force: true });
        return this.abandon(child, `could not hand over: ${(e as Error).message}`);
      }

      // 4. Ready, or not.
      let outcome = await message(child, 'ready', READY_TIMEOUT_MS);
      if (outcome === 'ready') {
        // Connections accepted since the spawn (we still listen) go over the IPC channel.
        outcome = await forwardLate(daemon, child, passed).then(
          () => 'ready',
          (e: unknown) => `could not pass a connection: ${(e as Error).message}`,
        );
      }
      if (outcome === 'ready' && session.cancelled) outcome = 'this process is stopping';
      if (outcome !== 'ready') {
        rmSync(finalFile, { force: true });
        return this.abandon(child, `the new process failed: ${outcome}`);
      }
      this.handover.decided = true;
      log.info({ pid: child.pid }, 'live-update: the new process serves; exiting');
      // Past this point we no longer serve on: the new process is told to go whatever happens.
      await Promise.resolve(this.options.handedOver?.(child.pid!)).catch((e: unknown) =>
        log.warn({ err: (e as Error).message }, 'live-update: could not tell the service manager'),
      );
      // Exit without closing anything: every descriptor lives on in the new process, and
      // process.exit neither shuts sockets down nor unlinks socket files. We listen until the
      // end, so what we accepted meanwhile goes over too; exit follows the last check at once.
      child.send({ type: 'go' }, () => {
        const exit = () => process.exit(0);
        forwardLate(daemon, child, passed).then(exit, exit);
      });
      return await new Promise<string>(() => {});
    } finally {
      // Reached only when this process serves on.
      daemon.admit = undefined;
      for (const c of daemon.connections) {
        c.unsuspend();
        c.poll();
      }
      // A next process spawned at all may have taken the data directory's lock.
      if (suspended || spawned) {
        await this.options.resume?.().catch((e: unknown) => log.error({ err: (e as Error).message }, 'live-update: could not reopen the gateway'));
      }
    }
  }

  /**
   * `stopping()`, when a stop signal arrives: a hand-over not yet decided is abandoned (the new
   * process is killed and this one stops as usual). True when it is decided: the new process is
   * the daemon now and this one exits by itself; it must not close or unlink anything it serves.
   */
  stopping(): boolean {
    const h = this.handover;
    if (h === undefined) return false;
    if (h.decided) return true;
    if (this.session !== undefined) this.session.cancelled = true;
    h.child.kill('SIGKILL');
    return false;
  }

  /** Kills a next process that will not serve, removes its state, and says why we serve on. */
  private abandon(child: ChildProcess, reason: string): string {
    child.kill('SIGKILL');
    this.handover = undefined;
    rmSync(join(this.options.daemon.options.rundir, STATE_FILE), { force: true });
    rmSync(join(this.options.daemon.options.rundir, BASE_FILE), { force: true });
    return this.failed(reason);
  }

  private failed(reason: string): string {
    this.options.daemon.log.warn({ reason }, 'live-update: failed; serving on');
    return reason;
  }

  /**
   * The pre-copy's spawn: writes the state (marked `precopy`; the store is in `BASE_FILE`) and
   * spawns the next process with every socket as a descriptor, in one synchronous step so that
   * no descriptor number changes meaning in between. Connections are passed but not suspended:
   * we serve them until the pause.
   */
  private spawnNext(session: Session, file: string): { child: ChildProcess; atSpawn: PrecopySpawn } {
    const { daemon, listeners } = this.options;
    const fds: number[] = [];
    // The child's stdio: 0 nothing, 1 and 2 our own (the log goes where it went), 3 the IPC
    // channel, then the sockets: index i in this array is descriptor i in the child.
    const FIRST = 4;
    const pass = (fd: number): number => fds.push(fd) - 1 + FIRST;

    const connections: ConnectionHandoff[] = [];
    const conns = new Map<Connection, number>();
    const xen = this.options.xen?.();
    for (const conn of daemon.connections) {
      // Gateway clients (HTTP, WebSocket) have no descriptor to hand on: the gateway is closed
      // before the pause and the next process listens again (README, Live update).
      const socket = conn.netSocket;
      const fd = socket === undefined ? undefined : descriptor(socket);
      if (conn.state !== 'open' || fd === undefined) continue;
      const childFd = pass(fd);
      conns.set(conn, childFd);
      connections.push({ fd: childFd, ...describe(daemon, conn, false) });
    }
    const state: HandoffState = {
      ...this.common(daemon, {}),
      precopy: true,
      listeners: { socket: pass(required(listeners.servers.socket)), socketRo: pass(required(listeners.servers.socketRo)) },
      domains: [...daemon.domains.all()].map((d) => ({ domid: d.domid, mfn: d.mfn, port: d.port, target: d.target, features: d.features, fd: pass(required(d.server)) })),
      connections,
      xen: xen === undefined ? undefined : { evtchnFd: xen.evtchnFd < 0 ? -1 : pass(xen.evtchnFd), rings: xen.rings },
    };
    rmSync(file, { force: true });
    writeFileSync(file, encodeHandoff(state, undefined), { mode: 0o600, flag: 'wx' });
    const args = [...(this.options.execArgv ?? []), session.script, ...withoutStateFlag(session.args ?? this.options.args), STATE_FLAG, file];
    // Taken when a live update runs: a start need not load child_process (issue 16).
    const child = process.getBuiltinModule('node:child_process').spawn(process.execPath, args, {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...fds],
      env: { ...withoutActivation(process.env), ...this.options.env },
    });
    // `next`, not `pid`: the log's own pid field is this process's.
    daemon.log.info({ next: child.pid, connections: connections.length, domains: state.domains.length }, 'live-update: new process spawned (pre-copy)');
    return { child, atSpawn: { conns, listeners: state.listeners, domains: state.domains, xen: state.xen } };
  }

  /**
   * The pause's part: suspends every connection passed at the spawn that is still open, and
   * writes their state, the settings and the delta since the pre-copied version to `file`.
   * Throws when what cannot change by message did change (a domain introduced or released).
   */
  private final(
    session: Session,
    header: Header,
    file: string,
    force: boolean,
    base: Store,
    atSpawn: PrecopySpawn,
    passed: Set<Connection>,
    handedOn: Suspended,
  ): void {
    const { daemon } = this.options;
    // The next process reads history's records written since its pre-copy: all of them, up to the store handed over.
    daemon.writeHistory();
    const domains = [...daemon.domains.all()];
    const same = domains.length === atSpawn.domains.length && domains.every((d, i) => d.domid === atSpawn.domains[i]!.domid);
    if (!same) throw new Error('domains were introduced or released during the pre-copy; retry');
    const connections: ConnectionHandoff[] = [];
    let reply: HandoffState['reply'];
    for (const [conn, fd] of atSpawn.conns) {
      if (conn.state !== 'open') continue;
      conn.suspend();
      passed.add(conn);
      if (conn === session.conn) reply = { connection: connections.length, reqId: header.reqId, txId: header.txId };
      connections.push({ fd, ...describe(daemon, conn, force) });
    }
    if (reply === undefined) throw new Error('the requesting connection closed');
    const state: HandoffState = {
      ...this.common(daemon, handedOn),
      base: base.generation,
      listeners: atSpawn.listeners,
      domains: domains.map((d, i) => ({ domid: d.domid, mfn: d.mfn, port: d.port, target: d.target, features: d.features, fd: atSpawn.domains[i]!.fd })),
      connections,
      reply,
      xen: atSpawn.xen,
    };
    const delta = daemon.store === base ? Buffer.alloc(0) : encodeDelta(deltaOf(base, daemon.store));
    rmSync(file, { force: true });
    writeFileSync(file, encodeHandoff(state, { form: 'delta', bytes: delta }), { mode: 0o600, flag: 'wx' });
  }

  /** The parts of the state that are not descriptors. */
  private common(daemon: Daemon, handedOn: Suspended) {
    return {
      pid: process.pid,
      rundir: daemon.options.rundir,
      quotas: plainQuotas(daemon),
      accessLog: daemon.options.accessLog,
      stats: daemon.stats,
      gatewayTokens: (handedOn.gatewayTokens ?? []).map(([token, domid]) => [token, domid] as [string, number]),
    };
  }
}

/** What the pre-copy's spawn passed: each connection's descriptor number in the next process. */
interface PrecopySpawn {
  readonly conns: ReadonlyMap<Connection, number>;
  readonly listeners: HandoffState['listeners'];
  readonly domains: HandoffState['domains'];
  readonly xen: HandoffState['xen'];
}

function plainQuotas(daemon: Daemon): HandoffState['quotas'] {
  const q = daemon.quotas.settings();
  return { global: { ...q.global }, domains: q.domains.map(([domid, o]) => [domid, { ...o }]) };
}

/** A connection as the next process needs it, but for its descriptor. */
function describe(daemon: Daemon, conn: Connection, force: boolean): LateConnection {
  // Only Unix-socket connections are handed over (the callers check `netSocket`).
  if (conn.kind !== 'socket' && conn.kind !== 'socket_ro' && conn.kind !== 'domain') throw new Error(`a ${conn.kind} connection has no descriptor to hand over`);
  return {
    kind: conn.kind,
    caller: { ...conn.caller },
    watches: daemon.watches.ownedBy(conn).map((w) => ({ path: w.path, canonical: w.canonical, token: w.token, relative: w.relative, depth: w.depth })),
    aborted: force ? [...conn.transactions.keys()] : [],
    unread: conn.unread().toString('base64'),
    droppedEvents: conn.droppedEvents,
  };
}

/**
 * Passes the connections accepted after the spawn (not in `passed`) to the child, one IPC message
 * each with the socket as its handle, until none is left. They never took a request (`admit`
 * said no), so what they are is their kind, caller and unread bytes.
 */
async function forwardLate(daemon: Daemon, child: ChildProcess, passed: Set<Connection>): Promise<void> {
  for (;;) {
    const late = [...daemon.connections].find((c) => !passed.has(c) && c.state === 'open' && c.netSocket !== undefined);
    if (late === undefined) return;
    passed.add(late);
    late.suspend();
    const message = { type: 'late', connection: describe(daemon, late, false) };
    await new Promise<void>((ok, fail) => {
      child.send(message, late.netSocket, (e) => (e === null || e === undefined ? ok() : fail(e)));
    });
  }
}

/** Waits for the child's message of `type`; anything else is the reason it is not coming. */
function message(child: ChildProcess, type: 'loaded' | 'ready', timeoutMs: number): Promise<string> {
  return new Promise((resolveOutcome) => {
    const done = (outcome: string) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.off('error', onError);
      resolveOutcome(outcome);
    };
    const onMessage = (m: unknown) => {
      if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type) done(type);
    };
    const onExit = (code: number | null, signal: string | null) => done(`exited (code ${code}, signal ${signal})`);
    const onError = (e: Error) => done(e.message);
    const timer = setTimeout(() => done(`not ${type} within ${timeoutMs / 1000} s`), timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

function describeTransactions(open: readonly Connection[]): string {
  const lines = open.map((c) => `connection ${c.id} (domain ${c.caller.domid}): ${c.transactions.size} open`);
  return ['Open transactions (retry later, or use -F to fail them with EAGAIN):', ...lines].join('\n');
}


function required(x: Socket | Server): number {
  const fd = descriptor(x);
  if (fd === undefined) throw new Error('a listening socket has no descriptor');
  return fd;
}

/** The arguments without a previous update's state flag (the next process gets its own). */
function withoutStateFlag(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === STATE_FLAG) i++;
    else if (!args[i]!.startsWith(`${STATE_FLAG}=`)) out.push(args[i]!);
  }
  return out;
}

/** systemd's activation variables describe our descriptors, not the child's: drop them. */
function withoutActivation(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const k of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) delete out[k];
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
