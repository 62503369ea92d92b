import type { Socket } from 'node:net';
import type { Log } from './logger.js';
import type { Frame } from '../protocol/index.js';
import {
  commit,
  createStore,
  execute,
  forgetDomain,
  advance,
  History,
  INTERNAL,
  REQUESTS_KEPT,
  DOM0,
  guest,
  type Caller,
  type Limits,
  type Change,
  type CommitResult,
  type SpecialName,
  type Store,
  type StoreReply,
  type StoreRequest,
  type Transaction,
  type HistoryOptions,
  type RequestSummary,
  type Touched,
  type Steps,
  type Who,
  XsError,
} from '../store/index.js';
import { Connection, FlushScheduler, IdleCloses, REQUEST_IDLE_MS, type Admission, type AnswerReceiver, type ConnectionKind, type OutputGate } from './connection/index.js';
import { type Domain, Domains } from './domains/index.js';
import { Fairness } from './transactions/index.js';
import { DiskBudget, type DiskBudgetOptions, DomainBudgets, Quotas } from './quotas/index.js';
import { defaultReserve, DescriptorReserve, openFileLimit, socketTransport, type SocketIo, type Transport } from './transport/index.js';
import { process as processFrame, deliver, DeliveryBacklog, EventDrops, LoopMonitor, MomentBuilder, outcome, type Author, type ConnDelivery, type Outcome, type LiveUpdateCommand, type Ports, type Stats } from './dispatch/index.js';
import { deliveries, NO_DELIVERIES, specialDeliveries, WatchRegistry } from './watches/index.js';
import { TurnClock } from './turn-clock.js';

export interface DaemonOptions {
  readonly rundir: string;
  readonly log: Log;
  readonly quotas: Quotas;
  /** Log every request and reply, like oxenstored's access log (off by default: hot path). */
  accessLog: boolean;
  /** Transaction fairness (transactions/fairness.ts); false gives first-come-first-served commits. */
  readonly fairness?: boolean;
  /** How long a turn holder may make no progress while others wait (transactions/fairness.ts). */
  readonly turnIdleMs?: number;
  /** How often dropped watch events are summed up in the log, per connection (dispatch/event-drops.ts). */
  readonly dropLogMs?: number;
  /** How long a half-received request may wait for its next byte (connection/connection-input.ts). */
  readonly requestIdleMs?: number;
  /**
   * How Unix-socket clients are read and written: 'direct' below Node's streams where the runtime
   * allows (transport/socket-transport.ts; the default), 'stream' through `net.Socket`'s streams.
   */
  readonly socketIo?: SocketIo;
  /** The history window's bounds (store/history.ts; `--history-records`, `--history-bytes`). */
  readonly history?: Partial<HistoryOptions> | undefined;
  /**
   * Descriptors never given to guest connections (transport/descriptor-reserve.ts); by default 256, or a
   * quarter of a lower RLIMIT_NOFILE.
   */
  readonly fdReserve?: number | undefined;
  /** A store to start from (persistence, tests); the initial tree otherwise. */
  readonly store?: Store;
  /**
   * Persistence (server/persistence): told of every new live version before anything is sent,
   * and the gate that holds replies and events until that version is durable.
   */
  readonly journal?: CommitLog;
  /** History on disk (persistence/history-log.ts): read back at start, told of every record. */
  readonly historyLog?: HistorySink | undefined;
  /**
   * History on disk is read back not at construction but when `readHistoryBack()` is called
   * (a restart calls it once its first clients are answered: src/daemon-main.ts).
   */
  readonly historyReadLater?: boolean;
  /**
   * History's window, built already (a live update's next process builds it during the pre-copy:
   * live-update/take-over.ts); its latest version must be `store`. Nothing is read back then.
   */
  readonly historyWindow?: History | undefined;
  /** Per-domain disk budget of the log (quotas/disk-budget.ts); off when undefined or with no journal. */
  readonly diskBudget?: DiskBudgetOptions;
}

