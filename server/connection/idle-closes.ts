import type { Log } from '../logger.js';
import type { Transport } from '../transport/index.js';

/** At most this many idle connections are closed in one turn of the event loop. */
export const CLOSES_PER_TURN = 32;

/** Default for how often the idle closes are summed up in the log (as `--drop-log-ms` for dropped events). */
export const IDLE_LOG_MS = 10_000;

/**
 * The connections closed because a request stayed half-sent (connection-input.ts, `--request-idle-ms`):
 * each costs O(1) when its timer fires (queued and counted: no Error, no stack trace, no log line),
 * and they are closed at most `perTurn` per turn of the event loop, the rest at the next
 * (`setImmediate`, after every other client's pending I/O). The log gets ONE line per interval for
 * all of them, as dropped events do (dispatch/event-drops.ts). Issue 18: 1,000 slow-loris
 * connections timing out together each built an Error with its stack, logged a WARN line and
 * closed in one go: a 38 ms turn while others waited.
 */
export class IdleCloses {
  /** Every connection closed for being idle since start (CONTROL `stats`). */
  total = 0;
  /** Closed since the last log line. */
  private pending = 0;
  private readonly queue: Transport[] = [];
  /** The next transport of `queue` to close. */
  private head = 0;
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Log | undefined,
    /** How long a request may stay half-sent: what the log line says. */
    private readonly idleMs: number,
    private readonly intervalMs = IDLE_LOG_MS,
    private readonly perTurn = CLOSES_PER_TURN,
  ) {}

  /** `close(transport)`: its request stayed half-sent for the idle interval; closed within a few turns. */
  close(transport: Transport): void {
    this.total++;
    this.pending++;
    this.queue.push(transport);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
    if (this.timer === undefined && this.log !== undefined) {
      this.timer = setTimeout(() => this.report(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** Closes the next `perTurn`, and leaves the rest to the next turn. */
  private drain(): void {
    const end = Math.min(this.queue.length, this.head + this.perTurn);
    for (; this.head < end; this.head++) {
      const t = this.queue[this.head]!;
      this.queue[this.head] = undefined as unknown as Transport;
      t.destroy();
    }
    if (this.head < this.queue.length) {
      setImmediate(() => this.drain());
      return;
    }
    this.queue.length = 0;
    this.head = 0;
    this.scheduled = false;
  }

  /** Logs the interval's line (how many were closed); the next close starts the next interval. */
  report(): void {
    if (this.pending > 0) {
      this.log?.warn({ closed: this.pending, total: this.total, idleMs: this.idleMs, intervalMs: this.intervalMs }, `${this.pending} connections closed: a request left half-sent for ${this.idleMs} ms`);
    }
    this.pending = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
