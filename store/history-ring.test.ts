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

  it('frees the chunks of the records it drops, oldest first (shift) or newest first (pop)', () => {
    const r = new HistoryRing(1);
    for (let i = 0; i < 2000; i++) put(r, 200, i, i);
    const full = r.allocated;
    expect(full).toBeGreaterThan(2000 * 200);
    for (let i = 0; i < 1900; i++) r.shift();
    expect(r.size).toBe(100);
    expect(r.bytes).toBe(100 * 200);
    // The index stays; the chunks go but for the live one, one holding the oldest, and a spare.
    expect(r.allocated).toBeLessThanOrEqual(3 * 64 * 1024 + 2048 * 45 + 1024 * 4);
    for (let i = 0; i < 100; i++) expect(same(r.bytesOf(i), 200, 1900 + i)).toBe(true);
    // Index slots wrap around: more records after the shifts still read back in order.
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
    r.shift();
    r.shift();
    expect(r.size).toBe(1);
    expect(r.allocated).toBeLessThan(300_000);
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

  it('keeps groups: records found by number, trimmed from either end without moving bytes', () => {
    const r = new HistoryRing(1);
    /** A group of `n` records at `time`: a head of 3 bytes, then record j as j+1 bytes of `fill + j`. */
    const group = (n: number, fill: number, time: number): void => {
      const w = r.begin();
      w.room(3);
      w.u8(0xaa);
      w.u8(0xbb);
      w.u8(0xcc);
      for (let j = 0; j < n; j++) {
        r.mark();
        w.room(j + 1);
        for (let k = 0; k <= j; k++) w.u8((fill + j) & 255);
      }
      r.end(time, 1000 * n);
    };
    const part = (i: number): Buffer => {
      const v = { buf: Buffer.alloc(0), start: 0, end: 0 };
      r.part(i, v);
      return v.buf.subarray(v.start, v.end);
    };
    put(r, 4, 9, 1); // record 0, alone
    group(5, 10, 2); // records 1-5
    put(r, 2, 7, 3); // record 6
    group(3, 20, 4); // records 7-9
    expect([r.size, r.entries, r.bytes]).toEqual([10, 4, 4 + 5000 + 2 + 3000]);
    expect([0, 1, 5, 6, 7, 9].map((i) => r.locate(i))).toEqual([0, 1, 1, 2, 3, 3]);
    expect(same(part(0), 4, 9)).toBe(true);
    for (let j = 0; j < 5; j++) expect(same(part(1 + j), j + 1, 10 + j)).toBe(true);
    expect(same(part(8), 2, 21)).toBe(true);
    expect([r.isGroup(1), r.isGroup(2), r.headIn(1), r.headIn(2), r.time(4), r.time(9)]).toEqual([true, false, 3, 0, 2, 4]);
    expect([...r.bytesOf(3).subarray(0, 3)]).toEqual([0xaa, 0xbb, 0xcc]);
    // The oldest record goes, then two of the group: numbers move, the group's bytes do not.
    r.shift();
    r.trimHead(2, 2000);
    expect([r.size, r.entries, r.bytes, r.countIn(0), r.first(0)]).toEqual([7, 3, 3000 + 2 + 3000, 3, 0]);
    for (let j = 0; j < 3; j++) expect(same(part(j), j + 3, 12 + j)).toBe(true);
    expect(() => r.trimHead(3, 0)).toThrow(RangeError); // all of it: shift, not trim
    // The newest group loses its last record; the next entry is written where it began.
    r.trimTail(1, 1000);
    expect([r.size, r.bytes]).toEqual([6, 3000 + 2 + 2000]);
    put(r, 6, 5, 5);
    expect(same(part(6), 6, 5)).toBe(true);
    expect(same(part(5), 2, 21)).toBe(true);
    expect(() => r.part(7, { buf: Buffer.alloc(0), start: 0, end: 0 })).toThrow(RangeError);
    // Many marked records: the starts' table grows and keeps every live one.
    for (let g = 0; g < 40; g++) group(100, g, 10 + g);
    expect(r.size).toBe(4007);
    expect(same(part(4006), 100, 39 + 99)).toBe(true);
    expect(same(part(7 + 50), 51, 50)).toBe(true);
    expect(r.locate(4006)).toBe(r.entries - 1);
  });
});