/** Who made a commit, and the requests that made it (store/history-record.ts). */
interface Authorship {
  readonly who: Who;
  readonly requests: readonly RequestSummary[];
}

/**
 * One `Who` per connection, shared by the records of its commits made without a transaction id
 * (a copy per commit is an object the young-generation GC copies: issue 14). A plain request's
 * record needs none: `History.recordRequest` takes the author's fields.
 */
const whoOf = new WeakMap<Author, Who>();

function who(caller: Caller, by: Author | undefined, tx?: number): Who {
  if (by === undefined) return { domid: caller.domid, connection: 'internal' };
  if (tx !== undefined) return { domid: caller.domid, connection: by.kind, id: by.id, tx };
  const kept = whoOf.get(by);
  if (kept !== undefined && kept.domid === caller.domid && kept.connection === by.kind && kept.id === by.id) return kept;
  const made: Who = Object.freeze({ domid: caller.domid, connection: by.kind, id: by.id });
  whoOf.set(by, made);
  return made;
}

/** What the daemon needs of history on disk (server/persistence/history-log.ts `HistoryLog`). */
export interface HistorySink {
  /**
   * The records kept on disk that end at `live` (their bytes), at most `max`, and when the version
   * before them was made: read a part per `next()` of the generator, given at its end.
   */
  loadSteps(live: Store, max: number): Steps<{ records: Buffer[]; floorTime: number | undefined }>;
  /** `load`, while another process still writes (a live update's pre-copy); undefined when the records do not reach `live`. */
  prepare?(live: Store, max: number): { records: Buffer[]; floorTime: number | undefined } | undefined;
  /** The records written after those `prepare` gave, up to `live`; undefined when they do not join. */
  since?(live: Store): Buffer[] | undefined;
  /** Queues a record's bytes (`bytes[start, end)`, history-codec.ts's form; copied) for `flush`; returns its size on disk. */
  append(bytes: Buffer, start: number, end: number): number;
  /** Writes the records queued. */
  flush(): void;
}

/** History on disk read back into `h`, a part per step: the records that end at `started`, then their copy. */
function* readBack(log: HistorySink, h: History, started: Store): Steps<void> {
  const { records, floorTime } = yield* log.loadSteps(started, h.options.records);
  yield* h.restoreSteps(records, floorTime);
}

/** What the daemon needs of persistence (server/persistence/journal.ts `Journal`). */
export interface CommitLog extends OutputGate {
  /** Queues the delta from `before` to `after`; returns its size in bytes, when known. */
  record(before: Store, after: Store, changes?: readonly Change[]): number | void;
  /** Throws XsError (ENOSPC) while the log cannot take a commit: called before one becomes live. */
  admit?(): void;
  /** `fn(durable)` is called when a log write failed: the live store must go back to `durable`. */
  onRollBack?(fn: (durable: Store) => void): void;
  /** `fn()` is called just before the log writes a batch (history's records go first: `writeHistory`). */
  beforeWrite?(fn: () => void): void;
}

/**
 * The daemon's state and the actions on it: the single pointer to the live store version, the
 * history of versions, connections, domains and watches. Sockets are wired in `transport/listeners.ts`;
 * request dispatch is the table in `dispatch/process.ts`. All actions run on Node's one thread, so every
 * request is atomic with respect to every other, as in both Xen daemons (spec §8.8).
 */
export class Daemon implements Ports {
  store: Store;
  /** Undefined with `--history-records 0`. */
  readonly history: History | undefined;
  /**
   * History's commit times: read once per turn (turn-clock.ts). When that turn ends (with its
   * replies' flush), its records go to disk if no write-ahead log batch takes them first
   * (`writeHistory`).
   */
  private readonly clock = new TurnClock(
    Date.now,
    () => this.turnEnded(),
    (clock) => this.flushes.schedule(clock),
  );

  private turnEnded(): void {
    // Without a log to go before (`writeHistory`), each turn's records go to disk as it ends.
    if (this.options.journal?.beforeWrite === undefined) this.options.historyLog?.flush();
  }

