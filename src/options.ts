import type { Limits } from '../store/index.js';
import { COMPACT_AFTER_DEFAULT, HISTORY_RETENTION_DEFAULT, SYNC_MODES, type HistoryRetention, type SyncMode } from '../server/persistence/index.js';
import { DISK_BUDGET_DEFAULT, type DiskBudgetOptions } from '../server/quotas/index.js';
import {
  ANONYMOUS_ACCESS,
  parseListenAddress,
  QUOTA_NAMES,
  SOCKET_IO,
  type AnonymousAccess,
  type ListenAddress,
  type LogFormat,
  type SocketIo,
} from '../server/index.js';

export interface DaemonConfig {
  readonly rundir: string | undefined;
  readonly logFormat: LogFormat;
  readonly logLevel: string;
  readonly accessLog: boolean;
  readonly fairness: boolean;
  readonly turnIdleMs: number | undefined;
  /** A half-received request's wait for its next byte (0: forever), and the dropped-events log interval. */
  readonly requestIdleMs: number | undefined;
  readonly dropLogMs: number | undefined;
  readonly limits: Partial<Limits>;
  /** Persistence: the data directory (off when undefined), the sync mode, idle exit in seconds. */
  readonly dataDir: string | undefined;
  readonly sync: SyncMode;
  readonly idleExit: number | undefined;
  /** Per-guest log budget (server/quotas/disk-budget.ts) and the compaction trigger, in bytes. */
  readonly diskBudget: DiskBudgetOptions;
  readonly compactAfter: number;
  /** Live update: started by the previous process, which left its state in this file. */
  readonly liveUpdateState: string | undefined;
  /** Where the HTTP/WebSocket gateway listens; off when undefined. */
  readonly http: ListenAddress | undefined;
  /** What a gateway client without a token may do: nothing (default) or read as a guest would. */
  readonly httpAnonymous: AnonymousAccess;
  /** Connections the gateway holds at once (server/transport/descriptor-reserve.ts); undefined: the default. */
  readonly httpConnections: number | undefined;
  /** How Unix-socket clients are read and written (server/transport/socket-transport.ts). */
  readonly socketIo: SocketIo;
  /** Descriptors never given to guests (server/transport/descriptor-reserve.ts); undefined: the default. */
  readonly fdReserve: number | undefined;
  /** The history window (store/history.ts): records and bytes kept at most; undefined: the defaults. */
  readonly history: { readonly records?: number; readonly bytes?: number };
  /** With --data-dir: how long and how many bytes of history segments are kept on disk. */
  readonly historyRetention: HistoryRetention;
  /** cxenstored's `-U`: exec'd by its live update, take over from `<rundir>/state_dump`. */
  readonly xenTakeOver: boolean;
  /** cxenstored's `-F FILE`: write our pid there once serving. */
  readonly pidFile: string | undefined;
}

