import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, DeferredLog } from './logger.js';

afterEach(() => vi.restoreAllMocks());

/** A DeferredLog whose pino writes JSON lines into `lines`, and how often it was made. */
function captured(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  let made = 0;
  const log = new DeferredLog(level, (time) => {
    made++;
    return pino({ level, base: null, timestamp: () => `,"time":${time()}` }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  });
  return { log, lines, made: () => made };
}

describe('DeferredLog', () => {
  it('holds the records at or above its level until load(), then writes them in order with the time each was logged', () => {
    const { log, lines, made } = captured('info');
    const now = vi.spyOn(Date, 'now');
    now.mockReturnValue(1_000);
    log.info({ a: 1 }, 'first');
    now.mockReturnValue(2_000);
    log.debug('below the level: not even held');
    log.warn('second');
    expect(made()).toBe(0);
    expect(lines).toEqual([]);
    now.mockReturnValue(9_000);
    log.load();
    expect(log.loaded).toBe(true);
    expect(lines).toEqual([
      { level: 30, time: 1_000, a: 1, msg: 'first' },
      { level: 40, time: 2_000, msg: 'second' },
    ]);
    // Once loaded, records go straight to pino, with their own time.
    log.info('third');
    log.load();
    expect(made()).toBe(1);
    expect(lines.at(-1)).toEqual({ level: 30, time: 9_000, msg: 'third' });
  });

  it('loads at once, synchronously, for a record at error or above: what precedes an exit is written', () => {
    const { log, lines } = captured('info');
    log.info('held');
    log.error({ err: 'disk' }, 'failed');
    expect(log.loaded).toBe(true);
    expect(lines.map((l) => l['msg'])).toEqual(['held', 'failed']);
    const fatal = captured('info');
    fatal.log.fatal('exiting');
    expect(fatal.lines.map((l) => l['msg'])).toEqual(['exiting']);
  });

  it('writes what it holds at the process exit, and stops listening for it once loaded', () => {
    const before = process.listenerCount('exit');
    const { log } = captured('info');
    expect(process.listenerCount('exit')).toBe(before + 1);
    log.load();
    expect(process.listenerCount('exit')).toBe(before);
    // `silent` holds nothing and has nothing to write at exit.
    new DeferredLog('silent', () => pino({ level: 'silent' })).info('dropped');
    expect(process.listenerCount('exit')).toBe(before);
  });

  it('refuses a level pino does not know, as pino would', () => {
    expect(() => new DeferredLog('loud', () => pino())).toThrow(/unknown log level "loud"/);
  });

  it('keeps the pretty format of createLogger, with the held record written on load', () => {
    const out: string[] = [];
    const log = createLogger('pretty', 'info', { write: (s: string) => void out.push(s) } as unknown as NodeJS.WritableStream);
    log.info({ k: 'v', n: 2 }, 'hello');
    expect(out).toEqual([]);
    log.load();
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  hello k=v n=2\n$/);
  });
});
