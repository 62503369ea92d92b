import { afterEach, describe, expect, it, vi } from 'vitest';
import { FlushScheduler, type Flushable } from './flush-scheduler.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

/** An output that records its flushes in `log`, and may schedule more when flushed. */
function output(name: string, log: string[], onFlush?: () => void): Flushable {
  return {
    flush() {
      log.push(name);
      onFlush?.();
    },
  };
}

afterEach(() => vi.restoreAllMocks());

describe('FlushScheduler', () => {
  it('flushes what was scheduled at the end of the turn, in order, with one setImmediate', async () => {
    const s = new FlushScheduler();
    const log: string[] = [];
    const immediate = vi.spyOn(globalThis, 'setImmediate');
    s.schedule(output('a', log));
    s.schedule(output('b', log));
    s.schedule(output('c', log));
    expect(log).toEqual([]); // not before the turn ends
    expect(immediate).toHaveBeenCalledTimes(1);
    await turn();
    expect(log).toEqual(['a', 'b', 'c']);
  });

  it('flushes each scheduled output once, and a later schedule on a later turn', async () => {
    const s = new FlushScheduler();
    const log: string[] = [];
    const a = output('a', log);
    s.schedule(a);
    await turn();
    await turn();
    expect(log).toEqual(['a']);
    s.schedule(a);
    await turn();
    expect(log).toEqual(['a', 'a']);
  });

  it('flushes in the same turn what a flush schedules (an in-process client answering at once)', async () => {
    const s = new FlushScheduler();
    const log: string[] = [];
    const late = output('late', log);
    s.schedule(output('first', log, () => s.schedule(late)));
    const immediate = vi.spyOn(globalThis, 'setImmediate');
    await turn();
    expect(log).toEqual(['first', 'late']);
    // The late one rode on the running flush: no second turn was asked for.
    expect(immediate).toHaveBeenCalledTimes(1); // the test's own `turn()`
  });
});
