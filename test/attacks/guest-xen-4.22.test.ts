/**
 * Issue 15: the paths Xen 4.22 adds, taken by a hostile guest. A WATCH depth is a bounded decimal
 * (a huge or negative one is EINVAL, not a big number kept); per-domain special watches
 * (`@releaseDomain/<domid>`) count against the same `watches` quota and hear only what
 * `@releaseDomain`'s permissions allow; DOMID_ANY cannot be made a node's owner (cxenstored would
 * make every domain its owner), and a guest whose toolstack withheld the DOMID_ANY feature cannot
 * open its nodes to every domain with it; the 4.22 messages that set things stay privileged.
 */
import { describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { guestWithHome, pipelineSettled, tally } from '../helpers/attack.js';
import { sharedDaemon } from '../helpers/shared-daemon.js';

const shared = sharedDaemon();

describe('a guest using Xen 4.22 requests against others', () => {
  it('a watch depth is bounded and per-domain special watches are quota-bound and filtered', async () => {
    const { d, c } = shared;
    const g = await guestWithHome(d, c, 81);
    expect(await g.ask(Op.WATCH, `x|t|${'9'.repeat(4000)}|`)).toBe('EINVAL');
    expect(await g.ask(Op.WATCH, 'x|t|-1|')).toBe('EINVAL');
    expect(await g.ask(Op.WATCH, 'x|t|65536|')).toBe('EINVAL');
    expect(await g.ask(Op.WATCH, 'x|t|65535|')).toBe('OK|');
    const replies = await pipelineSettled(
      g,
      Array.from({ length: 200 }, (_, i) => [Op.WATCH, Buffer.from(`@releaseDomain/${i}\0t\0`)] as const),
    );
    // 127 more in all (one is held already), E2BIG beyond (quota `watches` 128).
    expect(tally(replies)).toEqual({ 'OK|': 127, E2BIG: 73 });
    await g.drain();
    await c.ask(Op.INTRODUCE, '5|4096|5|');
    await c.ask(Op.RELEASE, '5|');
    expect(await g.drain()).toEqual([]);
  });

  it('cannot give DOMID_ANY ownership, nor grant it without the feature; SET_FEATURE / SET_QUOTA stay privileged', async () => {
    const { d, c } = shared;
    expect(await c.ask(Op.SET_FEATURE, '82|4|')).toBe('OK|');
    const g = await guestWithHome(d, c, 82);
    const other = await guestWithHome(d, c, 83);
    await g.write('secret', 'mine');
    expect(await g.ask(Op.SET_PERMS, 'secret|n32757|')).toBe('EINVAL');
    expect(await g.ask(Op.SET_PERMS, 'secret|n82|b32757|')).toBe('OK|');
    expect(await g.ask(Op.GET_PERMS, 'secret|')).toBe('n82|');
    expect(await other.ask(Op.READ, '/local/domain/82/secret|')).toBe('EACCES');
    expect(await other.ask(Op.WRITE, '/local/domain/82/secret|taken')).toBe('EACCES');
    expect(await g.ask(Op.SET_FEATURE, '84|12|')).toBe('EACCES');
    expect(await g.ask(Op.SET_QUOTA, '82|watches|100000|')).toBe('EACCES');
    expect(await g.ask(Op.GET_QUOTA, '')).toBe('EACCES');
    // Handing the daemon to another program is dom0's alone (CONTROL is privileged).
    expect(await g.ask(Op.CONTROL, 'hand-back|/bin/sh|-c|id|')).toBe('EACCES');
  });
});
