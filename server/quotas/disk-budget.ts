/**
 * The per-domain disk budget of `--data-dir` (issue 17: one guest rewriting a node with 2 KiB
 * values made 27 MB/s of log and filled a small disk). Each guest has a token bucket of log bytes:
 * `rate` bytes a second, up to `burst` saved. A commit is always taken whole — what a request
 * writes is known only once it has run — and charged afterwards; a domain that is then in debt
 * is slowed, not failed: its connections are not read until the debt is paid back (the caller's
 * `throttle`), as a client that does not read its replies is (XSA-326, `xb.ml` `can_input`).
 * Xen clients cope with a slow xenstored (they block on the ring); an error such as EQUOTA or
 * EAGAIN from a plain write is something libxenstore callers treat as fatal or never retry.
 *
 * dom0 and other privileged callers are not charged: the toolstack's writes are the host's own.
 * One guest's debt never slows another: buckets are per domain.
 */
export interface DiskBudgetOptions {
  /** Bytes a second a domain may add to the log (`--log-rate`); 0 turns the budget off. */
  readonly rate: number;
  /** Bytes a domain may write at once after being quiet (`--log-burst`). */
  readonly burst: number;
}

export const DISK_BUDGET_DEFAULT: DiskBudgetOptions = { rate: 64 * 1024, burst: 1024 * 1024 };

interface Bucket {
  tokens: number;
  at: number;
}

export class DiskBudget {
  private readonly buckets = new Map<number, Bucket>();

  constructor(
    readonly options: DiskBudgetOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * `charge(domid, bytes)` takes `bytes` from the domain's bucket and returns how many milliseconds
   * its requests must wait before the next one is read (0: none).
   */
  charge(domid: number, bytes: number): number {
    const { rate, burst } = this.options;
    if (rate <= 0) return 0;
    const now = this.now();
    let b = this.buckets.get(domid);
    if (b === undefined) {
      b = { tokens: burst, at: now };
      this.buckets.set(domid, b);
    }
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) * rate) / 1000) - bytes;
    b.at = now;
    return b.tokens >= 0 ? 0 : Math.ceil((-b.tokens * 1000) / rate);
  }

  /** `forget(domid)`: the domain is released; a domain reusing its id starts with a full bucket. */
  forget(domid: number): void {
    this.buckets.delete(domid);
  }
}