export const USAGE = `usage: nxenstored [options]

  --rundir DIR          run directory for socket, socket_ro and domains/<domid>/socket
                        (default: $XENSTORED_RUNDIR, /run/xenstored if writable,
                        $XDG_RUNTIME_DIR/xenstored, else ./run/xenstored)
  --log-format FORMAT   pretty (default) or json
  --log-level LEVEL     trace, debug, info (default), warn, error
  --access-log          log every request and its outcome (like oxenstored's access log)
  --no-fairness         commit transactions first come, first served (no turn for a
                        transaction that keeps failing; for comparison only)
  --turn-idle-ms MS     a transaction holding the turn that makes no progress for MS while
                        others wait for it gives the turn up (default 250)
  --request-idle-ms MS  close a connection whose request stays half-sent with no byte
                        for MS (default 30000; 0 = never); slow senders are not affected.
                        A gateway HTTP connection that sends nothing for MS is closed too
  --drop-log-ms MS      log the watch events dropped for each connection (a watcher not
                        reading, an event too large) as one line per MS (default 10000),
                        and the connections closed by --request-idle-ms as one line per MS
  --quota NAME=VALUE    set a quota (repeatable; 0 = unlimited); names: ${Object.keys(QUOTA_NAMES).join(', ')}
  --data-dir DIR        keep the store in DIR (write-ahead log + snapshots); it survives
                        restarts and crashes. Without it the store lives in memory only
  --sync MODE           with --data-dir: always (default: replies wait for fdatasync, one
                        per batch), batch (replies wait for write(2); fsync every second),
                        none (nothing waits)
  --log-rate BYTES      with --data-dir: each guest may add BYTES a second to the log
                        (default 64K; K, M, G suffixes; 0 = unlimited); a guest over
                        it is slowed (its requests are not read until it is within it)
  --log-burst BYTES     with --data-dir: what a guest may write at once after a quiet
                        spell (default 1M)
  --compact-after BYTES with --data-dir: snapshot once the log since the last snapshot
                        exceeds BYTES and the snapshot's size (default 8M)
  --idle-exit SECONDS   with --data-dir: exit after SECONDS without a request or a new
                        connection, while no client holds a watch or a transaction
                        (for socket activation: systemd starts us again on demand)
  --live-update-state FILE
                        (internal) started by a live update: take over from the process
                        that left its state in FILE (see CONTROL live-update)
  --http ADDR           start the HTTP/WebSocket gateway on HOST:PORT (host defaults to
                        127.0.0.1; port 0 picks one) or unix:/path; writes <rundir>/http-token
                        and <rundir>/http-address. Every client needs a token (401 without)
  --http-anonymous MODE with --http: what a client without a token may do: none (default)
                        or read: only nodes every domain may read, as an unprivileged domain
                        with no grants; never write, watch events filtered the same way
  --http-connections N  with --http: HTTP and WebSocket connections held at once; more are
                        closed at once (default: 256, or a quarter of the descriptors outside
                        --fd-reserve when that is lower). Taken from the guests' descriptors,
                        never from the reserve
  --socket-io MODE      direct (default): read and write Unix-socket clients below Node's
                        streams, where this Node allows it; stream: through net.Socket
  --fd-reserve N        file descriptors guests may never take, kept for dom0's socket,
                        socket_ro (a quarter of them at most) and domain introduction (default:
                        256, or a quarter of \`ulimit -n\` when that is lower)
  --history-records N   commits the history keeps in memory (default 200000: an hour of a
                        host making 50 commits a second); queries older than that are refused;
                        0 keeps no history (writes cost less; CONTROL history answers ENOSYS)
  --history-bytes B     bytes of history kept in memory at most (K, M or G; default 64M)
  --history-retention-age AGE    with --data-dir: history segments on disk are kept this long
                        (Ns, Nm, Nh or Nd; default 7d)
  --history-retention-bytes B    with --data-dir: and take this many bytes at most (default 256M)
  -h, --help            this text

cxenstored's options, so that its live update can exec us in its place
(xenstore-control live-update -f <nxenstored>, see README):
  -U, --live-update     take over from cxenstored: load <rundir>/state_dump (Xen's
                        migration stream) and serve its clients on the descriptors it left
  -F, --pid-file FILE   write our pid to FILE
  -N, --no-fork         accepted (we never fork)
  -E, --entry-nb N      quota nodes;  -S, --entry-size N  quota node-size
  -W, --watch-nb N      quota watches;  -t, --transaction N  quota transactions
  -A, --perm-nb N       quota node-permissions;  -M, --path-max N  quota path-max
  -Q, --quota NAME=N    a quota by Xen name (nodes, watches, outstanding, memory, ...)
  -T, --trace-file F, -V, --verbose, -R, --no-recovery, -K, --keep-orphans,
  -D, --no-domain-init, -P, --output-pid   accepted and ignored (logged)
`;

/** cxenstored's quota options (`xenstored_core.c` `main`): option name -> Xen quota name. */
const XEN_QUOTA_FLAGS = { 'entry-nb': 'nodes', 'entry-size': 'node-size', 'watch-nb': 'watches', transaction: 'transactions', 'perm-nb': 'node-permissions', 'path-max': 'path-max' } as const;

