import type { Log } from '../logger.js';
import type { Connection } from '../connection/index.js';

/** Default for `--drop-log-ms`: how often each connection's dropped events are summed up in the log. */
export const DROP_LOG_MS = 10_000;

interface Pending {
  /** Events dropped for the connection since its last line. */
  n: number;
  why: string;
  path: string;
}

/**
 * The watch events the daemon dropped (XSA-324 too large, XSA-326 a watcher that does not read):
 * counted in O(1) per event, and logged as ONE line per connection per interval, never a line per
 * event. Issue 18: a line per event (or per thousand) let a guest that never reads its 128 watches
 * turn dom0's writes into gigabytes of log. cxenstored drops such events silently (its trace file
 * only); we keep a count an operator can see (CONTROL `stats`, each connection's summary line).
 */
export class EventDrops {
  /** Every event dropped since start. */
  total = 0;
  private readonly pending = new Map<Connection, Pending>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Log,
    private readonly intervalMs = DROP_LOG_MS,
  ) {}

  /** `note(conn, path, why)`: one event for `conn` was dropped. */
  note(conn: Connection, path: string, why: string): void {
    this.total++;
    const p = this.pending.get(conn);
    if (p !== undefined) {
      p.n++;
      p.why = why;
      p.path = path;
      return;
    }
    this.pending.set(conn, { n: 1, why, path });
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.report(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** Logs the interval's line for each connection that dropped events, and stops when none did. */
  report(): void {
    for (const [conn, p] of this.pending) {
      this.log.warn({ conn: conn.id, domid: conn.caller.domid, dropped: p.n, total: conn.droppedEvents, path: p.path, intervalMs: this.intervalMs }, `${p.why}: ${p.n} watch events dropped`);
    }
    this.pending.clear();
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
