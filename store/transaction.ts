import type { Caller } from './caller.js';
import { XsError, type XsErrorCode } from '../protocol/index.js';
import type { Limits } from './limits.js';
import { execute } from './operations.js';
import type { Children, XsNode } from './node.js';
import { parseNodePath, type NodePath } from './path.js';
import { formatPerms, samePerms } from './perms.js';
import { addAll, owned } from './quota.js';
import { isUpdate, requestBytes, type Change, type StoreReply, type StoreRequest } from './request.js';
import { advance, type Store } from './store.js';
import { deepestExisting } from './tree.js';

/**
 * A transaction is the pair (T1, T2) of the oxenstored paper (spec §9.2):
 *   T1 = `base`, the version the transaction started from (starting costs one pointer);
 *   T2 = `work`, its private version with its own updates applied.
 * Where oxenstored keeps one path p holding everything the transaction touched, we keep what it
 * really depended on and what it really did, as two small tries over the paths it used:
 *   `seen`  — its observations: for each request, the deepest existing node it looked at and which
 *             of that node's fields decided the answer (see `observe`): READ the value and perms,
 *             DIRECTORY the child names and perms, GET_PERMS / WRITE of an existing node / MKDIR
 *             of an existing node / SET_PERMS the perms; a request on a missing node the perms of
 *             its deepest existing ancestor `a` and the absence of the child `c` on the way down
 *             (they decide EACCES / ENOENT / what a creation inherits); RM of an existing node its
 *             whole subtree (the counts it gives back to the quota are those of every node below).
 *             Every node in `seen` is also observed to exist.
 *   `wrote` — its writes: a node's value (WRITE of an existing node), its perms (SET_PERMS), or a
 *             whole subtree (`whole`: the subtree created at `a/c` by WRITE or MKDIR, or removed
 *             by RM) whose every node the transaction alone decides from then on.
 * Inside a `whole` region nothing is observed: whatever the transaction reads there, it wrote. A
 * field the transaction itself wrote at a node is not observed there either.
 * It also keeps the log of its requests and their outcomes, for the last commit step.
 *
 * Commit (`commit` below) tries, in order, each step cheaper than the next:
 *  1. read-only: T2 is T1 — nothing to install. Serialized at its start, where it read a consistent
 *     snapshot; such a transaction never fails (as in oxenstored since XSA-206).
 *  2. fast: the live version L is still T1 (`===`): T2 becomes live.
 *  3. merge: every observation holds in L as in T1 (`agrees`, pruned wherever L and T1 share a
 *     subtree by reference), the special permissions and the caller's node count it depended on
 *     are unchanged (`dependsOnGlobals`): the result is L with the written fields replaced by
 *     T2's (`graft`). Quotas merge as L + (T2 − T1), where T2 − T1 is summed as the requests run.
 *  4. replay: re-run the logged requests against L. If every reply is identical to the one the
 *     client saw, the client could not tell the difference: the result is exactly what running the
 *     transaction alone at its commit point gives. The correctness backstop, and the judge of EAGAIN
 *     (a merge that declines never refuses anything by itself).
 *  5. otherwise EAGAIN, and the live store is untouched.
 *
 * Why a merge equals running the transaction alone at its commit point (spec §9.2: a transaction
 * must be serializable; ours serializes there). Run the requests r1..rn from L (states L0 = L,
 * L1, ...) and from T1 (T0 = T1, ..., Tn = T2). Claim, by induction on i: Li and Ti agree on every
 * field in `wrote` after step i, and each ri gets the same reply in both runs. Step i reads only
 * the fields recorded for it (the list above is what each operation in operations.ts reads: path
 * validity and value size need no state; the caller's node count is `dependsOnGlobals`). Each such
 * field either was written by an earlier step — equal in Li-1 and Ti-1 by induction — or was never
 * written, so it is L's in Li-1 and T1's in Ti-1, and `agrees` checked that those are equal. So ri
 * answers the same, and writes the same thing (a constant, or a function of fields it read: a
 * creation copies `a`'s perms; RM's quota counts come from a subtree observed whole). Fields
 * outside `wrote` are never changed: they stay L's in Ln and T1's in T2. Hence Ln is exactly
 * "L, with every written field taken from T2", which is what `graft` builds, and the replies, the
 * watch events (`changes`, a function of the requests and their success) and the quota deltas
 * (`counts`) are the transaction's own.
 * `graft` shortcuts by reference: a `whole` region is T2's subtree; a subtree where L === T1 is
 * T2's subtree (T2 differs from T1 only in written fields); a subtree the transaction did not
 * write is L's. Field-wise means the trap of a three-way node merge cannot happen: a transaction
 * that removes /a and then writes /a/x wrote /a whole, and its RM observed /a's whole subtree, so
 * a child another client added to /a meanwhile makes the merge decline, and replay decides (and
 * removes that child, as serial order demands). Likewise a write of the value a node already had
 * is still a write (recorded, not diffed): L's different value must be overwritten.
 * Reference equality does the pruning throughout: the work is proportional to the paths the
 * transaction used, never to the store.
 */