  /**
   * `writeHistory()` writes history's records of the commits so far to disk, with `--data-dir`
   * (one write: persistence/history-log.ts). Called just before the write-ahead log writes a batch
   * (`CommitLog.beforeWrite`), and by a live update before it hands over: history on disk never
   * falls behind the store's log, or a crash would cut it off from the store recovered (issue 14).
   * One write per batch of the log, which may hold several turns' commits.
   */
  writeHistory(): void {
    this.options.historyLog?.flush();
  }

  /**
   * A record could not be written (the host out of memory): history's window starts again from
   * the live version (store/history.ts `startAfresh`), and the commit, already live, is answered
   * as usual: history never changes what a client sees. Logged once, until records are written
   * again: memory that fails every write must not become a log line a write.
   */
  private historyFailed(err: unknown): void {
    if (this.historyFailures++ === 0) this.log.error({ err }, 'history: records could not be written; the window starts again from the latest version (logged once until records are written again)');
  }

  private historyWritten(): void {
    this.log.warn({ failures: this.historyFailures }, 'history: records are written again');
    this.historyFailures = 0;
  }

  /** Commits or turns whose records could not be written since the last that could. */
  private historyFailures = 0;
  /** The size on disk of history's last record given to the log (`onRecord`). */
  private historyOnDisk = 0;

  /**
   * Settled once history on disk has been read back (`historyReadLater`): history queries wait for
   * it (dispatch/handlers/history.ts), so none answers from a window that is about to grow back.
   */
  readonly historyReady: Promise<void> | undefined;
  private readBack: (() => void) | undefined;

  /**
   * `readHistoryBack()`: starts reading history on disk back (`historyReadLater`), a step per turn
   * of the event loop; once, later calls do nothing. A restart's first clients are answered without
   * waiting for it, and its other clients between its steps: with a full default window it is
   * ~0.1-0.2 s of reading and copying, a few milliseconds a step (bench/RESULTS.md, "History").
   */
  readHistoryBack(): void {
    const read = this.readBack;
    this.readBack = undefined;
    read?.();
  }

  /**
   * The records on disk that end at `started` (the version this process started from) put before
   * the window's own (store/history.ts `restoreSteps`). History is a witness: one that cannot be
   * read back is logged, never a reason not to serve. `then`: read and copy a step per turn of the
   * event loop (persistence/history-log.ts `loadSteps`, then `restoreSteps`), other clients
   * answered between, and call it once the window is whole; without it, all at once.
   */
  private readHistory(started: Store, then?: () => void): void {
    const steps = readBack(this.options.historyLog!, this.history!, started);
    const next = (): void => {
      try {
        while (steps.next().done !== true) {
          if (then !== undefined) {
            setImmediate(next);
            return;
          }
        }
      } catch (err) {
        this.log.error({ err }, 'history: the records on disk could not be read back; history starts at this start');
      }
      then?.();
    };
    next();
  }
  readonly watches = new WatchRegistry<Connection>();
  /** What each unprivileged domain holds, over all its connections (quotas/domain-budget.ts). */
  readonly budgets = new DomainBudgets(this.watches);
  readonly connections = new Set<Connection>();
  /** Every connection's output leaves once per turn of the event loop, together (flush-scheduler.ts). */
  private readonly flushes = new FlushScheduler();
  readonly domains: Domains;
  /** The descriptors guests may not take, and the count of connections refused for them. */
  readonly descriptors: DescriptorReserve;
  private readOnlySockets = 0;
  readonly log: Log;
  readonly quotas: Quotas;
  /** Who wins among conflicting transactions once one has kept losing (transactions/fairness.ts). */
  readonly fairness: Fairness;
  readonly drops: EventDrops;
  /** Watch events beyond one turn's share, sent in later turns, in order (dispatch/delivery-backlog.ts). */
  readonly backlog = new DeliveryBacklog((d) => deliver(this, d));
  /** Connections closed for a request left half-sent, a few per turn, counted (connection/idle-closes.ts). */
  readonly idleCloses: IdleCloses;
  readonly loop = new LoopMonitor();
  /** History queries' moments, rebuilt a pass per turn (dispatch/moment-builder.ts). */
  readonly moments = new MomentBuilder();
  readonly stats: Stats = { requests: 0, commits: { 'read-only': 0, fast: 0, merge: 0, replay: 0 }, conflicts: 0 };
  readonly startedAt = Date.now();
  private readonly releaseHooks = new Set<(domid: number) => void>();
  /**
   * A client did something (a request or a new connection) since the idle-exit timer last looked
   * (`--idle-exit`, server/systemd/idle-exit.ts). A flag, not a timestamp: every request sets it,
   * so it must cost no clock read on the hot path; the timer, which ticks at most once a second,
   * reads the clock instead.
   */
  active = true;
  /** Live update (`server/live-update/`), once the listeners exist: CONTROL `live-update` drives it. */
  liveUpdate: (LiveUpdateCommand & { stopping(): boolean }) | undefined;
  /** CONTROL `hand-back`: back to cxenstored (server/xen-migration/hand-back.ts); set by the entry point. */
  handBack: LiveUpdateCommand | undefined;
  /**
   * Asked before a connection takes its next request (of that message type): `false` leaves it,
   * and what follows, unread in the connection's decoder until `conn.poll()`. Live update defers
   * requests with it while it hands over. Undefined: everything is taken.
   */
  admit: Admission<Connection> | undefined;
  /** Guests' log bytes per second (quotas/disk-budget.ts); only with persistence. */
  private readonly diskBudget: DiskBudget | undefined;

