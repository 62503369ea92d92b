/**
 * CONTROL (spec §7.16; the commands `xenstore-control` sends): help, print, log, quota, check,
 * stats, memreport; unknown commands EINVAL; unprivileged callers EACCES.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/poll.js';
import { runScenario } from '../helpers/scenario.js';
import type { Wire } from '../helpers/wire.js';

let d: RunningDaemon;
let c: Wire;

beforeAll(async () => {
  d = await startDaemon();
  c = await d.connect();
});

afterAll(async () => {
  await d?.stop();
});

/** True once the daemon's log (written asynchronously) satisfies `pred`; false after a bound. */
async function logShows(pred: (out: string) => boolean): Promise<boolean> {
  return pred(await eventually(() => d.output(), pred));
}

describe('commands', () => {
  it('help lists every command', async () => {
    const help = await c.control('help');
    for (const cmd of ['help', 'print', 'log', 'quota', 'check', 'stats']) expect(help).toMatch(new RegExp(`^${cmd}\\b`, 'm'));
  });

  it('replies are NUL-terminated text of the CONTROL type', async () => {
    const r = await c.request(Op.CONTROL, 'check|');
    expect(r.type).toBe(Op.CONTROL);
    expect(r.payload.toString('latin1')).toBe('OK\0');
  });

  it('print writes its text to the daemon log', async () => {
    expect(await c.control('print', 'marker-4711', 'and', 'more')).toBe('OK');
    expect(await logShows((o) => o.includes('marker-4711 and more'))).toBe(true);
  });

  it('log on / off switches the access log', async () => {
    expect(await c.control('log', 'on')).toMatch(/\bon\b/);
    expect(await c.control('log')).toMatch(/\bon\b/);
    await c.write('/ctl/logged-write', 'v');
    expect(await logShows((o) => o.includes('/ctl/logged-write'))).toBe(true);
    expect(await c.control('log', 'off')).toMatch(/\boff\b/);
    await c.write('/ctl/unlogged-write', 'v');
    await c.control('print', 'after-unlogged');
    expect(await logShows((o) => o.includes('after-unlogged'))).toBe(true);
    expect(d.output()).not.toContain('/ctl/unlogged-write');
    expect(await c.ask(Op.CONTROL, 'log|sideways|')).toBe('EINVAL');
  });

  it('quota shows the limits, a domain\'s usage, and sets a limit', async () => {
    const q = await c.control('quota');
    expect(q).toMatch(/^nodes\s+1000$/m);
    expect(q).toMatch(/^transactions\s+10$/m);
    expect(await c.control('quota', '0')).toMatch(/^nodes\s+\d+\//m);
    expect(await c.control('quota', 'set', 'nodes', '900')).toBe('OK');
    expect(await c.ask(Op.GET_QUOTA, 'nodes|')).toBe('900|');
    expect(await c.control('quota')).toMatch(/^nodes\s+900$/m);
    expect(await c.control('quota', 'set', 'nodes', '1000')).toBe('OK');
    await runScenario({ c }, [
      ['c', 0, 'CONTROL', 'quota|set|nodes|', 'EINVAL'],
      ['c', 0, 'CONTROL', 'quota|set|nosuch|5|', 'EINVAL'],
      ['c', 0, 'CONTROL', 'quota|set|nodes|many|', 'EINVAL'],
      ['c', 0, 'CONTROL', 'quota|notadomain|', 'EINVAL'],
    ]);
  });

  it('check answers OK on a consistent store', async () => {
    await c.write('/ctl/a/b/c', 'v');
    await c.rm('/ctl/a');
    expect(await c.control('check')).toBe('OK');
  });

  it('stats counts connections and watches', async () => {
    const watches = async () => Number(/^watches (\d+)$/m.exec(await c.control('stats'))![1]);
    const connections = async () => Number(/^connections (\d+)$/m.exec(await c.control('stats'))![1]);
    const base = await watches();
    const baseConns = await connections();
    const x = await d.connect();
    await x.watch('/ctl/w1', 't');
    await x.watch('/ctl/w2', 't');
    expect(await watches()).toBe(base + 2);
    expect(await connections()).toBe(baseConns + 1);
    x.close();
    await x.closed;
    expect(await eventually(watches, (n) => n === base)).toBe(base);
  });

  it('memreport answers', async () => {
    expect(await c.control('memreport')).toMatch(/\d/);
  });
});

describe('errors', () => {
  it('scenario', async () => {
    const g = await d.guest(5);
    const ro = await d.connectRo();
    await runScenario({ c, g, ro }, [
      ['c', 0, 'CONTROL', 'no-such-command|', 'EINVAL'],
      ['c', 0, 'CONTROL', '|', 'EINVAL'],
      ['c', 0, 'CONTROL', '', 'EINVAL'],
      ['c', 0, 'CONTROL', 'help', 'EINVAL'],
      ['g', 0, 'CONTROL', 'help|', 'EACCES'],
      ['g', 0, 'CONTROL', 'no-such-command|', 'EACCES'],
      ['ro', 0, 'CONTROL', 'log|on|', 'EACCES'],
      ['ro', 0, 'CONTROL', 'no-such-command|', 'EINVAL'],
      ['c', 0, 'CONTROL', 'check|', 'OK|'],
    ]);
  });
});