export type CommitPath = 'read-only' | 'fast' | 'merge' | 'replay';

export type CommitResult =
  | { readonly kind: 'committed'; readonly store: Store; readonly changes: readonly Change[]; readonly path: CommitPath }
  | { readonly kind: 'conflict' }
  | { readonly kind: 'failed'; readonly code: XsErrorCode };

interface Logged {
  readonly req: StoreRequest;
  readonly outcome: string;
}

/** Fields of one node a request observed (bits of `Seen.what`). */
const VALUE = 1;
const PERMS = 2;
const CHILDREN = 4;
const SUBTREE = 8;

/** The observation trie: one node per path segment the transaction observed at or through. */
class Seen {
  what = 0;
  /** Child names observed missing (the `c` of a request on a missing node). */
  absent: string[] | undefined;
  below: Map<string, Seen> | undefined;

  child(name: string): Seen {
    this.below ??= new Map();
    let s = this.below.get(name);
    if (s === undefined) this.below.set(name, (s = new Seen()));
    return s;
  }
}

/** The write trie: which fields of which nodes the transaction wrote. */
class Wrote {
  whole = false;
  value = false;
  perms = false;
  below: Map<string, Wrote> | undefined;

  child(name: string): Wrote {
    this.below ??= new Map();
    let w = this.below.get(name);
    if (w === undefined) this.below.set(name, (w = new Wrote()));
    return w;
  }
}

export class Transaction {
  private work: Store;
  private readonly log: Logged[] = [];
  private readonly changed: Change[] = [];
  /** Nodes gained or lost per domain so far: T2's quota minus T1's, for the merge. */
  private readonly counts = new Map<number, number>();
  private readonly seen = new Seen();
  private readonly wrote = new Wrote();
  private special = false;
  private failure: XsErrorCode | undefined;
  private logBytes = 0;

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

  /** Requests executed so far. */
  get size(): number {
    return this.log.length;
  }

  /**
   * `updates(max)`: the first `max` requests that may have changed something, in order (op and
   * path), for the history's record of the commit (store/history-record.ts).
   */
  updates(max: number): { op: StoreRequest['op']; path: string }[] {
    const out: { op: StoreRequest['op']; path: string }[] = [];
    for (const l of this.log) {
      if (out.length >= max) break;
      if (isUpdate(l.req.op)) out.push({ op: l.req.op, path: l.req.path });
    }
    return out;
  }

  /**
   * Bytes this transaction holds for its requests so far: each logged request's `requestBytes`
   * plus its recorded outcome (a READ keeps the value it saw, for replay). It only grows while the
   * transaction runs and is given back whole when the transaction ends, so the server charges it
   * to the caller's memory budget (spec §10.2 `memory`; XSA-326: many transactions each holding
   * large values ran cxenstored out of memory).
   */
  get bytes(): number {
    return this.logBytes;
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
    let parsed: NodePath | undefined;
    let k = -1;
    if (req.path.charCodeAt(0) === 0x40 /* @ */) {
      this.special = true; // the special permissions: observed and written as one (dependsOnGlobals)
    } else {
      try {
        parsed = parseNodePath(req.path, this.caller.domid, this.limits.pathMax);
      } catch {
        // An invalid path observes nothing: it fails the same way at any time (and `execute`
        // below throws the same error again).
      }
      if (parsed !== undefined) k = this.observe(req.op, parsed.segs);
    }
    try {
      const out = execute(this.work, this.caller, this.limits, req, parsed);
      if (k >= 0) this.record(req.op, parsed!.segs, k);
      this.work = out.store;
      for (const c of out.changes) this.changed.push(c);
      if (out.counts !== undefined) {
        for (const [domid, n] of out.counts) this.counts.set(domid, (this.counts.get(domid) ?? 0) + n);
      }
      const outcome = fingerprint(out.reply);
      this.log.push({ req, outcome });
      this.logBytes += requestBytes(req) + outcome.length;
      return out.reply;
    } catch (e) {
      if (e instanceof XsError) {
        this.log.push({ req, outcome: e.code });
        this.logBytes += requestBytes(req) + e.code.length;
      }
      throw e;
    }
  }