  constructor(readonly options: DaemonOptions) {
    this.log = options.log;
    this.quotas = options.quotas;
    this.fairness = new Fairness(options.fairness ?? true, options.turnIdleMs);
    this.drops = new EventDrops(this.log, options.dropLogMs);
    this.idleCloses = new IdleCloses(this.log, options.requestIdleMs ?? REQUEST_IDLE_MS, options.dropLogMs);
    this.store = options.store ?? createStore();
    // `records: 0` (`--history-records 0`): an administrator who wants every write's last
    // microsecond keeps no history (README, History: what it costs).
    this.history = options.historyWindow ?? (options.history?.records === 0 ? undefined : new History(this.store, options.history, Date.now()));
    const started = this.store;
    if (this.history !== undefined && options.historyLog !== undefined && options.historyWindow === undefined) {
      if (options.historyReadLater === true) {
        this.historyReady = new Promise<void>((resolve) => (this.readBack = () => this.readHistory(started, resolve)));
      } else {
        this.readHistory(started);
      }
    }
    this.domains = new Domains(
      options.rundir,
      (domain, socket) => this.acceptDomain(domain, socket),
      (domain, e) => this.acceptFailed(`domain ${domain.domid}`, e),
    );
    const limit = openFileLimit();
    this.descriptors = new DescriptorReserve(limit, options.fdReserve ?? defaultReserve(limit), this.log);
    options.journal?.onRollBack?.((durable) => this.rollBack(durable));
    const sink = options.historyLog;
    if (this.history !== undefined && sink !== undefined) {
      this.history.onRecord((buf, start, end) => (this.historyOnDisk = sink.append(buf, start, end)));
      options.journal?.beforeWrite?.(() => this.writeHistory());
    }
    if (options.journal !== undefined && options.diskBudget !== undefined) this.diskBudget = new DiskBudget(options.diskBudget);
  }

  /**
   * `accept(socket, kind)` starts serving a connection of the privileged or read-only socket, or
   * closes it: `socket_ro` may hold a quarter of the descriptor reserve, so that dom0 keeps the
   * rest whatever read-only clients do (transport/descriptor-reserve.ts). dom0's socket is never refused.
   */
  accept(socket: Socket, kind: Exclude<ConnectionKind, 'domain'>): Connection | undefined {
    if (kind === 'socket_ro' && !this.descriptors.readOnlyRoom(this.readOnlySockets)) {
      return this.refuse(socket, 'socket_ro', 'socket_ro is at its share of the descriptor reserve');
    }
    const caller: Caller = kind === 'socket_ro' ? { domid: 0, privileged: true, readOnly: true } : DOM0;
    return this.open(this.transport(socket), kind, caller);
  }

