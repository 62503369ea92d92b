import type { Caller } from './caller.js';
import { XsError, type XsErrorCode } from './errors.js';
import type { Limits } from './limits.js';
import { execute } from './operations.js';
import { commonPrefixLength, parseNodePath } from './path.js';
import { formatPerms } from './perms.js';
import { addAll, owned } from './quota.js';
import type { Change, StoreReply, StoreRequest } from './request.js';
import { advance, type Store } from './store.js';
import { deepestExisting, lookup, replace } from './tree.js';

/**
 * A transaction is the triple (T1, T2, p) of the oxenstored paper (spec §9.2):
 *   T1 = `base`, the version the transaction started from (starting costs one pointer);
 *   T2 = `work`, its private version with its own updates applied;
 *   p  = `lowpath`, the deepest path whose subtree holds every node the transaction observed or
 *        changed (we include reads: they are what serializability is about).
 * It also keeps the log of its requests and their outcomes, for the last commit step.
 *
 * Commit (`commit` below) tries, in order, each step cheaper than the next:
 *  1. read-only: T2 is T1 — nothing to install. Serialized at its start, where it read a consistent
 *     snapshot; such a transaction never fails (as in oxenstored since XSA-206).
 *  2. fast: the live version is still T1 (`===`): T2 becomes live.
 *  3. graft: the live subtree at p is still T1's subtree at p (`===`), so nothing the transaction
 *     observed has changed: T2's subtree at p replaces it and every other subtree of the live
 *     tree is kept, by reference. Quotas merge as live + (T2 - T1), where T2 - T1 is summed as the
 *     requests run, so the cost is the domains the transaction touched.
 *  4. replay (the "merge finer" step): re-run the logged requests against the live version. If
 *     every reply is identical to the one the client saw, the client could not tell the
 *     difference: the result is exactly what running the transaction alone at its commit point
 *     gives, so committing it is serializable by construction. Replay touches only the paths the
 *     transaction used, and shares every other subtree of the live tree.
 *  5. otherwise EAGAIN, and the live store is untouched.
 * Why replay rather than a three-way walk of T1/T2/live: a transaction that removes /a and then
 * writes /a/x must, at its commit point, also remove children another client added to /a
 * meanwhile. A node-by-node merge of T1/T2/live keeps them; re-running the requests cannot get this
 * wrong. Reference equality still does the pruning: steps 2 and 3 skip all work when the subtree is
 * the same object, and replay walks only the transaction's own paths.
 */
export type CommitPath = 'read-only' | 'fast' | 'graft' | 'replay';

export type CommitResult =
  | { readonly kind: 'committed'; readonly store: Store; readonly changes: readonly Change[]; readonly path: CommitPath }
  | { readonly kind: 'conflict' }
  | { readonly kind: 'failed'; readonly code: XsErrorCode };

interface Logged {
  readonly req: StoreRequest;
  readonly outcome: string;
}

export class Transaction {
  private work: Store;
  private readonly log: Logged[] = [];
  private readonly changed: Change[] = [];
  /** Nodes gained or lost per domain so far: T2's quota minus T1's, for the graft. */
  private readonly counts = new Map<number, number>();
  private low: readonly string[] | undefined;
  private special = false;
  private failure: XsErrorCode | undefined;

  constructor(
    readonly base: Store,
    readonly caller: Caller,
    readonly limits: Limits,
  ) {
    this.work = base;
  }

  /** T2: the transaction's private version. */
  get store(): Store {
    return this.work;
  }

  /** p: the deepest path holding everything observed or changed; undefined before any request. */
  get lowpath(): readonly string[] | undefined {
    return this.low;
  }

  /** Requests executed so far. */
  get size(): number {
    return this.log.length;
  }

  /**
   * `execute(req)` answers a request inside the transaction, against T2, and logs it. Throws the
   * request's `XsError`. Past the per-transaction request limit an unprivileged transaction fails
   * for good (ENOSPC, as cxenstored's transaction-nodes quota; spec §9.1), so that a guest cannot
   * make us hold an unbounded log.
   */
  execute(req: StoreRequest): StoreReply {
    if (this.failure !== undefined) throw new XsError(this.failure, 'transaction failed earlier');
    if (!this.caller.privileged && this.log.length >= this.limits.transactionOps) {
      this.failure = 'ENOSPC';
      throw new XsError('ENOSPC', `more than ${this.limits.transactionOps} requests in a transaction`);
    }
    this.observe(req);
    try {
      const out = execute(this.work, this.caller, this.limits, req);
      this.work = out.store;
      for (const c of out.changes) this.changed.push(c);
      if (out.counts !== undefined) {
        for (const [domid, n] of out.counts) this.counts.set(domid, (this.counts.get(domid) ?? 0) + n);
      }
      this.log.push({ req, outcome: fingerprint(out.reply) });
      return out.reply;
    } catch (e) {
      if (e instanceof XsError) this.log.push({ req, outcome: e.code });
      throw e;
    }
  }