  /**
   * Records in `seen` what `op` on `segs` observes in T2 (see the header comment), before it runs;
   * failed requests observe too. Returns the number of leading segments that exist in T2 (`k`,
   * `segs.length` when the node does), or -1 when the node it looks at lies in a region the
   * transaction wrote whole: then there is nothing to observe, nor to record as written.
   */
  private observe(op: StoreRequest['op'], segs: readonly string[]): number {
    const n = segs.length;
    // The shallowest `whole` region on the path, and the write node at the path itself.
    let w: Wrote | undefined = this.wrote;
    let wholeAt = -1;
    for (let i = 0; w !== undefined; i++) {
      if (w.whole) {
        wholeAt = i;
        break;
      }
      if (i === n) break;
      w = w.below?.get(segs[i]!);
    }
    const k = deepestExisting(this.work.root, segs);
    if (wholeAt >= 0 && wholeAt <= k) return -1;
    let s = this.seen;
    for (let i = 0; i < k; i++) s = s.child(segs[i]!);
    if (k < n) {
      // A missing node: its deepest existing ancestor's perms decide, and the child on the way
      // down was missing — unless the transaction removed that child itself (then it is written).
      s.what |= PERMS;
      // An unprivileged creation is refused when the ancestor's value and child names outgrow the
      // node size (operations.ts `checkRecord`): its outcome depends on them too.
      // Only a creation checks that; any other request on a missing node fails or succeeds on
      // the ancestor's perms alone.
      if (!this.caller.privileged && (op === 'write' || op === 'mkdir')) s.what |= VALUE | CHILDREN;
      if (wholeAt !== k + 1) (s.absent ??= []).push(segs[k]!);
      return k;
    }
    let what: number;
    switch (op) {
      case 'read':
        what = VALUE | PERMS;
        break;
      case 'directory':
        what = CHILDREN | PERMS;
        break;
      case 'rm':
        what = n === 0 ? 0 : SUBTREE; // RM of / is EINVAL whatever the store holds
        break;
      case 'write':
        // A guest's larger value must fit beside the node's child names (operations.ts `checkRecord`).
        what = this.caller.privileged ? PERMS : PERMS | CHILDREN;
        break;
      default:
        what = PERMS;
    }
    // A field the transaction wrote here is its own, whatever L holds (w is the node at `segs`).
    if (w !== undefined && wholeAt < 0) {
      if (w.value) what &= ~VALUE;
      if (w.perms) what &= ~PERMS;
    }
    s.what |= what;
    return k;
  }

  /** Records in `wrote` what `op` on `segs` wrote, after it succeeded; `k` as `observe` found it. */
  private record(op: StoreRequest['op'], segs: readonly string[], k: number): void {
    const n = segs.length;
    let at: number;
    if (op === 'write' || op === 'mkdir') {
      if (k === n && op === 'mkdir') return; // an existing node: MKDIR changes nothing
      at = k === n ? n : k + 1; // WRITE of an existing node writes its value; else a creation
    } else if (op === 'rm') {
      if (k < n) return; // already missing: OK, nothing removed
      at = n;
    } else if (op === 'set-perms') {
      at = n;
    } else {
      return;
    }
    let w = this.wrote;
    for (let i = 0; i < at; i++) w = w.child(segs[i]!);
    if (at === k + 1 || op === 'rm') {
      w.whole = true;
      w.below = undefined; // everything below is T2's now
    } else if (op === 'write') w.value = true;
    else w.perms = true;
  }

