import type { Flushable } from './connection/index.js';

/**
 * The wall clock as history stamps commits: read once per turn of the event loop, not once per
 * commit. On this machine's clock (kvm-clock) `Date.now()` costs ~60 ns, about 1.5% of a
 * pipelined write's CPU, and a pipeline's requests are all answered in one turn (issue 14:
 * history's cost per write must stay within the machine's noise). History keeps its records in
 * time order whatever the clock says (store/history.ts `record`).
 *
 * The reading expires when the turn ends: `atTurnEnd` takes the clock as one more thing to flush
 * then. The daemon hands it to its flush scheduler (connection/flush-scheduler.ts), whose pass in
 * the check phase (`setImmediate`) a turn that answers anything pays for already, so expiring
 * costs nothing more. A microtask per reading, the way this clock first expired, ended it with
 * the callback that read it, but cost a request-and-reply client ~0.5 µs a write (a microtask
 * checkpoint per socket callback: issue 14, bench/RESULTS.md "request and reply"). So a commit's
 * time is at most as old as its turn: the socket callbacks before it in the same poll (each
 * connection's input at most `SLICE_MS`, connection-input.ts), after which its reply leaves too.
 */
export class TurnClock implements Flushable {
  private time = 0;
  private fresh = false;

  /**
   * `turnEnded`: called as the reading expires, i.e. when a turn that read the clock ends (the
   * daemon writes the turn's history records to disk then, when no log batch took them first).
   * `atTurnEnd(clock)` must call `clock.flush()` once, when the turn ends (default: a microtask,
   * i.e. when the running callback returns).
   */
  constructor(
    private readonly read: () => number = Date.now,
    private readonly turnEnded: () => void = () => {},
    private readonly atTurnEnd: (clock: Flushable) => void = (clock) => queueMicrotask(() => clock.flush()),
  ) {}

  /** Milliseconds since the epoch, as `read` said at the first call of this turn. */
  now(): number {
    if (!this.fresh) {
      this.time = this.read();
      this.fresh = true;
      this.atTurnEnd(this);
    }
    return this.time;
  }

  /** The turn has ended: the next `now()` reads the clock again. */
  flush(): void {
    this.fresh = false;
    this.turnEnded();
  }
}
