/**
 * Permissions between guests (spec §6, §16 checks 9–10; XSA-352, XSA-353): owners, default
 * letters, per-domain ACL entries, creator-owns, existence leakage, owner changes, privileged-only
 * requests, SET_TARGET. Guests are introduced from dom0 and connect on their own sockets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { runScenario } from '../helpers/scenario.js';
import type { Wire } from '../helpers/wire.js';

let d: RunningDaemon;
let c: Wire;
let g5: Wire;
let g6: Wire;
let g7: Wire;

beforeAll(async () => {
  d = await startDaemon();
  c = await d.connect();
  [g5, g6, g7] = await Promise.all([d.guest(5), d.guest(6), d.guest(7)]);
  // The toolstack's layout: each guest owns its home.
  for (const id of [5, 6, 7]) {
    await c.mkdir(`/local/domain/${id}`);
    await c.setPerms(`/local/domain/${id}`, [`n${id}`]);
  }
  await c.write('/perm/dom0only', 'secret');
  await c.write('/perm/n5', 'five');
  await c.setPerms('/perm/n5', ['n5']);
  await c.write('/perm/acl', 'acl');
  await c.setPerms('/perm/acl', ['n5', 'r7']);
  await c.write('/perm/w6', 'w6');
  await c.setPerms('/perm/w6', ['n0', 'w6']);
  await c.write('/perm/pub', 'pub');
  await c.setPerms('/perm/pub', ['r0']);
  await c.mkdir('/perm/bdir');
  await c.setPerms('/perm/bdir', ['n0', 'b6']);
  await c.write('/perm/first', 'first');
  await c.setPerms('/perm/first', ['b0', 'n5']);
  await c.write('/perm/rmt/child', 'c');
  await c.setPerms('/perm/rmt', ['n0', 'b5']);
});

afterAll(async () => {
  await d?.stop();
});

describe('access checks (§6.2, §16.9)', () => {
  it('the owner has full access whatever its letter; others get entry 0 or their ACL entry', async () => {
    await runScenario({ c, g5, g6, g7 }, [
      // n5 owned by 5: 5 reads and writes, 6 nothing.
      ['g5', 0, 'READ', '/perm/n5|', 'five'],
      ['g5', 0, 'WRITE', '/perm/n5|5new', 'OK|'],
      ['g5', 0, 'GET_PERMS', '/perm/n5|', 'n5|'],
      ['g5', 0, 'DIRECTORY', '/perm/n5|', ''],
      ['g6', 0, 'READ', '/perm/n5|', 'EACCES'],
      ['g6', 0, 'WRITE', '/perm/n5|x', 'EACCES'],
      ['g6', 0, 'GET_PERMS', '/perm/n5|', 'EACCES'],
      ['g6', 0, 'DIRECTORY', '/perm/n5|', 'EACCES'],
      ['g6', 0, 'DIRECTORY_PART', '/perm/n5|0|', 'EACCES'],
      ['g6', 0, 'RM', '/perm/n5|', 'EACCES'],
      ['g6', 0, 'MKDIR', '/perm/n5/sub|', 'EACCES'],
      ['c', 0, 'READ', '/perm/n5|', '5new'],
      // `n5 r7`: 7 may read but not write; 6 nothing; the owner still writes.
      ['g7', 0, 'READ', '/perm/acl|', 'acl'],
      ['g7', 0, 'GET_PERMS', '/perm/acl|', 'n5|r7|'],
      ['g7', 0, 'WRITE', '/perm/acl|x', 'EACCES'],
      ['g6', 0, 'READ', '/perm/acl|', 'EACCES'],
      ['g5', 0, 'WRITE', '/perm/acl|acl2', 'OK|'],
      ['g7', 0, 'READ', '/perm/acl|', 'acl2'],
      // `n0 w6`: 6 writes blind.
      ['g6', 0, 'WRITE', '/perm/w6|by6', 'OK|'],
      ['g6', 0, 'READ', '/perm/w6|', 'EACCES'],
      ['c', 0, 'READ', '/perm/w6|', 'by6'],
      // `r0`: everyone reads, nobody but dom0 writes.
      ['g5', 0, 'READ', '/perm/pub|', 'pub'],
      ['g6', 0, 'READ', '/perm/pub|', 'pub'],
      ['g5', 0, 'WRITE', '/perm/pub|x', 'EACCES'],
      ['g5', 0, 'MKDIR', '/perm/pub|', 'EACCES'],
      ['g5', 0, 'SET_PERMS', '/perm/pub|r0|b5|', 'EACCES'],
      // `b0 n5`: the first matching ACL entry decides, even when the default is more generous.
      ['g5', 0, 'READ', '/perm/first|', 'EACCES'],
      ['g6', 0, 'READ', '/perm/first|', 'first'],
      ['g6', 0, 'WRITE', '/perm/first|by6', 'OK|'],
      // `n0`: only dom0.
      ['g5', 0, 'READ', '/perm/dom0only|', 'EACCES'],
      ['g5', 0, 'WRITE', '/perm/dom0only|x', 'EACCES'],
      ['c', 0, 'READ', '/perm/dom0only|', 'secret'],
    ]);
  });

  it('only the node itself is checked, not its ancestors', async () => {
    // /perm is n0, yet /perm/pub is readable and /perm/w6 writable.
    await runScenario({ c, g5 }, [
      ['g5', 0, 'DIRECTORY', '/perm|', 'EACCES'],
      ['g5', 0, 'READ', '/perm/pub|', 'pub'],
    ]);
  });

  it('a missing node is ENOENT only if the nearest existing ancestor grants the access (§6.2)', async () => {
    await runScenario({ g5 }, [
      ['g5', 0, 'READ', '/perm/dom0only/missing|', 'EACCES'],
      ['g5', 0, 'READ', '/perm/dom0only/a/b/c|', 'EACCES'],
      ['g5', 0, 'READ', '/perm/pub/missing|', 'ENOENT'],
      ['g5', 0, 'READ', '/perm/n5/missing|', 'ENOENT'],
      ['g5', 0, 'DIRECTORY', '/perm/n5/missing/deeper|', 'ENOENT'],
      ['g5', 0, 'WRITE', '/perm/pub/new|x', 'EACCES'],
      ['g5', 0, 'RM', '/perm/dom0only/missing|', 'EACCES'],
    ]);
  });

  it('RM needs write on the node itself, and removes what lies below', async () => {
    // /perm/rmt is `n0 b5`; its child is dom0's `n0`.
    await runScenario({ c, g5 }, [
      ['g5', 0, 'RM', '/perm/rmt/child|', 'EACCES'],
      ['c', 0, 'READ', '/perm/rmt/child|', 'c'],
      ['g5', 0, 'RM', '/perm/rmt|', 'OK|'],
      ['c', 0, 'READ', '/perm/rmt|', 'ENOENT'],
    ]);
  });
});

describe('creation and ownership (§6.3, XSA-352)', () => {
  it('an unprivileged creator owns what it creates, parents included; the ACL is inherited', async () => {
    await runScenario({ c, g6, g5 }, [
      ['g6', 0, 'WRITE', '/perm/bdir/child|c', 'OK|'],
      ['c', 0, 'GET_PERMS', '/perm/bdir/child|', 'n6|b6|'],
      ['g6', 0, 'WRITE', '/perm/bdir/p/q|v', 'OK|'],
      ['c', 0, 'GET_PERMS', '/perm/bdir/p|', 'n6|b6|'],
      ['c', 0, 'GET_PERMS', '/perm/bdir/p/q|', 'n6|b6|'],
      ['g6', 0, 'MKDIR', '/perm/bdir/m|', 'OK|'],
      ['c', 0, 'GET_PERMS', '/perm/bdir/m|', 'n6|b6|'],
      ['g5', 0, 'READ', '/perm/bdir/child|', 'EACCES'],
      // The parent stays dom0's.
      ['c', 0, 'GET_PERMS', '/perm/bdir|', 'n0|b6|'],
      ['g6', 0, 'SET_PERMS', '/perm/bdir|n0|b6|r5|', 'EACCES'],
    ]);
  });

  it('relative paths of a guest resolve under its home, which it owns', async () => {
    await runScenario({ c, g5, g6 }, [
      ['g5', 0, 'WRITE', 'data/x|1', 'OK|'],
      ['c', 0, 'READ', '/local/domain/5/data/x|', '1'],
      ['c', 0, 'GET_PERMS', '/local/domain/5/data/x|', 'n5|'],
      ['g5', 0, 'READ', '/local/domain/5/data/x|', '1'],
      ['g5', 0, 'DIRECTORY', 'data|', 'x|'],
      ['g5', 0, 'GET_DOMAIN_PATH', '5|', '/local/domain/5|'],
      ['g6', 0, 'READ', 'data/x|', 'ENOENT'],
      ['g6', 0, 'READ', '/local/domain/5/data/x|', 'EACCES'],
      ['g6', 0, 'DIRECTORY', '/local/domain/5|', 'EACCES'],
      ['g6', 0, 'WRITE', '/local/domain/5/data/y|z', 'EACCES'],
    ]);
  });

  it('only a privileged caller may change the owner (EPERM); the owner may change the ACL', async () => {
    await runScenario({ c, g5, g6, g7 }, [
      ['g5', 0, 'WRITE', 'own|mine', 'OK|'],
      ['g5', 0, 'SET_PERMS', 'own|n6|', 'EPERM'],
      ['g5', 0, 'SET_PERMS', 'own|r6|', 'EPERM'],
      ['g5', 0, 'SET_PERMS', 'own|n0|', 'EPERM'],
      ['c', 0, 'GET_PERMS', '/local/domain/5/own|', 'n5|'],
      ['g5', 0, 'SET_PERMS', 'own|n5|r6|', 'OK|'],
      ['g6', 0, 'READ', '/local/domain/5/own|', 'mine'],
      ['g6', 0, 'WRITE', '/local/domain/5/own|x', 'EACCES'],
      ['g5', 0, 'SET_PERMS', 'own|r5|', 'OK|'],
      ['g6', 0, 'READ', '/local/domain/5/own|', 'mine'],
      // A non-owner with read+write still may not set permissions.
      ['g5', 0, 'SET_PERMS', 'own|n5|b7|', 'OK|'],
      ['g7', 0, 'WRITE', '/local/domain/5/own|by7', 'OK|'],
      ['g7', 0, 'SET_PERMS', '/local/domain/5/own|n5|b7|b6|', 'EACCES'],
      ['g7', 0, 'SET_PERMS', '/local/domain/5/own|n7|', 'EACCES'],
      // dom0 may give the node away.
      ['c', 0, 'SET_PERMS', '/local/domain/5/own|n6|', 'OK|'],
      ['g6', 0, 'WRITE', '/local/domain/5/own|by6', 'OK|'],
      ['g5', 0, 'READ', 'own|', 'EACCES'],
    ]);
  });
});

describe('the root and privileged requests (§2, §6.2, XSA-353, §16.10)', () => {
  it('an unprivileged domain can do nothing to / (n0)', async () => {
    await runScenario({ c, g5 }, [
      ['g5', 0, 'READ', '/|', 'EACCES'],
      ['g5', 0, 'DIRECTORY', '/|', 'EACCES'],
      ['g5', 0, 'DIRECTORY_PART', '/|0|', 'EACCES'],
      ['g5', 0, 'GET_PERMS', '/|', 'EACCES'],
      ['g5', 0, 'SET_PERMS', '/|n5|', 'EACCES'],
      ['g5', 0, 'SET_PERMS', '/|n0|b5|', 'EACCES'],
      ['g5', 0, 'WRITE', '/|x', 'EACCES'],
      ['g5', 0, 'WRITE', '/newtop|x', 'EACCES'],
      ['g5', 0, 'MKDIR', '/newtop|', 'EACCES'],
      ['g5', 0, 'RM', '/|', /^(EACCES|EINVAL)$/],
      ['g5', 0, 'RM', '/perm|', 'EACCES'],
      ['c', 0, 'GET_PERMS', '/|', 'n0|'],
      ['c', 0, 'READ', '/perm/dom0only|', 'secret'],
      ['c', 0, 'READ', '/newtop|', 'ENOENT'],
    ]);
  });

  it('privileged-only requests are EACCES for a guest and change nothing', async () => {
    await runScenario({ c, g5 }, [
      ['g5', 0, 'INTRODUCE', '9|4096|1|', 'EACCES'],
      ['g5', 0, 'RELEASE', '6|', 'EACCES'],
      ['g5', 0, 'RESUME', '6|', 'EACCES'],
      ['g5', 0, 'SET_TARGET', '5|6|', 'EACCES'],
      ['g5', 0, 'IS_DOMAIN_INTRODUCED', '6|', 'EACCES'],
      ['g5', 0, 'CONTROL', 'help|', 'EACCES'],
      ['g5', 0, 'CONTROL', 'check|', 'EACCES'],
      ['g5', 0, 'GET_QUOTA', '|', 'EACCES'],
      ['g5', 0, 'GET_QUOTA', 'nodes|', 'EACCES'],
      ['g5', 0, 'SET_QUOTA', 'nodes|5000|', 'EACCES'],
      ['g5', 0, 'SET_QUOTA', '5|nodes|5000|', 'EACCES'],
      ['g5', 0, 'SET_FEATURE', '9|0|', 'EACCES'],
      ['g5', 0, 'GET_FEATURE', '5|', 'EACCES'],
      // Privilege is checked before the transaction id, which is checked before the path.
      ['g5', 999, 'INTRODUCE', '9|4096|1|', 'EACCES'],
      ['g5', 999, 'CONTROL', 'help|', 'EACCES'],
      ['g5', 999, 'READ', '/perm/dom0only|', 'ENOENT'],
      // Allowed for everyone.
      ['g5', 0, 'GET_FEATURE', '', /^\d+\|$/],
      ['g5', 0, 'GET_DOMAIN_PATH', '6|', '/local/domain/6|'],
      ['g5', 0, 'RESET_WATCHES', '|', 'OK|'],
      ['c', 0, 'IS_DOMAIN_INTRODUCED', '6|', 'T|'],
      ['c', 0, 'IS_DOMAIN_INTRODUCED', '9|', 'F|'],
      ['c', 0, 'GET_QUOTA', 'nodes|', '1000|'],
    ]);
  });
});

describe('SET_TARGET (§6.5)', () => {
  it('lets a stub domain act for its target, on open and new connections', async () => {
    const g8 = await d.guest(8);
    const g9 = await d.guest(9);
    for (const id of [8, 9]) {
      await c.mkdir(`/local/domain/${id}`);
      await c.setPerms(`/local/domain/${id}`, [`n${id}`]);
    }
    await c.write('/perm/t9', 'nine');
    await c.setPerms('/perm/t9', ['n9']);
    await c.write('/perm/t9acl', 'acl9');
    await c.setPerms('/perm/t9acl', ['n0', 'r9']);
    await c.write('/perm/t8', 'eight');
    await c.setPerms('/perm/t8', ['n8']);
    await runScenario({ c, g8, g9 }, [
      ['g8', 0, 'READ', '/perm/t9|', 'EACCES'],
      ['g8', 0, 'READ', '/perm/t9acl|', 'EACCES'],
      ['c', 0, 'SET_TARGET', '8|99|', 'ENOENT'],
      ['c', 0, 'SET_TARGET', '99|9|', 'ENOENT'],
      ['c', 0, 'SET_TARGET', '8|0|', 'ENOENT'],
      ['c', 0, 'SET_TARGET', '8|', 'EINVAL'],
      ['c', 0, 'SET_TARGET', '8|9|', 'OK|'],
      // Owner rights on the target's nodes, and the target's ACL entries.
      ['g8', 0, 'READ', '/perm/t9|', 'nine'],
      ['g8', 0, 'WRITE', '/perm/t9|by8', 'OK|'],
      ['g8', 0, 'GET_PERMS', '/perm/t9|', 'n9|'],
      ['g8', 0, 'READ', '/perm/t9acl|', 'acl9'],
      ['g8', 0, 'WRITE', '/perm/t9acl|x', 'EACCES'],
      ['g8', 0, 'READ', '/perm/t8|', 'eight'],
      // Not the other way round.
      ['g9', 0, 'READ', '/perm/t8|', 'EACCES'],
      ['g9', 0, 'READ', '/perm/t9|', 'by8'],
      // Relative paths still resolve under the stub domain's own home.
      ['g8', 0, 'GET_DOMAIN_PATH', '8|', '/local/domain/8|'],
      ['g8', 0, 'WRITE', 'stubdata|s', 'OK|'],
      ['c', 0, 'READ', '/local/domain/8/stubdata|', 's'],
      ['c', 0, 'GET_PERMS', '/local/domain/8/stubdata|', 'n8|'],
      // Others are unaffected.
      ['g9', 0, 'READ', '/perm/n5|', 'EACCES'],
    ]);
    const again = await d.connectDomain(8);
    expect(await again.read('/perm/t9')).toBe('by8');
    // Watch events are filtered with the target's rights too (XSA-115).
    await again.watch('/perm', 'p');
    await again.drain();
    await c.write('/perm/t9', 'dom0');
    await c.write('/perm/dom0only', 'secret2');
    expect(await again.drain()).toEqual(['/perm/t9 p']);
    again.close();
  });
});

// Domids are reused (§6.6): rights tied to a domid must end with the domain, or a new, unrelated
// domain with the same id inherits them (XSA-322, XSA-417). SET_TARGET is such a right.
describe('SET_TARGET and domain lifetime (§6.5, §6.6, XSA-322)', () => {
  it('releasing the target ends the stub\'s rights: a new domain reusing the domid is not controlled by the old stub', async () => {
    const stub = await d.guest(18);
    await d.guest(19);
    expect(await c.ask(Op.SET_TARGET, '18|19|')).toBe('OK|');
    await c.write('/perm/t19', 'old 19');
    await c.setPerms('/perm/t19', ['n19']);
    expect(await stub.read('/perm/t19')).toBe('old 19');
    expect(await c.ask(Op.RELEASE, '19|')).toBe('OK|');
    // A new, unrelated domain 19.
    await d.guest(19);
    await c.write('/perm/new19', 'new 19');
    await c.setPerms('/perm/new19', ['n19']);
    expect(await stub.ask(Op.READ, '/perm/new19|')).toBe('EACCES');
    expect(await stub.ask(Op.WRITE, '/perm/new19|x')).toBe('EACCES');
    const fresh = await d.connectDomain(18);
    expect(await fresh.ask(Op.READ, '/perm/new19|')).toBe('EACCES');
  });

  it('releasing the stub domain ends its target: a re-introduced stub domid starts without one', async () => {
    await d.guest(28);
    await d.guest(29);
    expect(await c.ask(Op.SET_TARGET, '28|29|')).toBe('OK|');
    expect(await c.ask(Op.RELEASE, '28|')).toBe('OK|');
    const again = await d.guest(28);
    await c.write('/perm/t29', 'nine');
    await c.setPerms('/perm/t29', ['n29']);
    expect(await again.ask(Op.READ, '/perm/t29|')).toBe('EACCES');
  });
});

describe('state after all of this', () => {
  it('the store passes its consistency check', async () => {
    expect(await c.control('check')).toBe('OK');
    expect(await c.ask(Op.READ, '/perm/pub|')).toBe('pub');
  });
});