  /**
   * `mergeOnto(live)` is the merge step (see the header comment): the store that running this
   * transaction alone on `live` gives, or undefined when an observation does not hold in `live`
   * (replay decides then). Call only when `dependsOnGlobals(live)` is false.
   */
  mergeOnto(live: Store): Store | undefined {
    if (!agrees(live.root, this.base.root, this.seen)) return undefined;
    const root = graft(live.root, this.base.root, this.work.root, this.wrote);
    if (root === undefined || root === GONE) return undefined; // the root is never written whole
    const t1 = this.base;
    const t2 = this.work;
    return {
      root,
      quota: this.quotaOn(live),
      special: t2.special === t1.special ? live.special : t2.special,
      generation: live.generation,
    };
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
   * observe: the server uses it to protect a retry's reads (server/transactions/fairness.ts).
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

  /**
   * `abandon(code)` fails the transaction for good: its later requests and its commit answer
   * `code`. The daemon abandons open transactions with EAGAIN when the live store is rolled back
   * (a log write failed): some of their replies were turned into errors, so what they hold is no
   * longer what their client was told.
   */
  abandon(code: XsErrorCode): void {
    this.failure ??= code;
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
 * `agrees(l, t, seen)`: every observation recorded in `seen` gives the same answer at L's node `l`
 * as at T1's node `t` (the same path in both). Equal subtrees (`===`) agree on everything; a node
 * in `seen` must exist in L (in T1 it does: the transaction saw it there, or it lies in a region
 * the transaction wrote, which is not observed).
 */
function agrees(l: XsNode | undefined, t: XsNode | undefined, seen: Seen): boolean {
  if (l === t) return true;
  if (l === undefined || t === undefined) return false;
  const what = seen.what;
  if (what !== 0) {
    if ((what & SUBTREE) !== 0) return false;
    if ((what & VALUE) !== 0 && l.value !== t.value) return false;
    if ((what & PERMS) !== 0 && !samePerms(l.perms, t.perms)) return false;
    if ((what & CHILDREN) !== 0 && !sameNames(l.children, t.children)) return false;
  }
  if (seen.absent !== undefined) {
    for (const name of seen.absent) if (l.children.has(name)) return false;
  }
  if (seen.below !== undefined) {
    for (const [name, below] of seen.below) {
      if (!agrees(l.children.get(name), t.children.get(name), below)) return false;
    }
  }
  return true;
}

function sameNames(a: Children, b: Children): boolean {
  if (a.size !== b.size) return false;
  for (const name of a.keys()) if (!b.has(name)) return false;
  return true;
}

/** `graft`'s answer for a node the merged tree does not have. */
const GONE: unique symbol = Symbol('gone');

/**
 * `graft(l, t1, t2, wrote)` is L's node `l` with the fields `wrote` marks taken from T2's node `t2`
 * (`t1`: T1's node at the same path); GONE where the result has no node. Undefined when a node the merge needs is missing, which the
 * observations rule out (the caller then falls back to replay rather than trust this).
 */
function graft(l: XsNode | undefined, t1: XsNode | undefined, t2: XsNode | undefined, wrote: Wrote): XsNode | undefined | typeof GONE {
  if (wrote.whole) return t2 ?? GONE;
  if (l === t1) return t2 ?? GONE;
  if (l === undefined || t2 === undefined) return undefined;
  let node = l;
  if (wrote.value) node = node.withValue(t2.value);
  if (wrote.perms && !samePerms(node.perms, t2.perms)) node = node.withPerms(t2.perms);
  if (wrote.below !== undefined) {
    for (const [name, below] of wrote.below) {
      const child = graft(l.children.get(name), t1?.children.get(name), t2.children.get(name), below);
      if (child === undefined) return undefined;
      node = child === GONE ? node.withoutChild(name) : node.withChild(name, child);
    }
  }
  return node;
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
  if (!tx.dependsOnGlobals(live)) {
    const merged = tx.mergeOnto(live);
    if (merged !== undefined) return { kind: 'committed', store: advance(merged, live), changes: tx.changes(), path: 'merge' };
  }
  const again = tx.replayOn(live);
  if (again === undefined) return { kind: 'conflict' };
  return { kind: 'committed', store: advance(again.store, live), changes: again.changes(), path: 'replay' };
}
