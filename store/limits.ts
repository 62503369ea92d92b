/**
 * Quotas and limits, with Xen's defaults (spec §10). Everything here bounds what an
 * *unprivileged* domain can make the daemon hold; privileged callers are exempt, as in
 * cxenstored (spec §6.4) — except `pathMax`, which is a validity rule for everyone (XSA-323).
 */
export interface Limits {
  /** Nodes a domain may own (cxenstored `-E`, oxenstored quota-maxentity). ENOSPC beyond. */
  readonly nodes: number;
  /** Bytes in one node's value (oxenstored quota-maxsize). E2BIG beyond. */
  readonly valueSize: number;
  /** Entries in one node's permission list (cxenstored `-A`). ENOSPC beyond. */
  readonly permissions: number;
  /** Path length rule of spec §3.3 (cxenstored default 2048). EINVAL beyond. */
  readonly pathMax: number;
  /** Requests inside one transaction (cxenstored transaction-nodes, oxenstored maxrequests). */
  readonly transactionOps: number;
  /**
   * Open transactions per domain, over all its connections (spec §9.1: per connection in Xen,
   * where a domain has exactly one). ENOSPC beyond.
   */
  readonly transactions: number;
  /** Watches per domain, over all its connections (spec §8.1, cxenstored `-W`). E2BIG beyond. */
  readonly watches: number;
  /** Watch events queued for one connection before further events are dropped (XSA-326). */
  readonly watchEvents: number;
  /**
   * Xen's `outstanding` quota (requests in flight per connection), accepted and reported so that
   * `quota set outstanding` works, but not enforced: a connection's unread output is bounded in
   * bytes by `memory`, and its input stops while its socket will not take more (XSA-326).
   */
  readonly outstanding: number;
  /**
   * Connections a domain may hold open on its socket at once. Xen gives a guest one ring, so one
   * connection; we allow a few (a guest's tools), and refuse the rest.
   */
  readonly connections: number;
  /**
   * Bytes of the daemon's memory a domain may hold besides its nodes: its transactions' requests,
   * its watches' paths and tokens, output waiting for it (cxenstored's hard per-domain `memory`
   * quota, spec §10.2). ENOSPC beyond; events for it are dropped while it is not reading.
   */
  readonly memory: number;
}

export const DEFAULT_LIMITS: Limits = Object.freeze({
  nodes: 1000,
  valueSize: 2048,
  permissions: 5,
  pathMax: 2048,
  transactionOps: 1024,
  transactions: 10,
  watches: 128,
  watchEvents: 1024,
  outstanding: 1024,
  connections: 8,
  memory: 2621440, // cxenstored's hard default: 2.5 MiB
});

export type LimitName = keyof Limits;

export const LIMIT_NAMES = Object.keys(DEFAULT_LIMITS) as LimitName[];