  /**
   * An accept that failed (EMFILE and the like): logged through the refusal summary, never thrown,
   * since a listening server's 'error' without a listener would take the daemon down.
   */
  acceptFailed(who: string, e: Error): void {
    this.descriptors.refuse(who, `accept failed: ${e.message}`);
  }

  private refuse(socket: Socket, who: string, why: string): undefined {
    socket.destroy();
    this.descriptors.refuse(who, why);
    return undefined;
  }

  private transport(socket: Socket): Transport {
    return socketTransport(socket, (this.options.socketIo ?? 'direct') === 'direct');
  }

  /**
   * A connection to a guest's socket: refused (closed at once) when the domain already holds its
   * `connections` quota (its sockets' and gateway WebSockets' together), or when guests together hold every descriptor outside the reserve, so
   * that dom0's socket and INTRODUCE keep working whatever guests do (issue 17).
   */
  private acceptDomain(domain: Domain, socket: Socket): void {
    const held = this.budgets.get(domain.domid)?.held ?? 0;
    const max = this.quotas.limitsFor(domain.domid).connections;
    if (held >= max) return void this.refuse(socket, `domain ${domain.domid}`, `domain ${domain.domid} holds its ${max} connections`);
    if (!this.descriptors.guestRoom(this.budgets.sockets, this.domains.size)) {
      return void this.refuse(socket, `domain ${domain.domid}`, 'guests hold every descriptor outside the reserve');
    }
    const conn = this.open(this.transport(socket), 'domain', guest(domain.domid, domain.target, domain.features));
    domain.connections.add(conn);
  }

  /**
   * `attach(transport, kind, caller, receiver)` serves a client that is not a Unix socket (the
   * gateway): a binary WebSocket's bytes, or with `receiver` a session whose requests come whole
   * and whose answers it takes as they are (gateway/session.ts).
   */
  attach(transport: Transport, kind: ConnectionKind, caller: Caller, receiver?: AnswerReceiver): Connection {
    return this.open(transport, kind, caller, receiver);
  }

  private open(socket: Transport, kind: ConnectionKind, caller: Caller, receiver?: AnswerReceiver): Connection {
    const conn = new Connection(socket, kind, caller, {
      onFrame: (c: Connection, f: Frame) => processFrame(this, c, f),
      onClose: (c: Connection, error: Error | undefined) => this.closed(c, error),
      maxEvents: () => this.quotas.limitsFor(caller.domid).watchEvents,
      admission: () => this.admit,
      flushes: this.flushes,
      gate: this.options.journal,
      requestIdleMs: this.options.requestIdleMs,
      idleCloses: this.idleCloses,
    }, receiver);
    // Counted here, not where accepted: a live update's next process adopts connections too.
    if (!caller.privileged) conn.budget = this.budgets.join(conn);
    if (kind === 'socket_ro') this.readOnlySockets++;
    this.touch();
    this.connections.add(conn);
    this.log.debug({ conn: conn.id, kind, domid: caller.domid }, 'connection opened');
    return conn;
  }

  /**
   * `adopt(socket, kind, caller)` serves a connection that a previous process accepted (live
   * update): as `accept` does, and a domain's connection joins its (already adopted) domain.
   */
  adopt(socket: Socket, kind: ConnectionKind, caller: Caller): Connection {
    const conn = this.open(this.transport(socket), kind, caller);
    if (kind === 'domain') this.domains.get(caller.domid)?.connections.add(conn);
    return conn;
  }

