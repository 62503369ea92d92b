import { closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import type { Log } from '../logger.js';
import { Op, replyPayload } from '../../protocol/index.js';
import { decodeSnapshot, DOM0, guest, History, type Caller, type Store } from '../../store/index.js';
import type { Connection } from '../connection/index.js';
import { Daemon, type DaemonOptions } from '../daemon.js';
import { listen, type Listeners } from '../transport/index.js';
import type { Quotas } from '../quotas/index.js';
import { AbortedTransaction } from './aborted-transaction.js';
import { BASE_FILE } from './handoff-file.js';
import { decodeHandoff, decodeHandoffState, storeOf } from './handoff-reader.js';
import { parseLate, type LateConnection } from './handoff-state.js';

/** Written by the process that serves after a live update, for whoever must signal it. */
export const PID_FILE = 'nxenstored.pid';

export interface TakeOverOptions {
  readonly log: Log;
  /** The quotas of the command line; the settings handed over (run-time changes) win. */
  readonly quotas: Quotas;
  readonly history?: DaemonOptions['history'];
  /** Transaction fairness and socket I/O, as the command line says (`DaemonOptions`). */
  readonly tuning?: Pick<DaemonOptions, 'fairness' | 'turnIdleMs' | 'requestIdleMs' | 'dropLogMs' | 'socketIo' | 'fdReserve' | 'diskBudget' | 'history' | 'historyLog'>;
  /** Persistence: opens the journal that goes on from the store handed over. */
  readonly journal?: ((store: Store) => Promise<DaemonOptions['journal']>) | undefined;
}

export interface TakenOver {
  readonly daemon: Daemon;
  /**
   * Says "ready" to the previous process and waits for its "go" (it exits then), then serves:
   * listens on the inherited sockets, answers the `live-update -s` request `OK`, and reads and
   * answers the requests that waited, in order.
   */
  serve(): Promise<Listeners>;
  /** The HTTP gateway's guest tokens of the previous process, to accept again. */
  readonly gatewayTokens: readonly (readonly [string, number])[];
  /** What the previous process carried from a take-over from cxenstored, if any. */
  readonly xen: { readonly evtchnFd: number; readonly rings: string } | undefined;
}

/**
 * `takeOver(file, options)` is live update's next-process side (see `live-updater.ts`): loads
 * the state file, adopts the inherited descriptors (listening sockets, domains' sockets, every
 * connection) and rebuilds connections, watches and quotas, taking no request yet. The bytes a
 * connection had sent and the previous process had not answered go into its decoder before
 * anything read from now on, so a request split across the update completes. Throws (and the
 * previous process serves on) when the state is unusable.
 */
export async function takeOver(file: string, options: TakeOverOptions): Promise<TakenOver> {
  const bytes = readFileSync(file);
  rmSync(file, { force: true });
  const first = decodeHandoffState(bytes);
  let state = first.state;
  let store: Store;
  let historyWindow: History | undefined;
  if (state.precopy !== true) store = storeOf(first);
  else {
    const baseFile = join(state.rundir, BASE_FILE);
    try {
      store = decodeSnapshot(readFileSync(baseFile));
    } finally {
      rmSync(baseFile, { force: true });
    }
    // Pre-copy (live-updater.ts): the previous process serves on while we load; the pause's
    // state is the delta since `store` and the connections as they are then. Those passed at the
    // spawn and closed since are closed here too: a descriptor we kept would hold them open.
    options.log.info({ from: state.pid, generation: store.generation }, 'live-update: pre-copied version loaded');
    const ahead = historyAhead(options, store);
    const spawned = state.connections.map((c) => c.fd);
    const finalFile = await pauseState();
    const final = decodeHandoff(readFileSync(finalFile), store);
    rmSync(finalFile, { force: true });
    ({ state, store } = final);
    historyWindow = ahead === undefined ? undefined : historyThen(ahead, options, store);
    const kept = new Set(state.connections.map((c) => c.fd));
    for (const fd of spawned) if (!kept.has(fd)) closeSync(fd);
  }
  options.quotas.apply(state.quotas);
  const daemon = new Daemon({
    rundir: state.rundir,
    log: options.log,
    quotas: options.quotas,
    accessLog: state.accessLog,
    history: options.history,
    ...options.tuning,
    historyWindow,
    store,
    journal: await options.journal?.(store),
  });
  daemon.stats.requests = state.stats.requests;
  Object.assign(daemon.stats.commits, state.stats.commits);
  daemon.stats.conflicts = state.stats.conflicts;
  // Nothing is taken until the previous process has gone: it could still serve on if we fail.
  daemon.admit = () => false;

  for (const d of state.domains) {
    const domain = daemon.domains.adopt(d.domid, d.mfn, d.port, d.features);
    domain.target = d.target;
  }
  // Until "go" we neither read nor accept: if we fail, the previous process serves on, and every
  // byte a client sent must still be in the kernel for it (or in the bytes it handed us).
  let serving = false;
  const connections: Connection[] = [];
  for (const c of state.connections) {
    const conn = adoptConnection(daemon, new Socket({ fd: c.fd, readable: true, writable: true }), c);
    conn.suspend();
    connections.push(conn);
  }
  // Connections the previous process accepted after it spawned us arrive over the IPC channel,
  // until it exits.
  const onLate = (m: unknown, handle: unknown) => {
    if (typeof m !== 'object' || m === null || (m as { type?: unknown }).type !== 'late') return;
    if (!(handle instanceof Socket)) return;
    try {
      const conn = adoptConnection(daemon, handle, parseLate((m as { connection?: unknown }).connection));
      if (!serving) conn.suspend();
      options.log.info({ conn: conn.id, kind: conn.kind }, 'live-update: adopted a connection accepted after the spawn');
    } catch (e) {
      options.log.error({ err: (e as Error).message }, 'live-update: a passed connection is unusable; closed');
      handle.destroy();
    }
  };
  process.on('message', onLate);
  process.once('disconnect', () => process.off('message', onLate));
  options.log.info(
    { from: state.pid, connections: connections.length, domains: state.domains.length, generation: store.generation },
    'live-update: state loaded',
  );

  return {
    daemon,
    gatewayTokens: state.gatewayTokens,
    xen: state.xen,
    serve: async () => {
      await handshake();
      serving = true;
      const listeners = await listen(daemon, state.rundir, state.listeners);
      for (const d of state.domains) daemon.domains.get(d.domid)?.server.listen({ fd: d.fd });
      const reply = state.reply;
      if (reply !== undefined) {
        connections[reply.connection]!.reply({ type: Op.CONTROL, reqId: reply.reqId, txId: reply.txId }, replyPayload.string('OK'));
      }
      daemon.admit = undefined;
      for (const conn of daemon.connections) {
        conn.unsuspend();
        conn.poll();
      }
      writeFileSync(join(state.rundir, PID_FILE), `${process.pid}\n`, { mode: 0o644 });
      options.log.info({ pid: process.pid, from: state.pid }, 'live-update: serving');
      return listeners;
    },
  };
}

/**
 * History's window up to the pre-copied version `base`, built from the records on disk while the
 * previous process still serves (persistence/history-log.ts `prepare`): the pause then copies only
 * the records written since (`historyThen`). Reading and copying a full default window in the
 * pause held every client ~0.19 s, then ~0.06 s (bench/RESULTS.md, "History"). Undefined when
 * there is no history on disk to read, or it does not reach `base` (the daemon then reads it all).
 */
function historyAhead(options: TakeOverOptions, base: Store): History | undefined {
  const log = options.tuning?.historyLog;
  const settings = options.tuning?.history ?? options.history;
  if (log?.prepare === undefined || settings?.records === 0) return undefined;
  try {
    const window = new History(base, settings, Date.now());
    const read = log.prepare(base, window.options.records);
    if (read === undefined) return undefined;
    window.restore(read.records, read.floorTime);
    return window;
  } catch (err) {
    options.log.warn({ err }, 'history: could not be read ahead; it is read in the pause');
    return undefined;
  }
}

/** `window` followed by the records written after its version up to `live`, or undefined when they do not join. */
function historyThen(window: History, options: TakeOverOptions, live: Store): History | undefined {
  let tail: Buffer[] | undefined;
  try {
    tail = options.tuning?.historyLog?.since?.(live);
    if (tail !== undefined) window.follow(tail, live);
  } catch (err) {
    options.log.warn({ err }, 'history: the records written since the pre-copy could not be read; all are read again');
    tail = undefined;
  }
  options.log.info({ generation: live.generation, records: tail?.length, readAhead: tail !== undefined }, 'history: records read back');
  return tail === undefined ? undefined : window;
}

/** Serves a connection handed over: who it acts as, its watches, aborted transactions, unread bytes. */
function adoptConnection(daemon: Daemon, socket: Socket, c: LateConnection): Connection {
  const conn = daemon.adopt(socket, c.kind, callerOf(daemon, c));
  for (const w of c.watches) daemon.watches.add({ owner: conn, ...w });
  const limits = daemon.quotas.limitsFor(conn.caller.domid);
  for (const id of c.aborted) conn.transactions.set(id, new AbortedTransaction(daemon.store, conn.caller, limits));
  conn.droppedEvents = c.droppedEvents;
  // Before any byte the socket delivers (that happens on a later turn of the event loop).
  conn.inject(Buffer.from(c.unread, 'base64'));
  return conn;
}

/** Who a connection acts as, rebuilt from its kind (and its domain's target, which SET_TARGET set). */
function callerOf(daemon: Daemon, c: LateConnection): Caller {
  switch (c.kind) {
    case 'socket':
      return DOM0;
    case 'socket_ro':
      return { domid: 0, privileged: true, readOnly: true };
    case 'domain': {
      const domain = daemon.domains.get(c.caller.domid);
      return guest(c.caller.domid, domain?.target, domain?.features);
    }
  }
}

/**
 * "loaded" to the previous process, then its "final" with the path of the pause's state. The
 * previous process going away before that is an error: we hold an older version than the one it
 * acknowledged writes on, so we must not serve (a restart recovers from the data directory).
 */
function pauseState(): Promise<string> {
  return new Promise((resolve, reject) => {
    if (process.send === undefined) return reject(new Error('live-update: a pre-copied state needs the IPC channel'));
    const onMessage = (m: unknown) => {
      if (typeof m !== 'object' || m === null || (m as { type?: unknown }).type !== 'final') return;
      const file = (m as { file?: unknown }).file;
      process.off('message', onMessage);
      process.off('disconnect', onGone);
      if (typeof file === 'string') resolve(file);
      else reject(new Error('live-update: a "final" message without a file'));
    };
    const onGone = () => {
      process.off('message', onMessage);
      process.off('disconnect', onGone);
      reject(new Error('live-update: the previous process went away during the pre-copy; not serving an older version'));
    };
    if (!process.connected) return onGone();
    process.on('message', onMessage);
    process.once('disconnect', onGone);
    // A channel that closes under the send is the same departure (not an 'error' event).
    process.send({ type: 'loaded', pid: process.pid }, undefined, {}, (e: Error | null) => {
      if (e !== null && e !== undefined) onGone();
    });
  });
}

/**
 * "ready" to the previous process, then its "go" (or its exit); at once without an IPC channel.
 * The channel stays open after "go" for the last passed connections; the previous process's exit
 * closes it.
 */
function handshake(): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) return resolve();
    const finish = () => {
      process.off('message', onMessage);
      process.off('disconnect', finish);
      resolve();
    };
    const onMessage = (m: unknown) => {
      if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'go') finish();
    };
    process.on('message', onMessage);
    process.once('disconnect', finish);
    process.send({ type: 'ready', pid: process.pid });
  });
}
