/**
 * The records of Xen's xenstore state stream (`docs/designs/xenstore-migration.md`,
 * `tools/xenstored/xenstore_state.h`): one daemon's whole state, written by cxenstored for a live
 * update (`<rundir>/state_dump`) and meant to work across implementations. Paths and tokens are
 * byte strings (latin1, as on the wire); values are bytes.
 */

/** Record type numbers (`XS_STATE_TYPE_*`). */
export const RecordType = Object.freeze({
  END: 0,
  GLOBAL: 1,
  CONNECTION: 2,
  WATCH: 3,
  TRANSACTION: 4,
  NODE: 5,
  GLOBAL_QUOTA: 6,
  DOMAIN: 7,
  WATCH_EXTENDED: 8,
});

/** DOMID_INVALID: a ring connection without a target (`tdomid`). */
export const DOMID_INVALID = 0x7ff4;

/** GLOBAL_DATA: the listening socket and the event channel device, as descriptor numbers (-1: none). */
export interface GlobalRecord {
  readonly type: 'global';
  readonly socketFd: number;
  readonly evtchnFd: number;
}

/** A shared-ring connection (a domain) or a socket connection, whose descriptor the stream names. */
export type ConnectionEnd =
  | { readonly kind: 'ring'; readonly domid: number; readonly target: number | undefined; readonly evtchn: number }
  | { readonly kind: 'socket'; readonly fd: number };

/**
 * CONNECTION_DATA: `input` is received bytes not yet processed (whole requests, then a partial
 * one); `output` is bytes not yet sent, of which the first `partial` are the unsent tail of a
 * message already begun (then whole messages). `uniqueId` (version 2) identifies a ring connection.
 */
export interface ConnectionRecord {
  readonly type: 'connection';
  readonly connId: number;
  readonly end: ConnectionEnd;
  readonly input: Buffer;
  readonly output: Buffer;
  readonly partial: number;
  readonly uniqueId?: bigint | undefined;
}

/**
 * WATCH_DATA (no depth) or WATCH_DATA_EXTENDED (a depth, version 2): `path` as the client gave it
 * (relative or absolute or `@...`).
 */
export interface WatchRecord {
  readonly type: 'watch';
  readonly connId: number;
  readonly path: string;
  readonly token: string;
  readonly depth?: number | undefined;
}

/** TRANSACTION_DATA: an open transaction of a connection (neither 4.17 nor 4.22 writes them). */
export interface TransactionRecord {
  readonly type: 'transaction';
  readonly connId: number;
  readonly txId: number;
}

/** A permission entry: `ignore` is Xen's stale flag (0x01: "ignore when checking"). */
export interface StatePerm {
  readonly access: 'n' | 'r' | 'w' | 'b';
  readonly ignore: boolean;
  readonly domid: number;
}

/**
 * NODE_DATA: a committed node (`connId` 0, `txId` 0), or one a transaction read or wrote
 * (`txAccess` bits 1 read, 2 written, 4 deleted). `perms[0]` is the owner. `@introduceDomain` and
 * `@releaseDomain` carry their permissions only.
 */
export interface NodeRecord {
  readonly type: 'node';
  readonly connId: number;
  readonly txId: number;
  readonly txAccess: number;
  readonly path: string;
  readonly value: Buffer;
  readonly perms: readonly StatePerm[];
}

/** Quota values by name, in stream order; 0 = unlimited. */
export type QuotaList = readonly (readonly [name: string, value: number])[];

/** GLOBAL_QUOTA_DATA: the per-domain defaults, then the global-only values. */
export interface GlobalQuotaRecord {
  readonly type: 'global-quota';
  readonly perDomain: QuotaList;
  readonly global: QuotaList;
}

/** DOMAIN_DATA: a domain's own quotas, and (version 2) its feature bits. */
export interface DomainRecord {
  readonly type: 'domain';
  readonly domid: number;
  readonly features: number;
  readonly quotas: QuotaList;
}

export type StateRecord =
  | GlobalRecord
  | ConnectionRecord
  | WatchRecord
  | TransactionRecord
  | NodeRecord
  | GlobalQuotaRecord
  | DomainRecord;

/** A whole stream: its version (1: Xen 4.17, 2: Xen 4.22) and its records, END excluded. */
export interface StateStream {
  readonly version: 1 | 2;
  readonly records: readonly StateRecord[];
}