  /** A connection's teardown: its transactions and watches die with it (spec §9.1, §8.1). */
  private closed(conn: Connection, error: Error | undefined): void {
    this.connections.delete(conn);
    conn.transactions.clear();
    this.watches.removeOwner(conn);
    if (conn.budget !== undefined) this.budgets.leave(conn, conn.budget);
    if (conn.kind === 'socket_ro') this.readOnlySockets--;
    this.fairness.closed(conn);
    if (conn.kind === 'domain') this.domains.get(conn.caller.domid)?.connections.delete(conn);
    if (error !== undefined) this.log.warn({ conn: conn.id, err: error.message }, 'connection closed on error');
    else this.log.debug({ conn: conn.id }, 'connection closed');
  }

  /**
   * `apply(caller, limits, req, by?)` runs one request outside any transaction: its reply and the
   * watch events it causes. `by`, the connection asking, is who history names for the commit.
   */
  apply(caller: Caller, limits: Limits, req: StoreRequest, by?: Author): Outcome<StoreReply> {
    const before = this.store;
    const out = execute(before, caller, limits, req);
    if (out.changes.length === 0) return out.reply;
    this.options.journal?.admit?.();
    const next = advance(out.store, before);
    return outcome(out.reply, this.install(next, before, out.changes, caller, true, req, out.touched, by));
  }

  /**
   * `applyFor(conn, limits, req, payload?)` is `apply` for a client's request outside a transaction, under
   * the fairness turn: a change that would alter what the turn's transaction reserved waits for
   * the turn to end (its reply is held, and its connection reads nothing meanwhile), exactly as
   * another connection's commit does (transactions/fairness.ts). Issue 18: plain writes of 4 guest
   * connections made one dom0 transaction fail 3,586 times; XSA-206's lever (cxenstored slows a
   * domain whose writes make others' transactions fail) applied to the one write that would.
   * `payload`: a WRITE's bytes as received, for history (`recordRequest`).
   */
  applyFor(conn: Connection, limits: Limits, req: StoreRequest, payload?: Buffer): Outcome<StoreReply> | Promise<Outcome<StoreReply>> {
    const before = this.store;
    const out = execute(before, conn.caller, limits, req);
    if (out.changes.length === 0) return out.reply;
    if (out.store !== before) {
      const turnEnd = this.fairness.blocks(conn, out.store);
      if (turnEnd !== undefined) {
        // The payload is not kept across the wait: it is a view of the input's chunk, which would
        // stay in memory with it (history writes the request from its strings instead).
        return turnEnd.then(() => {
          // A client that went away meanwhile took its request with it: nothing is applied.
          if (conn.state !== 'open') throw new XsError('EIO', 'connection closed');
          return this.applyFor(conn, limits, req);
        });
      }
    }
    this.options.journal?.admit?.();
    const next = advance(out.store, before);
    return outcome(out.reply, this.install(next, before, out.changes, conn.caller, true, req, out.touched, conn, payload));
  }

  /** `commit(tx)` ends a transaction with "T": installs it (with its watch events), or reports why not. */
  commit(tx: Transaction): Outcome<CommitResult> {
    const before = this.store;
    return this.settle(commit(before, tx), before, tx);
  }

  /**
   * `commitFor(conn, tx)` is `commit(tx)` for a client connection, under the fairness turn: a
   * commit that would change what the turn's transaction reserved waits for the turn to end and is
   * then decided against the store of that moment (transactions/fairness.ts); the outcome is then a promise.
   */
  commitFor(conn: Connection, tx: Transaction, txId?: number): Outcome<CommitResult> | Promise<Outcome<CommitResult>> {
    const before = this.store;
    const result = commit(before, tx);
    if (result.kind === 'committed' && result.store !== before) {
      const turnEnd = this.fairness.blocks(conn, result.store);
      if (turnEnd !== undefined) {
        // A client that went away meanwhile took its transaction with it (spec §9.1).
        return turnEnd.then(() => (conn.state === 'open' ? this.commitFor(conn, tx, txId) : { kind: 'conflict' as const }));
      }
    }
    return this.settle(result, before, tx, conn, txId);
  }

