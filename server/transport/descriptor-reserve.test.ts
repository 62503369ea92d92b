import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defaultReserve, DescriptorReserve, openFileLimit } from './descriptor-reserve.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            20000                20000                files
Max locked memory         8388608              8388608              bytes
`;

describe('openFileLimit', () => {
  it('reads the soft limit of /proc/self/limits', () => {
    expect(openFileLimit(LIMITS)).toBe(20000);
    expect(openFileLimit(LIMITS.replace('20000                20000', '1024                 4096'))).toBe(1024);
    expect(openFileLimit(LIMITS.replace('20000                20000', 'unlimited            unlimited'))).toBe(Infinity);
    expect(openFileLimit('nothing here')).toBe(Infinity);
  });

  it('this process has one', () => {
    expect(openFileLimit()).toBeGreaterThan(0);
  });
});

describe('DescriptorReserve', () => {
  afterEach(() => vi.useRealTimers());

  it('guests get the limit less the reserve less one per domain; socket_ro a quarter of the reserve', () => {
    const r = new DescriptorReserve(1000, 200, pino({ level: 'silent' }));
    expect(r.guestCap(10)).toBe(790);
    expect(r.guestRoom(789, 10)).toBe(true);
    expect(r.guestRoom(790, 10)).toBe(false);
    expect(r.readOnlyRoom(49)).toBe(true);
    expect(r.readOnlyRoom(50)).toBe(false);
    expect(defaultReserve(20000)).toBe(256);
    expect(defaultReserve(256)).toBe(64);
    expect(defaultReserve(Infinity)).toBe(256);
  });

  it('a running gateway takes its share from the guests, never from the reserve', () => {
    const r = new DescriptorReserve(1000, 200, pino({ level: 'silent' }));
    expect(r.defaultGatewayShare()).toBe(200);
    expect(new DescriptorReserve(20000, 256, pino({ level: 'silent' })).defaultGatewayShare()).toBe(256);
    expect(new DescriptorReserve(Infinity, 256, pino({ level: 'silent' })).defaultGatewayShare()).toBe(256);
    expect(new DescriptorReserve(4, 4, pino({ level: 'silent' })).defaultGatewayShare()).toBe(1);
    r.setGatewayShare(150);
    expect(r.guestCap(10)).toBe(640);
    expect(r.readOnlyRoom(49)).toBe(true);
    r.setGatewayShare(0);
    expect(r.guestCap(10)).toBe(790);
  });

  it('logs the first refusal, then one summary per interval, however many are refused', () => {
    vi.useFakeTimers();
    const lines: unknown[] = [];
    const log = pino({ level: 'warn' }, { write: (s: string) => lines.push(JSON.parse(s)) });
    const r = new DescriptorReserve(100, 10, log, 1000);
    for (let i = 0; i < 5000; i++) r.refuse('domain 5', 'at its limit');
    expect(r.refused).toBe(5000);
    expect(lines).toHaveLength(1);
    vi.advanceTimersByTime(1000);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ refused: 4999, by: { 'domain 5': 4999 }, total: 5000 });
    // A quiet interval: no line; the next refusal is logged at once again.
    vi.advanceTimersByTime(5000);
    expect(lines).toHaveLength(2);
    r.refuse('socket_ro', 'full');
    expect(lines).toHaveLength(3);
    r.close();
  });
});
