/**
 * nxenstored: the xenstore daemon. Wiring only: options, store, listeners, signals. Loaded by the
 * executable (nxenstored.ts) once the runtime is checked and the compile cache is on.
 */
import { withDaemonFlags } from './node-flags.js';
import { flushCompileCache, runtimeWarning } from './node-line.js';
import { chooseRundir, createLogger, Daemon, listen, prepareRundir, Quotas, socketIoMode, startGateway } from '../server/index.js';
import { LiveUpdater, takeOver, type TakenOver } from '../server/live-update/index.js';
import { decodeCarried, encodeCarried, takeOverFromXen, XenHandBack, type XenTakenOver } from '../server/xen-migration/index.js';
import { HistoryLog, Journal, lockDataDir, recover } from '../server/persistence/index.js';
import { createNotifier, idleExitTimer, takeActivation } from '../server/systemd/index.js';
import type { Store } from '../store/index.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseOptions, USAGE } from './options.js';

/** How long after ready the log is written (see there). */
const LOG_AFTER_READY_MS = 100;

async function main(): Promise<void> {
  let config;
  try {
    config = parseOptions(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`nxenstored: ${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (config === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const log = createLogger(config.logFormat, config.logLevel);
  if (runtimeWarning !== undefined) log.warn(runtimeWarning);
  // Both read and clear their variables first, so that no child process inherits them.
  const activation = takeActivation();
  // Live update hands the manager's socket to the next process, which notifies once it is main.
  const notifySocket = process.env['NOTIFY_SOCKET'];
  const notifier = createNotifier((msg) => log.warn(msg));
  for (const u of activation?.unused ?? []) log.warn({ fd: u.fd, name: u.name }, 'inherited socket not used');
  const rundir = chooseRundir(config.rundir);
  prepareRundir(rundir);

  // Persistence: the store comes back from the data directory before any client is served.
  let journal: Journal | undefined;
  let store: Store | undefined;
  const quotas = new Quotas(config.limits);
  // One daemon per data directory; a live update's next process takes it from its parent.
  const dataDir = config.dataDir;
  let unlock = dataDir === undefined ? undefined : lockDataDir(dataDir, config.liveUpdateState === undefined ? undefined : process.ppid);
  // History segments beside the log (issue 14); without --data-dir history is memory only.
  // `--history-records 0`: no history, so nothing is written there (segments left by an earlier
  // run stay until a run with history prunes them).
  const historyLog = dataDir === undefined || config.history.records === 0 ? undefined : new HistoryLog(dataDir, config.historyRetention, log);
  historyLog?.prune(config.liveUpdateState !== undefined);
  if (config.liveUpdateState === undefined) historyLog?.dropEmpty();
  const tuning = {
    fairness: config.fairness,
    turnIdleMs: config.turnIdleMs,
    requestIdleMs: config.requestIdleMs,
    dropLogMs: config.dropLogMs,
    socketIo: config.socketIo,
    fdReserve: config.fdReserve,
    diskBudget: config.diskBudget,
    history: config.history,
    historyLog,
  };
  // Live update: store, quotas, domains, connections and sockets come from the previous process.
  let handoff: TakenOver | undefined;
  // cxenstored's live update exec'd us in its place (`-U`): its state and descriptors are ours.
  let fromXen: XenTakenOver | undefined;
  if (config.xenTakeOver) {
    if (config.liveUpdateState !== undefined || config.dataDir !== undefined) throw new Error('-U (take over from cxenstored) goes with neither --live-update-state nor --data-dir');
    fromXen = await takeOverFromXen({ log, rundir, quotas, tuning, pidFile: config.pidFile });
  } else if (config.liveUpdateState !== undefined) {
    handoff = await takeOver(config.liveUpdateState, {
      log,
      quotas,
      tuning,
      // The log goes on in a segment after the store handed over, as after a restart.
      journal: dataDir === undefined ? undefined : async (s) => (journal = await Journal.open({ dir: dataDir, sync: config.sync, compactAfter: config.compactAfter, log }, s)),
    });
  } else if (config.dataDir !== undefined) {
    // Not `performance.now()`: the global `performance` loads perf_hooks (~1.3 ms of a cold start
    // on Node 22 and 24, issue 16).
    const t0 = process.hrtime.bigint();
    const recovery = recover(config.dataDir);
    for (const w of recovery.warnings) log.warn({ dataDir: config.dataDir }, w);
    store = recovery.store;
    journal = await Journal.open({ dir: config.dataDir, sync: config.sync, compactAfter: config.compactAfter, log }, store);
    const ms = Math.round(Number(process.hrtime.bigint() - t0) / 1e6);
    log.info({ dataDir: config.dataDir, generation: store.generation, from: recovery.snapshot, replayed: recovery.replayed, ms }, 'store recovered');
  }
  // A start reads history on disk back once its first clients are answered (below): ~0.2 s of a
  // full default window that a socket-activated start's first client would otherwise wait for.
  const daemon = handoff?.daemon ?? fromXen?.daemon ?? new Daemon({ rundir, log, quotas, accessLog: config.accessLog, store, journal, ...tuning, historyReadLater: true });
  const listeners =
    handoff !== undefined ? await handoff.serve() : fromXen !== undefined ? await fromXen.serve() : await listen(daemon, rundir, activation);
  if (fromXen === undefined && config.pidFile !== undefined) writeFileSync(config.pidFile, `${process.pid}\n`);
  // The gateway's clients (HTTP, WebSocket) are not handed over by a live update: it closes the
  // gateway just before the spawn, and the next process listens again, with the same privileged
  // token and the guest tokens the previous process had issued (README, Live update).
  const http = config.http === undefined ? undefined : { address: config.http, anonymous: config.httpAnonymous, connections: config.httpConnections };
  const tokenFile = join(rundir, 'http-token');
  let gateway: Awaited<ReturnType<typeof startGateway>> | undefined;
  if (http !== undefined && handoff === undefined) gateway = await startGateway(daemon, http, rundir);
  else if (http !== undefined) {
    // We already serve every client of the previous process: a gateway that cannot listen again
    // must not take the daemon down with it.
    gateway = await startGateway(daemon, http, rundir, readToken(tokenFile), handoff?.gatewayTokens).catch((e: unknown) => {
      log.error({ err: (e as Error).message }, 'live-update: the HTTP gateway could not listen again');
      return undefined;
    });
  }
  // What a take-over from cxenstored left to hand back: from it, or from our previous process.
  const carried = fromXen?.carried ?? (handoff?.xen === undefined ? undefined : decodeCarried(handoff.xen));
  let suspendedTokens: [string, number][] | undefined;
  daemon.liveUpdate = new LiveUpdater({
    suspend: async () => {
      // Kept for `resume` too: a failed update must not cost the guests their tokens.
      suspendedTokens = gateway?.guestTokens();
      await gateway?.close();
      gateway = undefined;
      return { gatewayTokens: suspendedTokens };
    },
    resume: async () => {
      // A next process that failed may have taken the data directory's lock before it died.
      if (dataDir !== undefined) {
        try {
          unlock = lockDataDir(dataDir);
        } catch (e) {
          log.warn({ err: (e as Error).message }, 'live-update: could not take the data directory lock back');
        }
      }
      if (http !== undefined && gateway === undefined) gateway = await startGateway(daemon, http, rundir, readToken(tokenFile), suspendedTokens);
    },
    daemon,
    listeners,
    script: process.argv[1]!,
    // Our own live update's next process takes over from us, not from cxenstored's state again.
    args: process.argv.slice(2).filter((a) => a !== '-U' && a !== '--live-update'),
    // The next process runs with the daemon's V8 options even if this one was started without them.
    execArgv: withDaemonFlags(process.execArgv),
    env: notifySocket === undefined ? {} : { NOTIFY_SOCKET: notifySocket },
    handedOver: (pid) => {
      notifier.mainPid(pid);
      return notifier.settled();
    },
    xen: () => (carried === undefined ? undefined : encodeCarried(carried)),
  });
  daemon.handBack = new XenHandBack({
    daemon,
    listeners,
    carried,
    pidFile: config.pidFile,
    handedOver: (pid) => {
      notifier.mainPid(pid);
      return notifier.settled();
    },
  });
  // The per-domain node counts add up to the tree's size: no walk of the tree.
  const status = () => `serving ${[...daemon.store.quota.values()].reduce((a, b) => a + b, 0)} nodes, generation ${daemon.store.generation}`;
  const fds = { limit: daemon.descriptors.limit, reserve: daemon.descriptors.reserve };
  log.info(
    { rundir, socket: listeners.socket, socket_ro: listeners.socketRo, pid: process.pid, activated: activation !== undefined, node: process.version, socketIo: socketIoMode(config.socketIo), fds },
    'ready',
  );
  log.info(`clients: export XENSTORED_PATH=${listeners.socket}`);
  // The gateway is a listener too: it accepts before we say we are ready.
  // sd_notify(3): only now is the store loaded and every listener accepting.
  notifier.ready(status());
  // Everything a start loads is compiled by now: keep it for the next start even if this process
  // never exits normally. Not before the first request, which may already be waiting (socket
  // activation): a check callback runs after the poll phase that reads it.
  setImmediate(flushCompileCache);
  // A moment later, once a socket-activated start's first client has had its reply: the log's
  // pino is made and what was logged so far written (server/logger.ts, issue 16), and history on
  // disk is read back (history queries wait for it: Daemon `historyReady`).
  setTimeout(() => {
    daemon.readHistoryBack();
    log.load();
  }, LOG_AFTER_READY_MS).unref();

  let stopping = false;
  const stop = (why: string) => {
    if (stopping) return;
    // Mid live update: a decided hand-over means the new process serves these very sockets.
    if (daemon.liveUpdate?.stopping() === true) return void log.info({ why }, 'stop ignored: the new process serves');
    stopping = true;
    log.info({ why }, 'stopping');
    notifier.stopping(`stopping (${why})`);
    daemon.shutdown();
    void Promise.all([listeners.close(), gateway?.close()])
      .then(() => historyLog?.close())
      .then(() => journal?.close(daemon.store))
      .then(() => unlock?.())
      .then(() => notifier.settled())
      .then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // SIGHUP, systemd's ExecReload: nothing on the command line can change at run time (quotas
  // and the access log are set with xenstore-control), so a reload compacts the data directory:
  // a snapshot, and the log segments it makes unnecessary dropped.
  process.on('SIGHUP', () => {
    notifier.reloading();
    log.info('reload (SIGHUP): snapshot and log truncation');
    void (journal?.requestSnapshot(daemon.store) ?? Promise.resolve()).then(() => notifier.ready(status()));
  });
  if (config.idleExit !== undefined) idleExitTimer(daemon, config.idleExit, () => stop(`idle for ${config.idleExit}s`));
}

/** The privileged gateway token a predecessor wrote, if it is there and well formed. */
function readToken(file: string): string | undefined {
  try {
    const token = readFileSync(file, 'latin1').trim();
    return /^[A-Za-z0-9_-]{16,}$/.test(token) ? token : undefined;
  } catch {
    return undefined;
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`nxenstored: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
