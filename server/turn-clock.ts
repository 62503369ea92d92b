/**
 * The wall clock as history stamps commits: read once per turn of the event loop, not once per
 * commit. On this machine's clock (kvm-clock) `Date.now()` costs ~60 ns, about 1.5% of a
 * pipelined write's CPU, and a pipeline's requests are all answered in one turn (issue 14:
 * history's cost per write must stay within the machine's noise). The reading expires in a
 * microtask, i.e. when the callback that is running returns (a socket's data, a timer, a resumed
 * slice), so a commit's time is at most that callback's age: a pipelined input's slice
 * (connection-input.ts `SLICE_MS`) plus the request being answered. History keeps its records in
 * time order whatever the clock says (store/history.ts `record`).
 */
export class TurnClock {
  private time = 0;
  private fresh = false;
  private readonly expire = (): void => {
    this.fresh = false;
    this.turnEnded();
  };

  /**
   * `turnEnded`: called as the reading expires, i.e. when a turn that read the clock ends (the
   * daemon's history writes the records waiting for it then: store/history.ts `settle`).
   */
  constructor(
    private readonly read: () => number = Date.now,
    private readonly turnEnded: () => void = () => {},
  ) {}

  /** Milliseconds since the epoch, as `read` said at the first call of this turn. */
  now(): number {
    if (!this.fresh) {
      this.time = this.read();
      this.fresh = true;
      queueMicrotask(this.expire);
    }
    return this.time;
  }
}
