import { describe, expect, it } from 'vitest';
import { TurnClock } from './turn-clock.js';

describe('TurnClock', () => {
  it('reads the clock once per turn and again in the next one', async () => {
    let reads = 0;
    let t = 1000;
    const clock = new TurnClock(() => {
      reads++;
      return t;
    });
    expect(clock.now()).toBe(1000);
    t = 1005;
    expect(clock.now()).toBe(1000);
    expect(reads).toBe(1);
    // A microtask later (a resumed await, the next callback) the reading has expired.
    await Promise.resolve();
    expect(clock.now()).toBe(1005);
    expect(reads).toBe(2);
    t = 1010;
    await new Promise((resolve) => setImmediate(resolve));
    expect(clock.now()).toBe(1010);
    expect(reads).toBe(3);
  });

  it('says when a turn that read it ends, once per such turn', async () => {
    let ended = 0;
    const clock = new TurnClock(
      () => 1000,
      () => ended++,
    );
    clock.now();
    clock.now();
    expect(ended).toBe(0);
    await Promise.resolve();
    expect(ended).toBe(1);
    // A turn that does not read the clock ends unannounced.
    await new Promise((resolve) => setImmediate(resolve));
    expect(ended).toBe(1);
    clock.now();
    await Promise.resolve();
    expect(ended).toBe(2);
  });

  it('expires when the turn end it was handed runs (the daemon: its replies\' flush)', () => {
    let t = 1000;
    let ended = 0;
    const due: { flush(): void }[] = [];
    const clock = new TurnClock(
      () => t,
      () => ended++,
      (c) => due.push(c),
    );
    expect(clock.now()).toBe(1000);
    t = 1005;
    expect(clock.now()).toBe(1000);
    // One turn end asked for per reading, not per call.
    expect(due).toHaveLength(1);
    due.shift()!.flush();
    expect(ended).toBe(1);
    expect(clock.now()).toBe(1005);
    expect(due).toHaveLength(1);
  });

  it('reads the wall clock by default', () => {
    const before = Date.now();
    const now = new TurnClock().now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });
});
