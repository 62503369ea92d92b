import type { Log } from '../logger.js';
import type { Header } from '../../protocol/index.js';
import type { Caller, CommitPath, History, CommitResult, Limits, Store, StoreReply, StoreRequest, Transaction } from '../../store/index.js';
import type { Connection, ConnectionKind, IdleCloses } from '../connection/index.js';
import type { DescriptorReserve } from '../transport/index.js';
import type { Domain, Domains } from '../domains/index.js';
import type { DomainBudgets, Quotas } from '../quotas/index.js';
import type { Fairness } from '../transactions/index.js';
import type { WatchRegistry } from '../watches/index.js';
import type { ConnDelivery, Outcome } from './outcome.js';
import type { DeliveryBacklog } from './delivery-backlog.js';
import type { EventDrops } from './event-drops.js';
import type { LoopMonitor } from './loop-monitor.js';
import type { MomentBuilder } from './moment-builder.js';

/**
 * What request handling may use of the daemon, one port per handler family, each with only the
 * verbs its handlers call (fastify hands a plugin an encapsulated instance, not the server).
 * `Daemon` implements them all; nothing here names it, so the dispatch does not import the daemon.
 */

/**
 * The connection a request came on, as history names a commit's author (store/history-record.ts
 * `Who`): a `Connection` is one, so the handlers pass theirs and nothing is allocated per request.
 */
export interface Author {
  readonly id: number;
  readonly kind: ConnectionKind;
}

/** The tree operations (handlers/tree.ts): a request on the live store. */
export interface TreePort {
  apply(caller: Caller, limits: Limits, req: StoreRequest, by?: Author): Outcome<StoreReply>;
  /**
   * A change outside a transaction, which may wait for the fairness turn to end. `payload`: a
   * WRITE's bytes as received, which history copies in one block (store/history.ts `recordRequest`).
   */
  applyFor(conn: Connection, limits: Limits, req: StoreRequest, payload?: Buffer): Outcome<StoreReply> | Promise<Outcome<StoreReply>>;
}

/** Transactions (handlers/transaction.ts): start on the live version, commit under the fairness turn. */
export interface TransactionPort {
  readonly store: Store;
  readonly fairness: Pick<Fairness, 'admit' | 'started' | 'ended'>;
  commitFor(conn: Connection, tx: Transaction, txId?: number): Outcome<CommitResult> | Promise<Outcome<CommitResult>>;
}

/** WATCH, UNWATCH, RESET_WATCHES (handlers/watch.ts). */
export interface WatchPort {
  readonly watches: Pick<WatchRegistry<Connection>, 'find' | 'add' | 'remove' | 'removeOwner'>;
}

/** Domain management (handlers/domain.ts, handlers/feature.ts). */
export interface DomainPort {
  readonly domains: Pick<Domains, 'get' | 'has' | 'featuresOf' | 'presetFeatures'>;
  introduce(domid: number, mfn: string, port: number): Promise<readonly ConnDelivery[]>;
  release(domid: number): readonly ConnDelivery[];
  setTarget(domain: Domain, target: number | undefined): void;
}

/** GET_QUOTA / SET_QUOTA (handlers/quota.ts). */
export interface QuotaPort {
  readonly quotas: Pick<Quotas, 'names' | 'get' | 'set' | 'setEverywhere' | 'limitsFor'>;
  /** Whether a domain exists for GET_QUOTA / SET_QUOTA: dom0, or an introduced one (else ENOENT). */
  readonly domains: Pick<Domains, 'has'>;
}

/** Requests, commits by path, conflicts: what CONTROL `stats` reports and live update hands over. */
export interface Stats {
  requests: number;
  readonly commits: Record<CommitPath, number>;
  conflicts: number;
}

/** What CONTROL `live-update` drives (server/live-update/live-updater.ts). */
export interface LiveUpdateCommand {
  command(conn: Connection, header: Header, args: readonly string[]): string | Promise<string>;
}

/** CONTROL (handlers/control.ts): the daemon's figures, its access log switch, live update, history. */
export interface ControlPort extends QuotaPort {
  /** Undefined when the daemon keeps none (`--history-records 0`). */
  readonly history: History | undefined;
  /** Rebuilds the moments history queries read, a pass per turn (absent in tests of the dispatcher: at once). */
  readonly moments?: MomentBuilder | undefined;
  /** Pending while history on disk is still to be read back (a restart's first moments): history queries wait for it. */
  readonly historyReady?: Promise<void> | undefined;
  readonly log: Log;
  readonly options: { accessLog: boolean };
  readonly store: Store;
  readonly stats: Stats;
  readonly liveUpdate: LiveUpdateCommand | undefined;
  readonly handBack: LiveUpdateCommand | undefined;
  readonly fairness: Pick<Fairness, 'stats'>;
  readonly connections: ReadonlySet<Connection>;
  readonly budgets: Pick<DomainBudgets<Connection>, 'get' | 'sockets'>;
  readonly descriptors: Pick<DescriptorReserve, 'guestCap' | 'refused'>;
  readonly domains: Pick<Domains, 'all' | 'has' | 'size'>;
  readonly watches: Pick<WatchRegistry<Connection>, 'count'>;
  readonly drops: Pick<EventDrops, 'total'>;
  readonly backlog: Pick<DeliveryBacklog, 'deferred'>;
  readonly idleCloses: Pick<IdleCloses, 'total'>;
  readonly loop: Pick<LoopMonitor, 'report'>;
}

/** The dispatch itself (dispatch/process.ts): counting, the access log, event quotas. */
export interface DispatchPort extends QuotaPort {
  readonly log: Log;
  readonly options: { readonly accessLog: boolean };
  readonly stats: Stats;
  /** Dropped watch events: counted, and summed up in the log once per connection per interval. */
  readonly drops: Pick<EventDrops, 'note' | 'total'>;
  /** A request's watch events beyond one turn's share, sent in later turns in order (delivery-backlog.ts). */
  readonly backlog: Pick<DeliveryBacklog, 'send' | 'before'>;
  touch(): void;
}

/** Every port: what the dispatch is given, and passes on to each handler as its own. */
export type Ports = TreePort & TransactionPort & WatchPort & DomainPort & ControlPort & DispatchPort;
