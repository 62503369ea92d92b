import { XsError, type Limits } from '../../store/index.js';

/**
 * What a budget reads of a connection charged to it (a `Connection`; named by shape, so that a
 * connection can carry its budget without the two files importing each other).
 */
export interface Charged {
  readonly transactions: ReadonlyMap<number, { readonly bytes: number }>;
  /** Output held, queued or unwritten for the connection. */
  readonly pendingBytes: number;
}

/** What a budget reads of the watch registry: each connection's watches. */
interface WatchCounts<C> {
  count(owner: C): number;
  bytes(owner: C): number;
}

/**
 * What one unprivileged domain holds in the daemon, summed over every connection acting as it
 * (issue 17). In Xen a guest has one ring, so the quotas Xen counts per connection are per-domain
 * quotas (spec §10.2: watches, transactions, memory are per domain in cxenstored); here a guest can
 * open as many connections to its socket as it likes, so each budget is charged to the domain, not
 * to the connection, or a guest would multiply them by opening connections.
 *
 * The figures are not kept as running totals: they are read from what the connections hold (their
 * transaction maps, the watch registry's per-owner counts, their output queues), at most a few
 * connections and `transactions` transactions per domain, so a figure can never drift from what it
 * measures, and closing a connection gives everything back with no bookkeeping of its own.
 * Privileged connections have no budget (spec §6.4: exempt from every per-domain quota).
 */
export class DomainBudget<C extends Charged = Charged> {
  /** Every connection acting as this domain: its socket's, and the gateway's for its tokens. */
  readonly connections = new Set<C>();
  /** Of those, the connections to the domain's own socket. */
  sockets = 0;
  /** Of those, the gateway's WebSockets for the domain's tokens. */
  webSockets = 0;

  constructor(
    readonly domid: number,
    private readonly watches: WatchCounts<C>,
  ) {}

  /**
   * What the `connections` quota bounds: the connections that stay, to its socket and the
   * gateway's WebSockets (an HTTP request's session lasts the request and is bounded by the
   * gateway's own cap, `--http-connections`).
   */
  get held(): number {
    return this.sockets + this.webSockets;
  }

  /** Watches of the domain's connections. */
  watchCount(): number {
    let n = 0;
    for (const c of this.connections) n += this.watches.count(c);
    return n;
  }

  /** Open transactions of the domain's connections. */
  transactionCount(): number {
    let n = 0;
    for (const c of this.connections) n += c.transactions.size;
    return n;
  }

  /**
   * Bytes the domain makes the daemon hold besides its nodes (which `nodes` and `node-size`
   * bound): its transactions' logged requests, its watches, and the output waiting for it.
   */
  memory(): number {
    let n = 0;
    for (const c of this.connections) {
      for (const tx of c.transactions.values()) n += tx.bytes;
      n += this.watches.bytes(c) + c.pendingBytes;
    }
    return n;
  }

  /**
   * `admitWatch(limits, bytes)` throws unless the domain may add a watch of `bytes`: E2BIG past
   * `watches` (cxenstored 4.17, spec §8.1), ENOSPC past `memory` (spec §10.2).
   */
  admitWatch(limits: Limits, bytes: number): void {
    if (this.watchCount() >= limits.watches) throw new XsError('E2BIG', `domain ${this.domid} has ${limits.watches} watches`);
    this.admitBytes(limits, bytes);
  }

  /** `admitTransaction(limits)` throws ENOSPC once the domain has `transactions` open (spec §9.1). */
  admitTransaction(limits: Limits): void {
    if (this.transactionCount() >= limits.transactions) {
      throw new XsError('ENOSPC', `domain ${this.domid} has ${limits.transactions} open transactions`);
    }
  }

  /**
   * `admitBytes(limits, bytes)` throws ENOSPC when holding `bytes` more would take the domain past
   * its `memory` quota. Checked before the work is done, so the daemon never grows past the budget
   * by more than one request's outcome (a READ's value, at most a message).
   */
  admitBytes(limits: Limits, bytes: number): void {
    if (this.memory() + bytes > limits.memory) {
      throw new XsError('ENOSPC', `domain ${this.domid} is at its memory quota of ${limits.memory} bytes`);
    }
  }

  /** True while the domain holds more than its `memory` quota: events for it are then dropped. */
  overMemory(limits: Limits, bytes: number): boolean {
    return this.memory() + bytes > limits.memory;
  }
}
