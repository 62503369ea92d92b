import type { Log } from '../logger.js';
import { XsError, type XsErrorCode } from '../../store/index.js';

/** Backoff between attempts to write once the log has failed: a full disk is probed, not hammered. */
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 1000;

/**
 * The write-ahead log's health. While the log cannot be written (a full disk: ENOSPC, EDQUOT; or
 * an I/O error), a write is refused with that Xen error before it changes anything, except once
 * the backoff is over: that one is tried, and its success ends the outage — writes resume without
 * a restart. Reads never look here.
 *
 * Logging is one line when the outage starts and one when it ends, with the counts of failed
 * attempts and refused writes: a guest retrying at full speed must not turn a full disk into a
 * flood of log lines (which would fill the disk that holds the journal's log, if it is the same).
 */
export class LogOutage {
  /** The Xen error writes get while the log fails; undefined while it works. */
  code: XsErrorCode | undefined;
  private since = 0;
  private retryAt = 0;
  private delay = 0;
  private failures = 0;
  private refused = 0;

  constructor(
    private readonly log: Log,
    private readonly now: () => number = Date.now,
  ) {}

  /** `check()` throws the outage's XsError while writes are refused; returns when one may be tried. */
  check(): void {
    if (this.code === undefined || this.now() >= this.retryAt) return;
    this.refused++;
    throw new XsError(this.code, 'the write-ahead log cannot be written');
  }

  /** `failed(e)` records a batch that could not be made durable; returns the Xen error for its requests. */
  failed(e: unknown): XsErrorCode {
    const errno = (e as NodeJS.ErrnoException).code;
    const code: XsErrorCode = errno === 'ENOSPC' || errno === 'EDQUOT' ? 'ENOSPC' : 'EIO';
    this.failures++;
    if (this.code === undefined) {
      this.since = this.now();
      this.delay = RETRY_FIRST_MS;
      this.log.error({ err: (e as Error).message, answer: code }, 'write-ahead log write failed; the store is back at the last durable version and writes are refused until the log can be written');
    } else {
      this.delay = Math.min(this.delay * 2, RETRY_MAX_MS);
    }
    this.code = code;
    this.retryAt = this.now() + this.delay;
    return code;
  }

  /** `recovered()`: a batch was written; ends an outage (one summary line). */
  recovered(): void {
    if (this.code === undefined) return;
    const ms = this.now() - this.since;
    this.log.warn({ ms, failedAttempts: this.failures, refusedWrites: this.refused }, 'write-ahead log writable again; writes resume');
    this.code = undefined;
    this.failures = this.refused = 0;
  }
}
