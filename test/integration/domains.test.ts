/**
 * Domain lifecycle (spec §7.11–7.14, §6.6, §11; §16 check 25; XSA-322, XSA-417, XSA-419, XSA-425,
 * XSA-483): INTRODUCE opens `<rundir>/domains/<domid>/socket`, whose connections act as that
 * domain; RELEASE closes them, deletes the domain's nodes and ACL entries, resets its quota and
 * fires @releaseDomain.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { runScenario } from '../helpers/scenario.js';
import { frame, show, type Wire } from '../helpers/wire.js';

let d: RunningDaemon;
let c: Wire;

beforeAll(async () => {
  d = await startDaemon();
  c = await d.connect();
});

afterAll(async () => {
  await d?.stop();
});

async function home(domid: number): Promise<void> {
  await c.mkdir(`/local/domain/${domid}`);
  await c.setPerms(`/local/domain/${domid}`, [`n${domid}`]);
}

async function nodesOf(domid: number): Promise<number> {
  return Number(/^nodes\s+(\d+)\//m.exec(await c.control('quota', String(domid)))![1]);
}

describe('INTRODUCE, IS_DOMAIN_INTRODUCED, RESUME (§7.11, §7.13, §7.14)', () => {
  it('scenario', async () => {
    await runScenario({ c }, [
      ['c', 0, 'IS_DOMAIN_INTRODUCED', '11|', 'F|'],
      ['c', 0, 'IS_DOMAIN_INTRODUCED', '0|', 'T|'],
      ['c', 0, 'IS_DOMAIN_INTRODUCED', '32752|', 'T|'],
      ['c', 0, 'INTRODUCE', '11|4096|5|', 'OK|'],
      ['c', 0, 'IS_DOMAIN_INTRODUCED', '11|', 'T|'],
      // Again with the same frame: OK, nothing changes; with another frame: EINVAL.
      ['c', 0, 'INTRODUCE', '11|4096|6|', 'OK|'],
      ['c', 0, 'INTRODUCE', '11|8192|5|', 'EINVAL'],
      // Argument errors.
      ['c', 0, 'INTRODUCE', '12|4096|', 'EINVAL'],
      ['c', 0, 'INTRODUCE', '12|4096|0|', 'EINVAL'],
      ['c', 0, 'INTRODUCE', '12|4096|x|', 'EINVAL'],
      ['c', 0, 'INTRODUCE', '0|4096|5|', 'EINVAL'],
      ['c', 0, 'INTRODUCE', 'abc|4096|5|', 'EINVAL'],
      ['c', 0, 'INTRODUCE', '70000|4096|5|', 'EINVAL'],
      ['c', 0, 'INTRODUCE', '12|4096|5|extra|', 'EINVAL'],
      ['c', 0, 'IS_DOMAIN_INTRODUCED', '12|', 'F|'],
      ['c', 0, 'IS_DOMAIN_INTRODUCED', 'x|', 'EINVAL'],
      ['c', 0, 'RESUME', '11|', 'OK|'],
      ['c', 0, 'RESUME', '12|', 'ENOENT'],
      ['c', 0, 'RESUME', '0|', 'EINVAL'],
      ['c', 0, 'RELEASE', '12|', 'ENOENT'],
      ['c', 0, 'RELEASE', '0|', 'EINVAL'],
      ['c', 0, 'RELEASE', '|', 'EINVAL'],
      ['c', 0, 'RELEASE', '11|', 'OK|'],
      ['c', 0, 'IS_DOMAIN_INTRODUCED', '11|', 'F|'],
      ['c', 0, 'RELEASE', '11|', 'ENOENT'],
    ]);
  });

  it('a connection to the domain socket acts as that domain', async () => {
    expect(existsSync(d.domainSocket(13))).toBe(false);
    const g = await d.guest(13);
    expect(existsSync(d.domainSocket(13))).toBe(true);
    await home(13);
    await g.write('whoami', 'thirteen');
    expect(await c.read('/local/domain/13/whoami')).toBe('thirteen');
    expect(await c.getPerms('/local/domain/13/whoami')).toEqual(['n13']);
    expect(await g.ask(Op.READ, '/tool/xenstored|')).toBe('EACCES');
    expect(await c.ask(Op.RELEASE, '13|')).toBe('OK|');
  });

  it('pipelined after INTRODUCE, requests are answered in order and see the domain', async () => {
    const x = await d.connect();
    const replies = [0, 1, 2, 3].map(() => x.awaitReply());
    await x.sendRaw(
      Buffer.concat([
        frame(Op.IS_DOMAIN_INTRODUCED, '15|', 1),
        frame(Op.INTRODUCE, '15|4096|5|', 2),
        frame(Op.IS_DOMAIN_INTRODUCED, '15|', 3),
        frame(Op.GET_DOMAIN_PATH, '15|', 4),
      ]),
    );
    const got = await Promise.all(replies);
    expect(got.map((r) => [r.reqId, show(r)])).toEqual([
      [1, 'F|'],
      [2, 'OK|'],
      [3, 'T|'],
      [4, '/local/domain/15|'],
    ]);
    // The domain's socket accepts connections as soon as INTRODUCE has answered.
    const g = await d.connectDomain(15);
    expect(await g.ask(Op.GET_DOMAIN_PATH, '15|')).toBe('/local/domain/15|');
    expect(await c.ask(Op.RELEASE, '15|')).toBe('OK|');
    x.close();
  });

  it('@introduceDomain fires once per new domain, not on re-introduction', async () => {
    const x = await d.connect();
    await x.watch('@introduceDomain', 'i');
    await x.nextEvent();
    expect(await c.ask(Op.INTRODUCE, '14|4096|5|')).toBe('OK|');
    expect(await c.ask(Op.INTRODUCE, '14|4096|5|')).toBe('OK|');
    expect(await x.drain()).toEqual(['@introduceDomain i']);
    expect(await c.ask(Op.RELEASE, '14|')).toBe('OK|');
    x.close();
  });
});

describe('GET_FEATURE / SET_FEATURE (§7.17)', () => {
  it('scenario', async () => {
    await runScenario({ c }, [
      ['c', 0, 'GET_FEATURE', '', /^\d+\|$/],
      ['c', 0, 'GET_FEATURE', '0|', /^\d+\|$/],
      ['c', 0, 'GET_FEATURE', '16|', 'ENOENT'],
      ['c', 0, 'GET_FEATURE', 'x|', 'EINVAL'],
      ['c', 0, 'SET_FEATURE', '16|0|', 'OK|'],
      ['c', 0, 'SET_FEATURE', '16|x|', 'EINVAL'],
      ['c', 0, 'SET_FEATURE', 'x|0|', 'EINVAL'],
      ['c', 0, 'SET_FEATURE', '16|', 'EINVAL'],
      ['c', 0, 'INTRODUCE', '16|4096|5|', 'OK|'],
      ['c', 0, 'GET_FEATURE', '16|', /^\d+\|$/],
      ['c', 0, 'SET_FEATURE', '16|0|', 'EBUSY'],
      ['c', 0, 'RELEASE', '16|', 'OK|'],
    ]);
  });
});

describe('RELEASE (§7.12, §6.6)', () => {
  it('closes the domain\'s connections and socket, deletes its nodes, fires watches and @releaseDomain', async () => {
    const g = await d.guest(20);
    const g2 = await d.connectDomain(20);
    await home(20);
    await g.write('data/a', '1');
    await g.write('data/b', '2');
    // A node 20 created outside its home with an ACL granting it (XSA-419: must not survive).
    await c.mkdir('/shared');
    await c.setPerms('/shared', ['n0', 'b20']);
    await g.write('/shared/by20', 'x');
    await c.write('/shared/dom0', 'y');
    const x = await d.connect();
    await x.watch('@releaseDomain', 'rel');
    await x.watch('/local/domain/20', 'home');
    await x.watch('/shared', 'shared');
    await x.drain();
    const tx = await g.txStart();
    await g.write('data/intx', 'v', tx);
    expect(await g.ask(Op.WATCH, 'data|w|')).toBe('OK|');

    expect(await c.ask(Op.RELEASE, '20|')).toBe('OK|');
    await Promise.all([g.closed, g2.closed]);
    expect(existsSync(d.domainSocket(20))).toBe(false);
    await expect(d.connectDomain(20)).rejects.toThrow();

    expect(await c.ask(Op.READ, '/local/domain/20|')).toBe('ENOENT');
    expect(await c.ask(Op.READ, '/shared/by20|')).toBe('ENOENT');
    expect(await c.read('/shared/dom0')).toBe('y');
    // ACL entries naming the domain are gone.
    expect(await c.getPerms('/shared')).toEqual(['n0']);
    expect(await c.getPerms('/shared/dom0')).toEqual(['n0']);
    expect(await nodesOf(20)).toBe(0);
    const events = await x.drain();
    expect(events).toContain('@releaseDomain rel');
    expect(events).toContain('/local/domain/20 home');
    expect(events).toContain('/shared/by20 shared');
    expect(await c.control('check')).toBe('OK');
    x.close();
  });

  it('a re-introduced domid has no stale access and a fresh quota (XSA-322, XSA-483)', async () => {
    await c.write('/grant/r21', 'for the old 21');
    await c.setPerms('/grant/r21', ['n0', 'r21']);
    await c.write('/grant/owned', 'owned by old 21');
    await c.setPerms('/grant/owned', ['n21']);
    await c.ask(Op.SET_QUOTA, 'nodes|30|');
    try {
      let g = await d.guest(21);
      await home(21);
      expect(await g.read('/grant/r21')).toBe('for the old 21');
      // Fill the quota.
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => g.ask(Op.WRITE, `fill/n${i}|v`)));
      expect(results).toContain('ENOSPC');
      expect(await nodesOf(21)).toBe(30);
      expect(await g.ask(Op.WRITE, 'one/more|v')).toBe('ENOSPC');

      expect(await c.ask(Op.RELEASE, '21|')).toBe('OK|');
      await g.closed;
      expect(await nodesOf(21)).toBe(0);
      expect(await c.ask(Op.READ, '/grant/owned|')).toBe('ENOENT');

      g = await d.guest(21);
      expect(await g.ask(Op.READ, '/grant/r21|')).toBe('EACCES');
      expect(await c.getPerms('/grant/r21')).toEqual(['n0']);
      await home(21);
      expect(await g.ask(Op.MKDIR, 'again|')).toBe('OK|');
      for (let i = 0; i < 28; i++) expect(await g.ask(Op.WRITE, `again/n${i}|v`)).toBe('OK|');
      expect(await nodesOf(21)).toBe(30);
      expect(await g.ask(Op.WRITE, 'again/over|v')).toBe('ENOSPC');
      expect(await c.ask(Op.RELEASE, '21|')).toBe('OK|');
    } finally {
      await c.ask(Op.SET_QUOTA, 'nodes|1000|');
    }
  });

  it('the special names\' ACL entries for a released domain are dropped (XSA-322)', async () => {
    await d.guest(23);
    expect(await c.ask(Op.SET_PERMS, '@releaseDomain|n0|r23|r24|')).toBe('OK|');
    expect(await c.ask(Op.SET_PERMS, '@introduceDomain|n0|r23|')).toBe('OK|');
    expect(await c.ask(Op.RELEASE, '23|')).toBe('OK|');
    expect(await c.ask(Op.GET_PERMS, '@releaseDomain|')).toBe('n0|r24|');
    expect(await c.ask(Op.GET_PERMS, '@introduceDomain|')).toBe('n0|');
    const g = await d.guest(23);
    await g.watch('@releaseDomain', 'r');
    await g.drain();
    await c.ask(Op.INTRODUCE, '24|4096|5|');
    await c.ask(Op.RELEASE, '24|');
    expect(await g.drain()).toEqual([]);
    await c.setPerms('@releaseDomain', ['n0']);
    expect(await c.ask(Op.RELEASE, '23|')).toBe('OK|');
  });

  it('per-domain quota overrides are forgotten on release (XSA-483)', async () => {
    await d.guest(22);
    expect(await c.ask(Op.SET_QUOTA, '22|watches|3|')).toBe('OK|');
    expect(await c.ask(Op.GET_QUOTA, '22|watches|')).toBe('3|');
    expect(await c.ask(Op.RELEASE, '22|')).toBe('OK|');
    // A domain that is gone has no quota (Xen 4.22); introduced again it starts from the globals.
    expect(await c.ask(Op.GET_QUOTA, '22|watches|')).toBe('ENOENT');
    await d.guest(22);
    expect(await c.ask(Op.GET_QUOTA, '22|watches|')).toBe(`${await c.ask(Op.GET_QUOTA, 'watches|').then((s) => s.slice(0, -1))}|`);
    expect(await c.ask(Op.RELEASE, '22|')).toBe('OK|');
  });

  it('survives RELEASE and re-INTRODUCE loops with busy guests (XSA-425)', async () => {
    for (let i = 0; i < 15; i++) {
      const g = await d.guest(30);
      if (i === 0) await home(30);
      const tx = await g.txStart();
      await g.ask(Op.WATCH, '/|w|');
      // Requests in flight while the domain goes away.
      const inflight = Array.from({ length: 10 }, (_, k) => g.ask(Op.WRITE, `loop/n${k}|v`, { txId: tx }).catch(() => 'closed'));
      expect(await c.ask(Op.RELEASE, '30|')).toBe('OK|');
      await Promise.all(inflight);
      await g.closed;
    }
    expect(await c.ask(Op.IS_DOMAIN_INTRODUCED, '30|')).toBe('F|');
    expect(await c.control('check')).toBe('OK');
    expect(d.exited()).toBeUndefined();
  });
});
