import type { History } from '../../store/index.js';

/**
 * Until the event loop has read its sockets again and sent what they asked: the requests that
 * arrived meanwhile are answered first. Three hops of `setImmediate`: a pass runs either from a
 * read (the poll phase: one hop resumes in this turn's check phase, before any other client's
 * input is read) or from the check phase (one hop resumes first thing in the next turn's check
 * phase, where it would run before the replies that turn's reads made are flushed:
 * connection/flush-scheduler.ts flushes there too). Measured with one hop: a guest's read waited
 * for both passes of a two-pass rebuild (122 ms), with two, the same; an idle turn costs
 * microseconds.
 */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(() => setImmediate(resolve))));

/**
 * The moments history queries read, rebuilt a pass per turn of the event loop (store/history.ts
 * `rebuild`): a moment far back is its records undone, ~100 ms for 10^5 short ones and seconds
 * for a window of large values, and done at once it held up every guest's requests that long
 * (issue 14; xenstored serves all of them on one thread). Between passes (at most the history's
 * undo span of records each, 4 MiB by default) other requests are served. One rebuild at a time
 * for the whole daemon, in the order asked: what they hold at once is one rebuild's, as when a
 * query ran whole, and queries of one moment (the web view asks three a row) find it kept by the
 * first. Each connection asks one request at a time, so the queue is bounded by the connections.
 */
export class MomentBuilder {
  private last: Promise<void> = Promise.resolve();

  constructor(private readonly pause: () => Promise<void> = nextTurn) {}

  /** `build(h, g)`: moment `g` of `h` rebuilt and kept, after the rebuilds asked before it; rejects as `at(g)` throws. */
  build(h: History, g: number): Promise<void> {
    const run = this.last.then(async () => {
      const r = h.rebuild(g);
      while (r.step() === undefined) await this.pause();
    });
    this.last = run.catch(() => undefined);
    return run;
  }
}