/** `parseOptions(argv)` reads the command line; throws an Error with a message for bad input. */
export function parseOptions(argv: string[]): DaemonConfig | 'help' {
  // `node:util` as the CommonJS module: its ES facade reads every export, which loads a dozen
  // modules the daemon does not use (worker_threads, perf_hooks, the diff code): ~3 ms of a cold
  // start on Node 22 and 24 (issue 16).
  const { parseArgs } = process.getBuiltinModule('node:util');
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      rundir: { type: 'string' },
      'log-format': { type: 'string', default: 'pretty' },
      'log-level': { type: 'string', default: 'info' },
      'access-log': { type: 'boolean', default: false },
      'no-fairness': { type: 'boolean', default: false },
      'turn-idle-ms': { type: 'string' },
      'request-idle-ms': { type: 'string' },
      'drop-log-ms': { type: 'string' },
      quota: { type: 'string', multiple: true, default: [] },
      'data-dir': { type: 'string' },
      sync: { type: 'string' },
      'idle-exit': { type: 'string' },
      'log-rate': { type: 'string' },
      'log-burst': { type: 'string' },
      'compact-after': { type: 'string' },
      'live-update-state': { type: 'string' },
      http: { type: 'string' },
      'http-anonymous': { type: 'string' },
      'http-connections': { type: 'string' },
      'socket-io': { type: 'string', default: 'direct' },
      'fd-reserve': { type: 'string' },
      'history-records': { type: 'string' },
      'history-bytes': { type: 'string' },
      'history-retention-age': { type: 'string' },
      'history-retention-bytes': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
      // cxenstored's, for its live update's exec (README: taking over from cxenstored).
      'live-update': { type: 'boolean', short: 'U', default: false },
      'pid-file': { type: 'string', short: 'F' },
      'no-fork': { type: 'boolean', short: 'N', default: false },
      'entry-nb': { type: 'string', short: 'E' },
      'entry-size': { type: 'string', short: 'S' },
      'watch-nb': { type: 'string', short: 'W' },
      transaction: { type: 'string', short: 't' },
      'perm-nb': { type: 'string', short: 'A' },
      'path-max': { type: 'string', short: 'M' },
      'xen-quota': { type: 'string', short: 'Q', multiple: true, default: [] },
      'trace-file': { type: 'string', short: 'T' },
      verbose: { type: 'boolean', short: 'V', default: false },
      'no-recovery': { type: 'boolean', short: 'R', default: false },
      'keep-orphans': { type: 'boolean', short: 'K', default: false },
      'no-domain-init': { type: 'boolean', short: 'D', default: false },
      'output-pid': { type: 'boolean', short: 'P', default: false },
    },
  });
  if (values.help) return 'help';
  const logFormat = values['log-format'];
  if (logFormat !== 'pretty' && logFormat !== 'json') throw new Error(`--log-format must be pretty or json`);
  const limits: Record<string, number> = {};
  for (const q of values.quota ?? []) {
    const m = /^([a-z-]+)=(\d+)$/.exec(q);
    const key = m && Object.hasOwn(QUOTA_NAMES, m[1]!) ? QUOTA_NAMES[m[1]!] : undefined;
    if (!m || key === undefined) throw new Error(`bad --quota ${JSON.stringify(q)} (NAME=VALUE, names: ${Object.keys(QUOTA_NAMES).join(', ')})`);
    limits[key] = Number(m[2]) === 0 ? Infinity : Number(m[2]);
  }
  const xenQuota = (flag: string, name: string, text: string) => {
    const key = Object.hasOwn(QUOTA_NAMES, name) ? QUOTA_NAMES[name] : name === 'permissions' ? QUOTA_NAMES['node-permissions'] : undefined;
    if (key === undefined || !/^\d{1,10}$/.test(text)) throw new Error(`bad ${flag} ${JSON.stringify(text)}`);
    limits[key] = Number(text) === 0 ? Infinity : Number(text);
  };
  for (const [flag, name] of Object.entries(XEN_QUOTA_FLAGS)) {
    const v = values[flag as keyof typeof XEN_QUOTA_FLAGS];
    if (v !== undefined) xenQuota(`--${flag}`, name, v);
  }
  for (const q of values['xen-quota'] ?? []) {
    const m = /^([a-z-]+)=(.*)$/.exec(q);
    if (!m) throw new Error(`bad -Q ${JSON.stringify(q)} (NAME=VALUE)`);
    xenQuota('-Q', m[1]!, m[2]!);
  }
  const dataDir = values['data-dir'];
  if (dataDir === '') throw new Error('--data-dir needs a directory');
  // Without a data directory nothing is written, so a sync mode would be silently meaningless.
  if (values.sync !== undefined && dataDir === undefined) throw new Error('--sync needs --data-dir (without it nothing is written to disk)');
  const sync = (values.sync ?? 'always') as SyncMode;
  if (!SYNC_MODES.includes(sync)) throw new Error(`--sync must be one of ${SYNC_MODES.join(', ')}`);
  let idleExit: number | undefined;
  if (values['idle-exit'] !== undefined) {
    if (!/^\d+$/.test(values['idle-exit']) || Number(values['idle-exit']) < 1) {
      throw new Error(`--idle-exit takes a whole number of seconds (at least 1)`);
    }
    // A daemon without persistence that exits when idle would throw the store away.
    if (dataDir === undefined) throw new Error('--idle-exit needs --data-dir (an idle exit would lose the store)');
    idleExit = Number(values['idle-exit']);
  }
  for (const flag of ['log-rate', 'log-burst', 'compact-after'] as const) {
    if (values[flag] !== undefined && dataDir === undefined) throw new Error(`--${flag} needs --data-dir (without it nothing is written to disk)`);
  }
  const diskBudget = {
    rate: bytesOption('log-rate', values['log-rate']) ?? DISK_BUDGET_DEFAULT.rate,
    burst: bytesOption('log-burst', values['log-burst']) ?? DISK_BUDGET_DEFAULT.burst,
  };
  const compactAfter = bytesOption('compact-after', values['compact-after']) ?? COMPACT_AFTER_DEFAULT;
  const socketIo = values['socket-io'] as SocketIo;
  if (!SOCKET_IO.includes(socketIo)) throw new Error(`--socket-io must be one of ${SOCKET_IO.join(', ')}`);
  const reserve = values['fd-reserve'];
  if (reserve !== undefined && !/^\d{1,9}$/.test(reserve)) throw new Error('--fd-reserve takes a number of descriptors');
  const anonymous = values['http-anonymous'];
  // Without a gateway the mode would be silently meaningless, as --sync without --data-dir.
  if (anonymous !== undefined && values.http === undefined) throw new Error('--http-anonymous needs --http');
  if (anonymous !== undefined && !(ANONYMOUS_ACCESS as readonly string[]).includes(anonymous)) {
    throw new Error(`--http-anonymous must be one of ${ANONYMOUS_ACCESS.join(', ')}`);
  }
  const httpConnections = values['http-connections'];
  if (httpConnections !== undefined && values.http === undefined) throw new Error('--http-connections needs --http');
  if (httpConnections !== undefined && !/^[1-9]\d{0,8}$/.test(httpConnections)) throw new Error('--http-connections takes a positive number of connections');
  const historyRecords = values['history-records'];
  if (historyRecords !== undefined && !/^(0|[1-9]\d{0,8})$/.test(historyRecords)) throw new Error('--history-records takes a number of records (0: no history)');
  const historyBytes = bytesOption('history-bytes', values['history-bytes']);
  if (historyBytes === 0) throw new Error('--history-bytes must be positive');
  for (const flag of ['history-retention-age', 'history-retention-bytes'] as const) {
    if (values[flag] !== undefined && dataDir === undefined) throw new Error(`--${flag} needs --data-dir (without it history is kept in memory only)`);
  }
  const historyRetention = {
    ageMs: durationOption('history-retention-age', values['history-retention-age']) ?? HISTORY_RETENTION_DEFAULT.ageMs,
    bytes: bytesOption('history-retention-bytes', values['history-retention-bytes']) ?? HISTORY_RETENTION_DEFAULT.bytes,
  };
  if (historyRetention.bytes === 0) throw new Error('--history-retention-bytes must be positive');
  const idle = values['turn-idle-ms'];
  if (idle !== undefined && !/^[1-9]\d{0,8}$/.test(idle)) throw new Error(`--turn-idle-ms must be a positive number of milliseconds`);
  const requestIdle = values['request-idle-ms'];
  if (requestIdle !== undefined && !/^\d{1,9}$/.test(requestIdle)) throw new Error('--request-idle-ms must be a number of milliseconds (0 = never)');
  const dropLog = values['drop-log-ms'];
  if (dropLog !== undefined && !/^[1-9]\d{0,8}$/.test(dropLog)) throw new Error('--drop-log-ms must be a positive number of milliseconds');
  return {
    requestIdleMs: requestIdle === undefined ? undefined : Number(requestIdle),
    dropLogMs: dropLog === undefined ? undefined : Number(dropLog),
    dataDir,
    sync,
    idleExit,
    diskBudget,
    compactAfter,
    liveUpdateState: values['live-update-state'],
    rundir: values.rundir,
    logFormat,
    logLevel: values['log-level']!,
    accessLog: values['access-log']!,
    fairness: !values['no-fairness']!,
    turnIdleMs: idle === undefined ? undefined : Number(idle),
    limits: limits as Partial<Limits>,
    http: values.http === undefined ? undefined : parseListenAddress(values.http),
    httpAnonymous: (anonymous ?? 'none') as AnonymousAccess,
    httpConnections: httpConnections === undefined ? undefined : Number(httpConnections),
    socketIo,
    fdReserve: reserve === undefined ? undefined : Number(reserve),
    history: {
      ...(historyRecords === undefined ? {} : { records: Number(historyRecords) }),
      ...(historyBytes === undefined ? {} : { bytes: historyBytes }),
    },
    historyRetention,
    xenTakeOver: values['live-update']!,
    pidFile: values['pid-file'],
  };
}

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `durationOption(flag, text)` reads a positive duration: a number and s, m, h or d. */
function durationOption(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^([1-9]\d{0,6})([smhd])$/.exec(text);
  if (m === null) throw new Error(`--${flag} takes a duration such as 90m, 24h or 7d`);
  return Number(m[1]) * DURATION_UNITS[m[2]!]!;
}

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** `bytesOption(flag, text)` reads a byte count with an optional K, M or G (binary) suffix. */
function bytesOption(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d{1,12})([KMG]?)$/i.exec(text);
  if (!m) throw new Error(`--${flag} takes a number of bytes, optionally with K, M or G (got ${JSON.stringify(text)})`);
  return Number(m[1]) * UNITS[m[2]!.toUpperCase()]!;
}
