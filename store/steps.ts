/**
 * Work done a step at a time: a generator that stops (`yield`s nothing) between steps and returns
 * its result at the end. A restart reads history back this way, a step per turn of the daemon's
 * event loop (server/daemon.ts `readHistoryBack`); anything else runs the steps in one go.
 */
export type Steps<T> = Generator<void, T>;

/** `toEnd(steps)`: runs every step at once; the result. */
export function toEnd<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
  }
}
