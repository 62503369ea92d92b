/** What the scheduler flushes: a connection's output. */
export interface Flushable {
  flush(): void;
}

/**
 * The outputs with frames queued since the last flush, flushed together once per turn of the event
 * loop. They are flushed in its check phase (setImmediate), after every socket that was readable
 * in this poll has been read and answered: the replies of all clients then leave together, and no
 * reply's write (which wakes its reader, and on a busy machine lets it take our CPU) comes before
 * the next client's request has been handled. Measured: see bench/RESULTS.md, "Wire protocol".
 *
 * One per daemon. An output schedules itself at most once per turn (it keeps its own flag), so
 * `schedule` is a push and, for the first of a turn, one `setImmediate`.
 */
export class FlushScheduler {
  private readonly due: Flushable[] = [];
  /** Bound once: scheduling a turn's flush allocates nothing. */
  private readonly run = (): void => this.flushAll();

  /** `schedule(output)` flushes `output` at the end of this turn of the event loop. */
  schedule(output: Flushable): void {
    this.due.push(output);
    if (this.due.length === 1) setImmediate(this.run);
  }

  /**
   * Flushes every output scheduled, in order, including those scheduled while it runs (an
   * in-process client may answer a write with a request at once): they leave in this turn too.
   */
  private flushAll(): void {
    const due = this.due;
    for (let i = 0; i < due.length; i++) due[i]!.flush();
    due.length = 0;
  }
}
