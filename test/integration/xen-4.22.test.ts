/**
 * Xen 4.22's additions to the protocol over real sockets (issue 15; Xen's docs/misc/xenstore.txt,
 * tools/xenstored/{watch,domain,core}.c): WATCH depth (0, 1, n; `@introduceDomain` /
 * `@releaseDomain` with a depth; a watch on `@releaseDomain/<domid>`), DOMID_ANY in permissions
 * (read and write by a guest, who may set it), GET_FEATURE / SET_FEATURE bits, and the 4.22 quota
 * rules (a global value is for domains introduced later, unknown domain ENOENT, 0, names).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
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

/** Introduces `domid` (with `features` set before, if given) and gives it a home it owns. */
async function guest(domid: number, features?: number): Promise<Wire> {
  if (features !== undefined) expect(await c.ask(Op.SET_FEATURE, `${domid}|${features}|`)).toBe('OK|');
  const g = await d.guest(domid);
  await c.mkdir(`/local/domain/${domid}`);
  await c.setPerms(`/local/domain/${domid}`, [`n${domid}`]);
  return g;
}

describe('WATCH depth', () => {
  it('depth 0 fires for the node only, 1 for its children, n for n levels; unlimited as before', async () => {
    const w = await d.connect();
    await runScenario({ w, c }, [
      ['w', 0, 'WATCH', '/wd|d0|0|', 'OK|'],
      ['w', 0, 'WATCH', '/wd|d1|1|', 'OK|'],
      ['w', 0, 'WATCH', '/wd|d3|3|', 'OK|'],
      ['w', 0, 'WATCH', '/wd|all|', 'OK|'],
      // The initial event reports the path as given, whatever the depth.
      ['w', 0, 'EVENTS', '', '/wd d0, /wd d1, /wd d3, /wd all'],
      ['c', 0, 'WRITE', '/wd|v', 'OK|'],
      ['w', 0, 'EVENTS', '', '/wd d0, /wd d1, /wd d3, /wd all'],
      ['c', 0, 'WRITE', '/wd/a|v', 'OK|'],
      ['w', 0, 'EVENTS', '', '/wd/a d1, /wd/a d3, /wd/a all'],
      ['c', 0, 'WRITE', '/wd/a/b/c|v', 'OK|'],
      ['w', 0, 'EVENTS', '', '/wd/a/b/c d3, /wd/a/b/c all'],
      ['c', 0, 'WRITE', '/wd/a/b/c/d|v', 'OK|'],
      ['w', 0, 'EVENTS', '', '/wd/a/b/c/d all'],
      // A removal reports the removed path to the watches above it, within their depth.
      ['c', 0, 'RM', '/wd/a/b|', 'OK|'],
      ['w', 0, 'EVENTS', '', '/wd/a/b d3, /wd/a/b all'],
      // Same path and token with another depth is a duplicate; UNWATCH needs no depth.
      ['w', 0, 'WATCH', '/wd|d0|5|', 'EEXIST'],
      ['w', 0, 'UNWATCH', '/wd|d3|', 'OK|'],
      ['c', 0, 'WRITE', '/wd/a/x|v', 'OK|'],
      ['w', 0, 'EVENTS', '', '/wd/a/x all'],
    ]);
  });

  it('on / a depth counts from the root; relative watches report relative paths', async () => {
    const w = await d.connect();
    await runScenario({ w, c }, [
      ['w', 0, 'WATCH', '/|root1|1|', 'OK|'],
      ['w', 0, 'WATCH', 'rel|r|1|', 'OK|'],
      ['w', 0, 'EVENTS', '', '/ root1, rel r'],
      ['c', 0, 'WRITE', '/toplevel|v', 'OK|'],
      ['c', 0, 'WRITE', '/toplevel/deeper|v', 'OK|'],
      ['c', 0, 'WRITE', '/local/domain/0/rel/x|v', 'OK|'],
      ['c', 0, 'WRITE', '/local/domain/0/rel/x/y|v', 'OK|'],
      ['w', 0, 'EVENTS', '', '/toplevel root1, rel/x r'],
    ]);
    await c.rm('/toplevel');
  });

  it('a guest whose WATCHDEPTH feature was cleared before INTRODUCE gets EINVAL, as from 4.17', async () => {
    const g = await guest(61, 8);
    const h = await guest(62);
    expect(await g.ask(Op.WATCH, 'x|t|1|')).toBe('EINVAL');
    expect(await g.ask(Op.WATCH, 'x|t|')).toBe('OK|');
    expect(await h.ask(Op.WATCH, 'x|t|1|')).toBe('OK|');
  });

  it('@introduceDomain / @releaseDomain: no depth gives the name, depth 1 gives <name>/<domid>, depth 0 nothing', async () => {
    const w = await d.connect();
    await runScenario({ w, c }, [
      ['w', 0, 'WATCH', '@introduceDomain|i|', 'OK|'],
      ['w', 0, 'WATCH', '@introduceDomain|i1|1|', 'OK|'],
      ['w', 0, 'WATCH', '@introduceDomain|i0|0|', 'OK|'],
      ['w', 0, 'WATCH', '@releaseDomain|r|', 'OK|'],
      ['w', 0, 'WATCH', '@releaseDomain|r2|2|', 'OK|'],
      ['w', 0, 'WATCH', '@releaseDomain/71|only71|', 'OK|'],
      ['w', 0, 'EVENTS', '', '@introduceDomain i, @introduceDomain i1, @introduceDomain i0, @releaseDomain r, @releaseDomain r2, @releaseDomain/71 only71'],
      ['c', 0, 'INTRODUCE', '70|4096|5|', 'OK|'],
      ['c', 0, 'INTRODUCE', '71|4096|5|', 'OK|'],
      ['w', 0, 'EVENTS', '', '@introduceDomain i, @introduceDomain i, @introduceDomain/70 i1, @introduceDomain/71 i1'],
      ['c', 0, 'RELEASE', '70|', 'OK|'],
      ['w', 0, 'EVENTS', '', '@releaseDomain r, @releaseDomain/70 r2'],
      ['c', 0, 'RELEASE', '71|', 'OK|'],
      ['w', 0, 'EVENTS', '', '@releaseDomain r, @releaseDomain/71 r2, @releaseDomain/71 only71'],
    ]);
  });

  it('@releaseDomain/<domid> is filtered by @releaseDomain\'s permissions', async () => {
    const g = await guest(63);
    expect(await g.ask(Op.WATCH, '@releaseDomain/72|t|')).toBe('OK|');
    await g.drain();
    await c.ask(Op.INTRODUCE, '72|4096|5|');
    await c.ask(Op.RELEASE, '72|');
    expect(await g.drain()).toEqual([]);
    await c.setPerms('@releaseDomain', ['n0', 'r63']);
    await c.ask(Op.INTRODUCE, '72|4096|5|');
    await c.ask(Op.RELEASE, '72|');
    expect(await g.drain()).toEqual(['@releaseDomain/72 t']);
    await c.setPerms('@releaseDomain', ['n0']);
  });
});