  private settle(result: CommitResult, before: Store, tx: Transaction, conn?: Author, txId?: number): Outcome<CommitResult> {
    const by = tx.caller;
    if (result.kind === 'committed') {
      if (result.store !== before) {
        try {
          this.options.journal?.admit?.();
        } catch (e) {
          if (e instanceof XsError) return { kind: 'failed', code: e.code };
          throw e;
        }
      }
      this.stats.commits[result.path]++;
      const author = (): Authorship => ({ who: who(by, conn, txId), requests: tx.updates(REQUESTS_KEPT + 1) });
      return outcome(result, this.install(result.store, before, result.changes, by, true, author));
    }
    if (result.kind === 'conflict') this.stats.conflicts++;
    return result;
  }

  /**
   * `touch()` records client activity for `--idle-exit`: called for every request (dispatch/process.ts) and
   * every new connection. Health probes (the gateway's `/healthz`) must NOT call it, or monitoring
   * would keep an idle daemon alive forever.
   */
  touch(): void {
    this.active = true;
  }

  /**
   * `complete`: every node that differs is on or below a path in `changes` (true of requests and
   * commits), which lets the journal walk only those paths (store/delta.ts). `author`: the plain
   * request that made the commit (asked by `by` over `conn`), or what describes a commit, made only
   * when history is on (issue 14: no object per write for history to describe a plain request).
   */
  private install(
    next: Store,
    before: Store,
    changes: readonly Change[],
    by: Caller | undefined,
    complete: boolean,
    author: StoreRequest | (() => Authorship),
    touched?: Touched,
    conn?: Author,
    payload?: Buffer,
  ): readonly ConnDelivery[] {
    if (next !== before) {
      // History needs the changed paths only for a commit that does not say what it touched.
      const hints = complete && touched === undefined ? changes.map((c) => c.path) : undefined;
      const bytes = this.options.journal?.record(before, next, complete ? changes : undefined);
      const charged = this.diskBudget !== undefined && by !== undefined && !by.privileged && typeof bytes === 'number';
      this.store = next;
      let historyBytes: number | undefined;
      if (this.history !== undefined) {
        try {
          // Made only for a commit that changed something: a request that changes nothing costs nothing here.
          let g: number | undefined;
          if (typeof author === 'function') {
            const { who, requests } = author();
            g = this.history.record(before, next, { time: this.clock.now(), who, requests }, hints, touched);
          } else {
            g = this.history.recordRequest(before, next, this.clock.now(), by!.domid, conn?.kind ?? 'internal', conn?.id, author.op, author.path, hints, touched, payload);
          }
          // A guest's disk budget pays for every byte its commit puts on disk: the log's record and
          // history's (issue 17: a flood must not fill the disk through either): `onRecord` said
          // the size on disk of the record just written.
          if (g !== undefined && charged && this.options.historyLog !== undefined) historyBytes = this.historyOnDisk;
          if (this.historyFailures > 0) this.historyWritten();
        } catch (err) {
          this.historyFailed(err);
        }
      }
      if (charged) {
        const wait = this.diskBudget.charge(by.domid, bytes + (historyBytes ?? 0));
        if (wait > 0) this.throttle(by.domid, wait);
      }
    }
    return deliveries(this.watches, changes, before, next);
  }

  /** Stops reading the connections of guest `domid` for `ms`: it spent its disk budget (quotas/disk-budget.ts). */
  private throttle(domid: number, ms: number): void {
    // The domain's own connections (its budget lists them), not a scan of every client: a guest in
    // debt must not cost the daemon a walk of all connections per commit.
    for (const conn of this.budgets.get(domid)?.connections ?? []) conn.throttle(ms);
  }

