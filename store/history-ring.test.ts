import { describe, expect, it } from 'vitest';
import { HistoryRing } from './history-ring.js';

/** Writes a record of `n` bytes, each `fill`, at `time`. */
function put(r: HistoryRing, n: number, fill: number, time: number): void {
  const w = r.begin();
  w.room(n);
  for (let i = 0; i < n; i++) w.u8(fill & 255);
  r.end(time);
}

const same = (b: Buffer, n: number, fill: number): boolean => b.length === n && b.every((x) => x === (fill & 255));

describe('HistoryRing', () => {
  it('keeps records in order across chunks, with their times and bytes', () => {
    const r = new HistoryRing(1); // the smallest chunks: 64 KiB
    const sizes: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const n = 1 + ((i * 37) % 300);
      sizes.push(n);
      put(r, n, i, i * 10);
    }
    expect(r.size).toBe(3000);
    expect(r.bytes).toBe(sizes.reduce((a, b) => a + b, 0));
    for (let i = 0; i < 3000; i++) {
      expect(same(r.bytesOf(i), sizes[i]!, i)).toBe(true);
      expect(r.time(i)).toBe(i * 10);
    }
    expect(() => r.bytesOf(3000)).toThrow(RangeError);
  });

  it('frees the chunks of the records it drops, oldest first (drop) or newest first (pop)', () => {
    const r = new HistoryRing(1);
    for (let i = 0; i < 2000; i++) put(r, 200, i, i);
    const full = r.allocated;
    expect(full).toBeGreaterThan(2000 * 200);
    // Some one at a time, the rest at once: the same ring either way.
    for (let i = 0; i < 900; i++) r.drop(1);
    r.drop(1000);
    expect(r.size).toBe(100);
    expect(r.bytes).toBe(100 * 200);
    // The index stays; the chunks go but for the live one, one holding the oldest, and a spare.
    expect(r.allocated).toBeLessThanOrEqual(3 * 64 * 1024 + 2048 * 20);
    for (let i = 0; i < 100; i++) expect(same(r.bytesOf(i), 200, 1900 + i)).toBe(true);
    // Index slots wrap around: more records after the drops still read back in order.
    for (let i = 2000; i < 4500; i++) put(r, 50, i, i);
    expect(r.size).toBe(2600);
    for (let i = 0; i < 2600; i++) expect(r.time(i)).toBe(1900 + i);
    expect(same(r.bytesOf(2599), 50, 4499)).toBe(true);
    // Pop: the tail goes back to where the record began, and the next one takes its place.
    r.pop();
    r.pop();
    expect(r.size).toBe(2598);
    put(r, 10, 7, 9999);
    expect(same(r.bytesOf(2598), 10, 7)).toBe(true);
    expect(same(r.bytesOf(2597), 50, 4497)).toBe(true);
    r.clear();
    expect([r.size, r.bytes]).toEqual([0, 0]);
    put(r, 5, 1, 1);
    expect(same(r.bytesOf(0), 5, 1)).toBe(true);
  });

  it('takes a record larger than a chunk whole, in one view', () => {
    const r = new HistoryRing(1);
    put(r, 100, 1, 1);
    // Written piecemeal, as a record of many changes is: the writer moves it as it grows.
    const w = r.begin();
    for (let i = 0; i < 300_000; i++) {
      w.room(1);
      w.u8(i % 251);
    }
    r.end(2);
    put(r, 100, 3, 3);
    const big = r.bytesOf(1);
    expect(big.length).toBe(300_000);
    expect(big.every((x, i) => x === i % 251)).toBe(true);
    expect(same(r.bytesOf(0), 100, 1)).toBe(true);
    expect(same(r.bytesOf(2), 100, 3)).toBe(true);
    r.drop(2);
    expect(r.size).toBe(1);
    expect(r.allocated).toBeLessThan(300_000);
  });

  it('counts the oldest records over a bound from the index, keeping the newest whatever its size', () => {
    const r = new HistoryRing(1);
    const sizes = [10, 20, 30, 40, 1000];
    sizes.forEach((n, i) => put(r, n, i, i));
    expect(r.excess(5, 1100)).toBe(0);
    expect(r.excess(3, 1100)).toBe(2);
    // 1,100 bytes held: the two oldest take it to 1,070, the third to 1,040.
    expect(r.excess(5, 1070)).toBe(2);
    expect(r.excess(5, 1069)).toBe(3);
    // The records bound first, then bytes: four go for 1,000 and for less, never the newest.
    expect(r.excess(4, 1000)).toBe(4);
    expect(r.excess(5, 1)).toBe(4);
    expect(r.excess(1, 1)).toBe(4);
    r.drop(r.excess(3, 1100));
    expect([r.size, r.bytes, r.time(0)]).toEqual([3, 1070, 2]);
    // More than it holds: all go, and the ring takes records again.
    r.drop(10);
    expect([r.size, r.bytes]).toEqual([0, 0]);
    expect(r.excess(0, 0)).toBe(0);
    put(r, 5, 7, 7);
    expect(same(r.bytesOf(0), 5, 7)).toBe(true);
  });

  it('forgets a record whose writing failed', () => {
    const r = new HistoryRing(1);
    put(r, 10, 1, 1);
    const w = r.begin();
    w.room(5);
    w.u8(9);
    r.abandon();
    put(r, 10, 2, 2);
    expect(r.size).toBe(2);
    expect(same(r.bytesOf(1), 10, 2)).toBe(true);
    expect(r.bytes).toBe(20);
  });
});
