/**
 * The read-only socket `<rundir>/socket_ro` (spec §1.1, Xen ≤ 4.14 semantics, and our choice for the
 * daemon-state requests recorded in server/dispatch/handlers/index.ts): every request that would change the
 * store or the daemon is EACCES; reads, watches and transactions work.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op, type OpName } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { runScenario } from '../helpers/scenario.js';
import type { Wire } from '../helpers/wire.js';

let d: RunningDaemon;
let c: Wire;
let ro: Wire;

beforeAll(async () => {
  d = await startDaemon();
  [c, ro] = await Promise.all([d.connect(), d.connectRo()]);
  await c.write('/ro/v', 'value');
  await c.setPerms('/ro/v', ['n0', 'r5']);
  await c.ask(Op.INTRODUCE, '5|4096|1|');
});

afterAll(async () => {
  await d?.stop();
});

describe('refused with EACCES, nothing changes', () => {
  const refused: [OpName, string][] = [
    ['WRITE', '/ro/v|changed'],
    ['WRITE', '/ro/new|x'],
    ['MKDIR', '/ro/dir|'],
    ['MKDIR', '/ro/v|'],
    ['RM', '/ro/v|'],
    ['SET_PERMS', '/ro/v|n0|'],
    ['SET_PERMS', '@releaseDomain|n0|r5|'],
    ['INTRODUCE', '6|4096|1|'],
    ['SET_TARGET', '5|5|'],
    ['RELEASE', '5|'],
    ['RESUME', '5|'],
    ['CONTROL', 'log|on|'],
    ['CONTROL', 'quota|set|nodes|1|'],
    ['CONTROL', 'print|from socket_ro|'],
    ['CONTROL', 'loop|reset|'],
    ['CONTROL', 'live-update|-a|'],
    ['CONTROL', 'hand-back|/bin/true|'],
    ['SET_QUOTA', 'nodes|1|'],
    ['SET_FEATURE', '6|0|'],
  ];
  for (const [op, payload] of refused) {
    it(`${op} ${payload}`, async () => {
      expect(await ro.ask(Op[op], payload)).toBe('EACCES');
    });
  }

  it('left the store and the daemon as they were', async () => {
    await runScenario({ c }, [
      ['c', 0, 'READ', '/ro/v|', 'value'],
      ['c', 0, 'GET_PERMS', '/ro/v|', 'n0|r5|'],
      ['c', 0, 'READ', '/ro/new|', 'ENOENT'],
      ['c', 0, 'READ', '/ro/dir|', 'ENOENT'],
      ['c', 0, 'GET_PERMS', '@releaseDomain|', 'n0|'],
      ['c', 0, 'IS_DOMAIN_INTRODUCED', '5|', 'T|'],
      ['c', 0, 'IS_DOMAIN_INTRODUCED', '6|', 'F|'],
      ['c', 0, 'GET_QUOTA', 'nodes|', '1000|'],
    ]);
  });
});

describe('allowed', () => {
  it('reads, listings, permissions, domain queries', async () => {
    await runScenario({ ro }, [
      ['ro', 0, 'READ', '/ro/v|', 'value'],
      ['ro', 0, 'DIRECTORY', '/ro|', 'v|'],
      ['ro', 0, 'DIRECTORY_PART', '/ro|0|', /^\d+\|v\|\|$/],
      ['ro', 0, 'GET_PERMS', '/ro/v|', 'n0|r5|'],
      ['ro', 0, 'READ', '/ro/none|', 'ENOENT'],
      ['ro', 0, 'GET_DOMAIN_PATH', '5|', '/local/domain/5|'],
      ['ro', 0, 'IS_DOMAIN_INTRODUCED', '5|', 'T|'],
      ['ro', 0, 'GET_QUOTA', 'nodes|', '1000|'],
      ['ro', 0, 'GET_FEATURE', '', /^\d+\|$/],
    ]);
  });

  it('the CONTROL commands that only look: help, stats, quota, log, loop, check, history', async () => {
    expect(await ro.ask(Op.CONTROL, 'help|')).toMatch(/^help .*\n.*stats/s);
    expect(await ro.ask(Op.CONTROL, 'stats|')).toMatch(/^generation \d+\n/);
    expect(await ro.ask(Op.CONTROL, 'quota|')).toMatch(/^nodes +1000\n/);
    expect(await ro.ask(Op.CONTROL, 'quota|5|')).toMatch(/^domain 5\n/);
    expect(await ro.ask(Op.CONTROL, 'log|')).toMatch(/^access log off/);
    expect(await ro.ask(Op.CONTROL, 'loop|')).toMatch(/^max-ms \d/);
    expect(await ro.ask(Op.CONTROL, 'check|')).toMatch(/^OK/);
    expect(await ro.ask(Op.CONTROL, 'history|info|')).toMatch(/generation/);
    // ... and what the refused ones would have changed did not change.
    expect(await c.ask(Op.CONTROL, 'log|')).toMatch(/^access log off/);
  });

  it('watches, with events for changes made elsewhere, and RESET_WATCHES', async () => {
    await runScenario({ c, ro }, [
      ['ro', 0, 'WATCH', '/ro|t|', 'OK|'],
      ['ro', 0, 'WATCH', '@introduceDomain|i|', 'OK|'],
      ['ro', 0, 'EVENTS', '', '/ro t, @introduceDomain i'],
      ['c', 0, 'WRITE', '/ro/w|x', 'OK|'],
      ['c', 0, 'INTRODUCE', '7|4096|1|', 'OK|'],
      ['ro', 0, 'EVENTS', '', '/ro/w t, @introduceDomain i'],
      ['ro', 0, 'UNWATCH', '/ro|t|', 'OK|'],
      ['ro', 0, 'RESET_WATCHES', '|', 'OK|'],
      ['c', 0, 'WRITE', '/ro/w|y', 'OK|'],
      ['ro', 0, 'EVENTS', '', ''],
    ]);
  });

  it('transactions: reads inside, writes refused, commit and abort', async () => {
    await runScenario({ c, ro }, [
      ['ro', 0, 'TRANSACTION_START', '|', '$t'],
      ['ro', '$t', 'READ', '/ro/v|', 'value'],
      ['ro', '$t', 'DIRECTORY', '/ro|', 'v|w|'],
      ['ro', '$t', 'WRITE', '/ro/v|intx', 'EACCES'],
      ['ro', '$t', 'MKDIR', '/ro/txdir|', 'EACCES'],
      ['ro', '$t', 'RM', '/ro/v|', 'EACCES'],
      ['ro', '$t', 'SET_PERMS', '/ro/v|n0|', 'EACCES'],
      ['ro', '$t', 'TRANSACTION_END', 'T|', 'OK|'],
      ['ro', 0, 'TRANSACTION_START', '|', '$u'],
      ['ro', '$u', 'TRANSACTION_END', 'F|', 'OK|'],
      ['c', 0, 'READ', '/ro/v|', 'value'],
    ]);
  });
});