  /**
   * `rollBack(durable)`: a log write failed (server/persistence/journal.ts), so the versions after
   * `durable` will never be durable; none of them was shown to anyone (the output gate held it).
   * The live store and its history go back to `durable`. A transaction started on a lost version
   * goes too: the reply that gave its id became the error. Every other open transaction is
   * abandoned with EAGAIN — some of its requests may have been answered with the error while it
   * holds their effect — and its client retries it whole, as after any conflict (spec §9.2).
   * Watch events already queued are delivered: a spurious event only makes a watcher re-read.
   * Quotas are counted in the store, so they come back with it.
   */
  private rollBack(durable: Store): void {
    this.store = durable;
    this.history?.rewind(durable);
    for (const conn of this.connections) {
      for (const [id, tx] of conn.transactions) {
        if (tx.base.generation > durable.generation) {
          conn.transactions.delete(id);
          this.fairness.ended(conn, id, tx, 'aborted');
        } else {
          tx.abandon('EAGAIN');
        }
      }
    }
  }

  /**
   * `introduce(domid, mfn, port)` starts serving a domain on its own socket; its deliveries are
   * `@introduceDomain`'s. A repeated INTRODUCE with the same frame keeps the domain as it is
   * (oxenstored) and fires nothing; with a different one it is EINVAL (spec §7.11).
   */
  async introduce(domid: number, mfn: string, port: number): Promise<readonly ConnDelivery[]> {
    const known = this.domains.get(domid);
    if (known !== undefined) {
      if (known.mfn !== mfn) throw new XsError('EINVAL', `domain ${domid} was introduced with another frame`);
      return NO_DELIVERIES;
    }
    await this.domains.introduce(domid, mfn, port);
    // Xen 4.22: a domain's quotas are the global values at its introduction (`alloc_domain`).
    this.quotas.admit(domid);
    this.log.info({ domid, socket: this.domains.socketPath(domid) }, 'domain introduced');
    return this.special('@introduceDomain', domid);
  }

  /**
   * `release(domid)` stops serving a domain: its connections close (their watches and transactions
   * die), its nodes and ACL entries are removed from the store (spec §6.6); its deliveries are
   * the removals' and then `@releaseDomain`'s.
   */
  release(domid: number): readonly ConnDelivery[] {
    // Refused whole on a full disk: the domain stays, so the toolstack's retry finds it.
    this.options.journal?.admit?.();
    this.domains.release(domid);
    // A stub domain's rights over its target end with the target: a domain reusing the id must
    // not be controlled through them (spec §6.5, XSA-322).
    for (const d of this.domains.all()) if (d.target === domid) this.setTarget(d, undefined);
    const before = this.store;
    const { store, changes } = forgetDomain(before, domid);
    // Not complete: the release also drops ACL entries on nodes it does not report.
    const removed = this.install(advance(store, before), before, changes, undefined, false, () => ({
      who: INTERNAL,
      requests: [{ op: 'release', path: `/local/domain/${domid}` }],
    }));
    this.quotas.forget(domid);
    this.diskBudget?.forget(domid);
    for (const hook of this.releaseHooks) hook(domid);
    this.log.info({ domid }, 'domain released');
    const released = this.special('@releaseDomain', domid);
    return removed.length === 0 ? released : released.length === 0 ? removed : [...removed, ...released];
  }

  /** The deliveries of `@introduceDomain` or `@releaseDomain` for `domid`, as its permissions allow (spec §8.6). */
  private special(name: SpecialName, domid: number): readonly ConnDelivery[] {
    return specialDeliveries(this.watches, name, domid, this.store.special[name]);
  }

  /**
   * `onRelease(fn)` calls `fn(domid)` whenever a domain is released, for state kept outside the
   * daemon that names domains (the gateway's guest tokens: a domid that is reused must not
   * inherit them, XSA-322). Returns the function that unregisters it.
   */
  onRelease(fn: (domid: number) => void): () => void {
    this.releaseHooks.add(fn);
    return () => this.releaseHooks.delete(fn);
  }

  /** `setTarget(domid, target)` lets a stub domain act for its target (spec §6.5). */
  setTarget(domain: Domain, target: number | undefined): void {
    domain.target = target;
    for (const conn of domain.connections) conn.caller = guest(domain.domid, target, domain.features);
  }

  /** Closes every connection and domain socket. */
  shutdown(): void {
    this.writeHistory();
    this.descriptors.close();
    this.domains.closeAll();
    for (const conn of this.connections) conn.close();
  }
}

