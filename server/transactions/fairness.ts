import type { Store, Transaction } from '../../store/index.js';
import type { Connection } from '../connection/index.js';

/**
 * Transaction fairness: the TURN. A bounded rule so that a transaction that keeps losing to
 * conflicting commits eventually wins, without ever committing anything that is not serializable,
 * without showing a transaction anything but its snapshot (spec §9.1, §16 check 19), and without
 * an EAGAIN that the store does not demand (every EAGAIN still means "your reads changed").
 *
 * Why: commit is first-come-first-served (store/transaction.ts). When every transaction reads
 * something the others change — a toolstack listing dom0's backend directory while VMs start — a
 * client can lose again and again while others commit. oxenstored answers with conflict credit
 * (spec §9.2 steps 4–5: the domains whose commits made others fail are paused), but it never
 * blames dom0, so dom0's own clients can still starve each other; cxenstored has no rule at all.
 *
 * The rule, all in the server (the store stays pure; it only lends `replayOn` and `rerunOn`):
 * 1. Each connection counts its consecutive EAGAINs (its streak); a commit resets it.
 * 2. A connection whose streak reached THRESHOLD is starving. Its next TRANSACTION_START takes
 *    the turn if it is free, else waits for it (the reply is held, as oxenstored pauses a domain;
 *    waiting connections are served first come, first served).
 * 3. The turn's transaction P RESERVES what it reads: the replies it has had so far, and the
 *    replies its failed attempt had, re-run on P's snapshot (a retry loop repeats its requests,
 *    so that is what P is about to read). Another connection's commit, or its plain change
 *    outside a transaction (WRITE, MKDIR, RM, SET_PERMS: the daemon's `applyFor`), that would
 *    change any of those replies WAITS (its reply is held, and that connection reads nothing
 *    more) until the turn ends, and is then decided as usual against the store of that moment.
 *    Changes that touch nothing reserved go ahead, unseen by P, which keeps its snapshot.
 * 4. The turn ends when P commits or aborts, or its connection closes, and passes to the next
 *    waiting connection, after the held commits and writes are decided. If P still fails (a read
 *    its failed attempt did not make), the connection keeps the turn for its next attempt.
 * Bounds, by count: a transaction that repeats its requests fails at most THRESHOLD times because
 * of others' changes, whoever makes them (another domain's transactions or plain writes; issue 18), waits
 * for at most one turn per connection ahead of it, and then commits. A turn holds back at most
 * MAX_HELD commits and writes and then ends. And a turn ends when its holder makes no progress for `idleMs`
 * (`--turn-idle-ms`) while others wait: a holder that stalls (or a guest that opens a transaction
 * and sits on it) cannot hold others back for longer, and a client that waits on one of its
 * connections for another (a sequential driver of several connections) is not deadlocked. This
 * is the one place time enters the rule, as a liveness guard: a stalled holder and a deadlocked
 * one look the same from here.
 */
export const THRESHOLD = 1;
export const MAX_HELD = 256;
/** Default for `--turn-idle-ms`. */
export const IDLE_MS = 250;

export class Fairness {
  private readonly streaks = new Map<Connection, number>();
  /** The last attempt that failed with EAGAIN, per starving connection. */
  private readonly failedAttempt = new Map<Connection, Transaction>();
  /** The connection holding the turn, and its transaction once started. */
  private owner: Connection | undefined;
  private ownerTx: number | undefined;
  /** The failed attempt's requests, re-run on P's snapshot: what P is expected to read. */
  private expected: Transaction | undefined;
  private held = 0;
  /** Progress of the holder at the last idle check. */
  private lastMark = -1;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Starving connections waiting to start a transaction with the turn, first come first served. */
  private readonly waitingStarts: { conn: Connection; go: () => void }[] = [];
  /** Commits waiting for the turn to end. */
  private heldCommits: (() => void)[] = [];
  readonly stats = { turns: 0, held: 0, idle: 0, exhausted: 0 };

  /**
   * `enabled` false: plain first-come-first-served commits (`--no-fairness`, for comparison).
   * `idleMs`: how long a holder may make no progress while others wait for it.
   */
  constructor(
    readonly enabled = true,
    readonly idleMs = IDLE_MS,
  ) {}

  /** `streak(conn)`: consecutive EAGAINs of this connection's transactions. */
  streak(conn: Connection): number {
    return this.streaks.get(conn) ?? 0;
  }

  /** Who holds the turn (for CONTROL stats and tests). */
  get holder(): Connection | undefined {
    return this.owner;
  }

