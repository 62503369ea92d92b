/**
 * The daemon's log is written a moment after ready (server/logger.ts, issue 16): until then its
 * records are held in memory. A client flooding the access log at start must neither grow that
 * memory without bound nor lose a record: at most `DeferredLog.HELD` records are held, the next
 * one loads pino and everything is written, in order, each record with the time it was logged.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Op } from '../../protocol/index.js';
import { DeferredLog } from '../../server/index.js';
import { pipelineSettled } from '../helpers/attack.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';

let d: RunningDaemon | undefined;
afterEach(async () => {
  await d?.stop();
  d = undefined;
});

describe('the log held before it is written', () => {
  it('holds HELD records at most whatever is logged, and loses none', () => {
    const written: number[] = [];
    let held = 0;
    const log = new DeferredLog('info', () => pino({ level: 'info' }, { write: (l: string) => void written.push((JSON.parse(l) as { i: number }).i) }));
    for (let i = 0; i < 10 * DeferredLog.HELD; i++) {
      log.info({ i }, 'access');
      if (!log.loaded) held = i + 1;
    }
    expect(held).toBe(DeferredLog.HELD - 1);
    expect(written).toEqual(Array.from({ length: 10 * DeferredLog.HELD }, (_, i) => i));
  });

  it('writes a flood of access-log records sent at start whole and in order', async () => {
    d = await startDaemon({ args: ['--access-log', '--log-format', 'json'] });
    const c = await d.connect();
    const N = 600;
    const replies = await pipelineSettled(
      c,
      Array.from({ length: N }, (_, i) => [Op.READ, `/flood/${i}\0`] as const),
    );
    expect(replies.every((r) => r.includes('ENOENT'))).toBe(true);
    const access = () =>
      d!
        .output()
        .split('\n')
        .filter((l) => l.includes('"msg":"access"') && l.includes('/flood/'))
        .map((l) => JSON.parse(l) as { args: string; time: string });
    for (let i = 0; i < 200 && access().length < N; i++) await new Promise((r) => setTimeout(r, 25));
    const lines = access();
    expect(lines.map((l) => l.args)).toEqual(Array.from({ length: N }, (_, i) => `/flood/${i}`));
    const times = lines.map((l) => Date.parse(l.time));
    expect(times.every((t, i) => i === 0 || t >= times[i - 1]!)).toBe(true);
  });
});