describe('DOMID_ANY (32757) in permissions', () => {
  it('an entry for DOMID_ANY grants its access to every domain; the first matching entry decides', async () => {
    const [g, h] = await Promise.all([guest(64), guest(65)]);
    await c.write('/any/r', 'readable');
    await c.setPerms('/any/r', ['n0', 'r32757']);
    await c.write('/any/w', 'writable');
    await c.setPerms('/any/w', ['n0', 'b32757']);
    await c.write('/any/not65', 'v');
    await c.setPerms('/any/not65', ['n0', 'n65', 'r32757']);
    await runScenario({ g, h }, [
      ['g', 0, 'READ', '/any/r|', 'readable'],
      ['h', 0, 'READ', '/any/r|', 'readable'],
      ['g', 0, 'WRITE', '/any/r|x', 'EACCES'],
      ['h', 0, 'WRITE', '/any/w|by 65', 'OK|'],
      ['g', 0, 'READ', '/any/w|', 'by 65'],
      ['g', 0, 'READ', '/any/not65|', 'v'],
      ['h', 0, 'READ', '/any/not65|', 'EACCES'],
    ]);
  });

  it('a guest with the DOMID_ANY feature may grant it; one without has the entry dropped; nobody makes it the owner', async () => {
    const g = await guest(66);
    const noAny = await guest(67, 4);
    const other = await guest(68);
    await g.write('shared', 'from 66');
    await runScenario({ g, noAny, c }, [
      ['g', 0, 'SET_PERMS', 'shared|n66|r32757|', 'OK|'],
      ['g', 0, 'GET_PERMS', 'shared|', 'n66|r32757|'],
      ['noAny', 0, 'WRITE', 'mine|v', 'OK|'],
      ['noAny', 0, 'SET_PERMS', 'mine|n67|r32757|r66|', 'OK|'],
      ['noAny', 0, 'GET_PERMS', 'mine|', 'n67|r66|'],
      ['g', 0, 'SET_PERMS', 'shared|n32757|', 'EINVAL'],
      ['c', 0, 'SET_PERMS', '/local/domain/66/shared|n32757|', 'EINVAL'],
    ]);
    expect(await other.read('/local/domain/66/shared')).toBe('from 66');
    expect(await other.ask(Op.READ, '/local/domain/67/mine|')).toBe('EACCES');
  });
});