  /**
   * `admit(conn)` is called before a TRANSACTION_START: undefined to go ahead now, or a promise
   * that resolves when a starving connection gets the turn.
   */
  admit(conn: Connection): Promise<void> | undefined {
    if (!this.enabled || this.streak(conn) < THRESHOLD || this.owner === conn) return undefined;
    if (this.owner === undefined) {
      this.grant(conn);
      return undefined;
    }
    return new Promise((go) => this.waitingStarts.push({ conn, go }));
  }

  /** A transaction was opened: the turn's connection's first one becomes P. */
  started(conn: Connection, txId: number, tx: Transaction): void {
    if (this.owner !== conn || this.ownerTx !== undefined) return;
    this.ownerTx = txId;
    this.expected = this.failedAttempt.get(conn)?.rerunOn(tx.base);
  }

  /** A transaction ended (after `commit`, or aborted): streaks and the turn. */
  ended(conn: Connection, txId: number, tx: Transaction, outcome: 'committed' | 'conflict' | 'aborted' | 'failed'): void {
    if (conn.state !== 'open') return;
    if (outcome === 'conflict') {
      this.streaks.set(conn, this.streak(conn) + 1);
      this.failedAttempt.set(conn, tx);
    } else if (outcome === 'committed') {
      this.streaks.delete(conn);
      this.failedAttempt.delete(conn);
    }
    if (this.owner !== conn || this.ownerTx !== txId) return;
    this.ownerTx = undefined;
    this.expected = undefined;
    // A turn transaction that still lost keeps the turn for its next attempt (rule 4).
    if (outcome !== 'conflict') this.release();
  }

  /** The connection is gone: forget it, and pass the turn on if it held it. */
  closed(conn: Connection): void {
    this.streaks.delete(conn);
    this.failedAttempt.delete(conn);
    const i = this.waitingStarts.findIndex((w) => w.conn === conn);
    if (i >= 0) this.waitingStarts.splice(i, 1);
    if (this.owner === conn) this.release();
  }

  /**
   * `blocks(conn, next)`: a promise of the turn's end when installing `next` (a commit of `conn`)
   * would change a reply the turn's transaction has had or is expected to have; else undefined.
   */
  blocks(conn: Connection, next: Store): Promise<void> | undefined {
    if (this.owner === undefined || this.owner === conn || this.ownerTx === undefined) return undefined;
    const p = this.owner.transactions.get(this.ownerTx);
    if (p === undefined) return undefined;
    if (p.replayOn(next) !== undefined && (this.expected === undefined || this.expected.replayOn(next) !== undefined)) {
      return undefined;
    }
    if (this.held >= MAX_HELD) {
      this.stats.exhausted++;
      this.release();
      return undefined;
    }
    this.held++;
    this.stats.held++;
    return new Promise((go) => this.heldCommits.push(go));
  }

  private grant(conn: Connection): void {
    this.owner = conn;
    this.ownerTx = undefined;
    this.expected = undefined;
    this.held = 0;
    this.lastMark = -1;
    this.stats.turns++;
    if (this.idleTimer === undefined) {
      this.idleTimer = setInterval(() => this.checkIdle(), this.idleMs / 2);
      this.idleTimer.unref();
    }
  }

  /** Ends the turn of a holder that did nothing for `idleMs` (two ticks) while others wait. */
  private checkIdle(): void {
    if (this.owner === undefined) {
      clearInterval(this.idleTimer);
      this.idleTimer = undefined;
      return;
    }
    if (this.waitingStarts.length === 0 && this.heldCommits.length === 0) {
      this.lastMark = -1;
      return;
    }
    const p = this.ownerTx === undefined ? undefined : this.owner.transactions.get(this.ownerTx);
    const mark = p === undefined ? (this.ownerTx ?? 0) * 2 ** 20 : this.ownerTx! * 2 ** 20 + p.size + 1;
    if (mark === this.lastMark) {
      this.stats.idle++;
      this.release();
    } else {
      this.lastMark = mark;
    }
  }

  private release(): void {
    this.owner = undefined;
    this.ownerTx = undefined;
    this.expected = undefined;
    // Held commits are decided first (in the order they came), then the next turn begins.
    const held = this.heldCommits;
    this.heldCommits = [];
    for (const go of held) go();
    const next = this.waitingStarts.shift();
    if (next !== undefined) {
      this.grant(next.conn);
      next.go();
    }
  }
}
