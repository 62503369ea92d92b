import type { IntervalHistogram } from 'node:perf_hooks';

/**
 * How long the event loop was held at once: the lateness of a 1 ms timer (`perf_hooks`), the
 * time everyone else waited behind the longest turn (issue 18: one client must not hold the loop
 * for more than a few ms while others wait). Off until first asked for (CONTROL `loop`), so a
 * daemon nobody measures pays nothing: not even loading `perf_hooks` (~2 ms of a cold start on
 * Node 22 and 24 as an ES import, issue 16), taken then with `process.getBuiltinModule`.
 */
export class LoopMonitor {
  private histogram: IntervalHistogram | undefined;

  /** `report(reset)`: the longest delay and the 99th percentile since the last reset, in ms. */
  report(reset: boolean): string {
    let h = this.histogram;
    if (h === undefined) {
      h = this.histogram = process.getBuiltinModule('node:perf_hooks').monitorEventLoopDelay({ resolution: 1 });
      h.enable();
    }
    const out = h.count === 0 ? 'max-ms 0 p99-ms 0 samples 0' : `max-ms ${(h.max / 1e6).toFixed(2)} p99-ms ${(h.percentile(99) / 1e6).toFixed(2)} samples ${h.count}`;
    if (reset) h.reset();
    return out;
  }
}