describe('GET_FEATURE / SET_FEATURE bits', () => {
  it('WATCHDEPTH|DOMID_ANY (12) by default; set before INTRODUCE; an empty domid is dom0', async () => {
    const g = await guest(69);
    await runScenario({ c, g }, [
      ['c', 0, 'GET_FEATURE', '', '12|'],
      ['c', 0, 'GET_FEATURE', '|', '12|'],
      ['c', 0, 'GET_FEATURE', '0|', '12|'],
      ['c', 0, 'GET_FEATURE', '69|', '12|'],
      ['c', 0, 'GET_FEATURE', '0|1|', 'EINVAL'],
      ['g', 0, 'GET_FEATURE', '', '12|'],
      ['g', 0, 'GET_FEATURE', '|', 'EACCES'],
      ['c', 0, 'GET_FEATURE', '73|', 'ENOENT'],
      ['c', 0, 'SET_FEATURE', '73|2|', 'EINVAL'],
      ['c', 0, 'SET_FEATURE', '73|1|', 'EINVAL'],
      ['c', 0, 'SET_FEATURE', '73|4|', 'OK|'],
      ['c', 0, 'GET_FEATURE', '73|', '4|'],
      ['c', 0, 'SET_FEATURE', '0|4|', 'EBUSY'],
      ['c', 0, 'SET_FEATURE', '|4|', 'EBUSY'],
      ['c', 0, 'SET_FEATURE', '69|4|', 'EBUSY'],
      ['c', 0, 'SET_FEATURE', '32752|4|', 'ENOENT'],
      ['c', 0, 'INTRODUCE', '73|4096|5|', 'OK|'],
      ['c', 0, 'GET_FEATURE', '73|', '4|'],
    ]);
    const g73 = await d.connectDomain(73);
    expect(await g73.ask(Op.GET_FEATURE, '')).toBe('4|');
    // A released domain's features go with it.
    expect(await c.ask(Op.RELEASE, '73|')).toBe('OK|');
    expect(await c.ask(Op.GET_FEATURE, '73|')).toBe('ENOENT');
    expect(await c.ask(Op.INTRODUCE, '73|4096|5|')).toBe('OK|');
    expect(await c.ask(Op.GET_FEATURE, '73|')).toBe('12|');
    expect(await c.ask(Op.RELEASE, '73|')).toBe('OK|');
  });
});

describe('GET_QUOTA / SET_QUOTA as 4.22', () => {
  it('a global value is the default for domains introduced later, not for one introduced before', async () => {
    const before = await guest(74);
    try {
      await runScenario({ c }, [
        ['c', 0, 'SET_QUOTA', 'watches|2|', 'OK|'],
        ['c', 0, 'GET_QUOTA', 'watches|', '2|'],
        ['c', 0, 'GET_QUOTA', '74|watches|', '128|'],
      ]);
      const later = await guest(75);
      expect(await c.ask(Op.GET_QUOTA, '75|watches|')).toBe('2|');
      for (let i = 0; i < 3; i++) expect(await before.ask(Op.WATCH, `w${i}|t|`)).toBe('OK|');
      for (let i = 0; i < 2; i++) expect(await later.ask(Op.WATCH, `w${i}|t|`)).toBe('OK|');
      expect(await later.ask(Op.WATCH, 'w2|t|')).toBe('E2BIG');
    } finally {
      await c.ask(Op.SET_QUOTA, 'watches|128|');
    }
  });

  it('a domain that does not exist is ENOENT; 0 is unlimited and answered as 0; soft quotas are not offered', async () => {
    const g = await guest(76);
    await runScenario({ c }, [
      ['c', 0, 'GET_QUOTA', '9999|nodes|', 'ENOENT'],
      ['c', 0, 'SET_QUOTA', '9999|nodes|5|', 'ENOENT'],
      ['c', 0, 'GET_QUOTA', '0|nodes|', '1000|'],
      ['c', 0, 'GET_QUOTA', 'x|nodes|', 'EINVAL'],
      ['c', 0, 'GET_QUOTA', '76|nodes|x|', 'EINVAL'],
      ['c', 0, 'SET_QUOTA', '76|watches|0|', 'OK|'],
      ['c', 0, 'GET_QUOTA', '76|watches|', '0|'],
      ['c', 0, 'GET_QUOTA', 'soft-memory|', 'EINVAL'],
      ['c', 0, 'GET_QUOTA', 'node-permissions|', '5|'],
      ['c', 0, 'SET_QUOTA', 'node-permissions|6|', 'OK|'],
      ['c', 0, 'GET_QUOTA', 'permissions|', '6|'],
      ['c', 0, 'SET_QUOTA', 'node-permissions|5|', 'OK|'],
    ]);
    for (let i = 0; i < 140; i++) expect(await g.ask(Op.WATCH, `w${i}|t|`)).toBe('OK|');
  });

  it('CONTROL quota set changes every domain, as xenstore-control did with 4.17', async () => {
    await guest(77);
    try {
      expect(await c.control('quota', 'set', 'watches', '3')).toBe('OK');
      expect(await c.ask(Op.GET_QUOTA, '77|watches|')).toBe('3|');
    } finally {
      expect(await c.control('quota', 'set', 'watches', '128')).toBe('OK');
    }
  });
});