  /**
   * Widens p to cover what `req` observes or changes in T2: the node, or its deepest existing
   * ancestor when it is missing (that ancestor's permissions decide the answer and its children
   * change on creation); for RM the parent, whose children change. Failed requests observe too.
   */
  private observe(req: StoreRequest): void {
    if (req.path.charCodeAt(0) === 0x40 /* @ */) {
      this.special = true;
      return;
    }
    let segs: readonly string[];
    try {
      segs = parseNodePath(req.path, this.caller.domid, this.limits.pathMax).segs;
    } catch {
      return; // an invalid path observes nothing: it fails the same way at any time
    }
    let depth = deepestExisting(this.work.root, segs);
    if (req.op === 'rm') depth = Math.min(depth, segs.length - 1);
    depth = Math.max(depth, 0);
    const low = this.low;
    this.low = low === undefined ? segs.slice(0, depth) : segs.slice(0, Math.min(depth, commonPrefixLength(low, segs)));
  }

  /** Replays the log against `live`; the replayed transaction, or undefined on any difference. */
  replayOn(live: Store): Transaction | undefined {
    const again = new Transaction(live, this.caller, this.limits);
    for (const { req, outcome } of this.log) {
      let got: string;
      try {
        got = fingerprint(again.execute(req));
      } catch (e) {
        if (!(e instanceof XsError)) throw e;
        got = e.code;
      }
      if (got !== outcome) return undefined;
    }
    return again;
  }

  /**
   * `rerunOn(live)` is a new transaction on `live` that has executed this one's requests, in
   * order, whatever they answer now (errors included). What a retry of this transaction would
   * observe: the server uses it to protect a retry's reads (server/fairness.ts).
   */
  rerunOn(live: Store): Transaction {
    const again = new Transaction(live, this.caller, this.limits);
    for (const { req } of this.log) {
      try {
        again.execute(req);
      } catch (e) {
        if (!(e instanceof XsError)) throw e;
      }
    }
    return again;
  }

  /** Changes for watches: one per node, in first-touch order, with the last kind (spec §8.7). */
  changes(): Change[] {
    const index = new Map<string, number>();
    const out: Change[] = [];
    for (const c of this.changed) {
      const i = index.get(c.path);
      if (i === undefined) {
        index.set(c.path, out.length);
        out.push(c);
      } else out[i] = { path: c.path, kind: c.kind };
    }
    return out;
  }

  /** `quotaOn(live)` is live's quota plus what this transaction changed (live + T2 − T1). */
  quotaOn(live: Store): Store['quota'] {
    return this.store.quota === this.base.quota ? live.quota : addAll(live.quota, this.counts);
  }

  /** True when the transaction observed the special nodes' permissions or a quota count. */
  dependsOnGlobals(live: Store): boolean {
    if (this.special && live.special !== this.base.special) return true;
    // Only the caller's own count is checked when it creates nodes (operations.ts `create`).
    return !this.caller.privileged && owned(live.quota, this.caller.domid) !== owned(this.base.quota, this.caller.domid);
  }

  /** Set once the transaction can no longer commit (see `execute`). */
  get failed(): XsErrorCode | undefined {
    return this.failure;
  }
}

function fingerprint(reply: StoreReply): string {
  switch (reply.kind) {
    case 'ok':
      return 'OK';
    case 'value':
      return `v${reply.value}`;
    case 'names':
      return `d${reply.names.join('\0')}`;
    case 'perms':
      return `p${formatPerms(reply.perms).join('\0')}`;
  }
}

/**
 * `commit(live, tx)` decides the transaction against the live version (see the header comment):
 * committed with the next live version and the changes to fire, conflict (EAGAIN), or failed.
 * Never modifies `live`.
 */
export function commit(live: Store, tx: Transaction): CommitResult {
  if (tx.failed !== undefined) return { kind: 'failed', code: tx.failed };
  const t1 = tx.base;
  const t2 = tx.store;
  if (t2.root === t1.root && t2.special === t1.special) {
    return { kind: 'committed', store: live, changes: tx.changes(), path: 'read-only' };
  }
  if (live === t1) return { kind: 'committed', store: advance(t2, live), changes: tx.changes(), path: 'fast' };
  const p = tx.lowpath ?? [];
  const sub = lookup(t2.root, p);
  if (!tx.dependsOnGlobals(live) && sub !== undefined && lookup(live.root, p) === lookup(t1.root, p)) {
    const grafted: Store = {
      root: replace(live.root, p, sub),
      quota: tx.quotaOn(live),
      special: t2.special === t1.special ? live.special : t2.special,
      generation: live.generation,
    };
    return { kind: 'committed', store: advance(grafted, live), changes: tx.changes(), path: 'graft' };
  }
  const again = tx.replayOn(live);
  if (again === undefined) return { kind: 'conflict' };
  return { kind: 'committed', store: advance(again.store, live), changes: again.changes(), path: 'replay' };
}
