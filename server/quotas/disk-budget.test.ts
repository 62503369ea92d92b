import { describe, expect, it } from 'vitest';
import { DiskBudget } from './disk-budget.js';

describe('DiskBudget', () => {
  it('lets a domain spend its burst at once, then holds it to the rate: the wait pays back the debt', () => {
    let now = 0;
    const b = new DiskBudget({ rate: 1000, burst: 5000 }, () => now);
    expect(b.charge(5, 5000)).toBe(0);
    expect(b.charge(5, 500)).toBe(500); // 500 bytes of debt at 1000 B/s
    now += 500;
    expect(b.charge(5, 1000)).toBe(1000);
    now += 10_000; // a quiet spell refills up to the burst, not beyond
    expect(b.charge(5, 5000)).toBe(0);
    expect(b.charge(5, 1)).toBe(1);
  });

  it('keeps domains apart, forgets a released one, and is off at rate 0', () => {
    const now = 0;
    const b = new DiskBudget({ rate: 100, burst: 100 }, () => now);
    expect(b.charge(1, 300)).toBe(2000);
    expect(b.charge(2, 100)).toBe(0);
    b.forget(1);
    expect(b.charge(1, 100)).toBe(0);
    expect(new DiskBudget({ rate: 0, burst: 0 }).charge(1, 1e9)).toBe(0);
  });
});
