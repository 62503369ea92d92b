import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Daemon } from '../daemon.js';
import { idleExitTimer } from './idle-exit.js';

/** The part of a Daemon the timer reads: the activity flag, domains, connections and watches. */
function fakeDaemon(state: { domains?: number; watches?: number; transactions?: number } = {}) {
  const conn = { transactions: { size: state.transactions ?? 0 } };
  return {
    active: false,
    touch() {
      this.active = true;
    },
    domains: { all: () => (state.domains ? [{}] : [])[Symbol.iterator]() },
    connections: new Set([conn]),
    watches: { count: () => state.watches ?? 0 },
  };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('idleExitTimer (--idle-exit)', () => {
  it('never fires while requests keep coming, and fires SECONDS after the last one', () => {
    const d = fakeDaemon();
    const exit = vi.fn();
    idleExitTimer(d as unknown as Daemon, 2, exit);
    for (let t = 0; t < 20; t++) {
      d.touch();
      vi.advanceTimersByTime(400);
    }
    expect(exit).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1500);
    expect(exit).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1500);
    expect(exit).toHaveBeenCalledTimes(1);
  });

  it('does not fire while a client holds a watch or a transaction, or a domain is introduced', () => {
    for (const state of [{ watches: 1 }, { transactions: 1 }, { domains: 1 }]) {
      const exit = vi.fn();
      const timer = idleExitTimer(fakeDaemon(state) as unknown as Daemon, 1, exit);
      vi.advanceTimersByTime(10_000);
      expect(exit).not.toHaveBeenCalled();
      clearInterval(timer);
    }
  });
});
