/**
 * Tree operations from a privileged connection (spec §4, §7, §16 checks 7–8): implicit parents,
 * MKDIR/RM edge cases, permission inheritance and round trips, sorted listings, DIRECTORY_PART,
 * oversize replies, GET_DOMAIN_PATH. One daemon; each test works in its own subtree.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { pipelineSettled } from '../helpers/attack.js';
import { runScenario } from '../helpers/scenario.js';
import { Wire } from '../helpers/wire.js';

let d: RunningDaemon;
let c: Wire;
let w: Wire;

beforeAll(async () => {
  d = await startDaemon();
  [c, w] = await Promise.all([d.connect(), d.connect()]);
});

afterAll(async () => {
  await d?.stop();
});

describe('initial tree (§4.2)', () => {
  it('has /, /local, /tool, /tool/xenstored, owned by dom0 with n0', async () => {
    const fresh = await startDaemon();
    try {
      const x = await fresh.connect();
      expect(await x.dir('/')).toEqual(['local', 'tool']);
      expect(await x.dir('/tool')).toEqual(['xenstored']);
      for (const p of ['/', '/local', '/tool', '/tool/xenstored']) expect(await x.getPerms(p), p).toEqual(['n0']);
      expect(await x.read('/')).toBe('');
    } finally {
      await fresh.stop();
    }
  });
});

describe('WRITE, MKDIR, RM (§7.2–7.4, §16.7)', () => {
  it('scenario', async () => {
    await runScenario({ c, w }, [
      ['w', 0, 'WATCH', '/t7|tok|', 'OK|'],
      ['w', 0, 'EVENTS', '', '/t7 tok'],
      // WRITE creates the missing parents with empty values; one event, for the path written.
      ['c', 0, 'WRITE', '/t7/a/b/c|leaf', 'OK|'],
      ['c', 0, 'READ', '/t7/a|', ''],
      ['c', 0, 'READ', '/t7/a/b|', ''],
      ['c', 0, 'READ', '/t7/a/b/c|', 'leaf'],
      ['c', 0, 'DIRECTORY', '/t7/a|', 'b|'],
      ['w', 0, 'EVENTS', '', '/t7/a/b/c tok'],
      // MKDIR of an existing node: OK, value kept, no event.
      ['c', 0, 'MKDIR', '/t7/a/b/c|', 'OK|'],
      ['c', 0, 'READ', '/t7/a/b/c|', 'leaf'],
      ['w', 0, 'EVENTS', '', ''],
      // MKDIR of a new node: created empty with its parents, one event.
      ['c', 0, 'MKDIR', '/t7/m/n|', 'OK|'],
      ['c', 0, 'READ', '/t7/m/n|', ''],
      ['w', 0, 'EVENTS', '', '/t7/m/n tok'],
      // A node may have a value and children; WRITE of an existing node keeps its children.
      ['c', 0, 'WRITE', '/t7/a|top', 'OK|'],
      ['c', 0, 'READ', '/t7/a|', 'top'],
      ['c', 0, 'DIRECTORY', '/t7/a|', 'b|'],
      // Writing the same value again still fires.
      ['c', 0, 'WRITE', '/t7/a|top', 'OK|'],
      ['w', 0, 'EVENTS', '', '/t7/a tok, /t7/a tok'],
      // RM of a missing node whose parent exists: OK, no event. Missing parent: ENOENT.
      ['c', 0, 'RM', '/t7/a/zz|', 'OK|'],
      ['c', 0, 'RM', '/t7/nope/zz|', 'ENOENT'],
      ['w', 0, 'EVENTS', '', ''],
      // RM removes the whole subtree; one event at the removed node for the watch above it.
      ['c', 0, 'RM', '/t7/a|', 'OK|'],
      ['c', 0, 'READ', '/t7/a/b/c|', 'ENOENT'],
      ['c', 0, 'READ', '/t7/a|', 'ENOENT'],
      ['c', 0, 'DIRECTORY', '/t7|', 'm|'],
      ['w', 0, 'EVENTS', '', '/t7/a tok'],
      // RM / is refused (cxenstored), the tree is intact.
      ['c', 0, 'RM', '/|', 'EINVAL'],
      ['c', 0, 'READ', '/t7/m/n|', ''],
      // Missing nodes.
      ['c', 0, 'READ', '/t7/none|', 'ENOENT'],
      ['c', 0, 'DIRECTORY', '/t7/none|', 'ENOENT'],
      ['c', 0, 'GET_PERMS', '/t7/none|', 'ENOENT'],
      ['c', 0, 'SET_PERMS', '/t7/none|n0|', 'ENOENT'],
      ['w', 0, 'EVENTS', '', ''],
    ]);
  });
});

describe('permissions from a privileged connection (§6.1, §6.3, §7.7, §16.8)', () => {
  it('scenario', async () => {
    await runScenario({ c }, [
      ['c', 0, 'WRITE', '/t8|', 'OK|'],
      ['c', 0, 'GET_PERMS', '/t8|', 'n0|'],
      ['c', 0, 'SET_PERMS', '/t8|r3|w4|b5|n6|', 'OK|'],
      ['c', 0, 'GET_PERMS', '/t8|', 'r3|w4|b5|n6|'],
      // New nodes copy their parent's list (a privileged creator keeps the inherited owner).
      ['c', 0, 'WRITE', '/t8/x/y|v', 'OK|'],
      ['c', 0, 'GET_PERMS', '/t8/x|', 'r3|w4|b5|n6|'],
      ['c', 0, 'GET_PERMS', '/t8/x/y|', 'r3|w4|b5|n6|'],
      ['c', 0, 'MKDIR', '/t8/m|', 'OK|'],
      ['c', 0, 'GET_PERMS', '/t8/m|', 'r3|w4|b5|n6|'],
      // Changing a parent later does not change existing children; WRITE keeps perms.
      ['c', 0, 'SET_PERMS', '/t8|n0|', 'OK|'],
      ['c', 0, 'GET_PERMS', '/t8/x|', 'r3|w4|b5|n6|'],
      ['c', 0, 'WRITE', '/t8/x|new', 'OK|'],
      ['c', 0, 'GET_PERMS', '/t8/x|', 'r3|w4|b5|n6|'],
      // One entry is the minimum; dom0 may set as many as it likes.
      ['c', 0, 'SET_PERMS', '/t8/x|n0|r1|r2|r3|r4|r5|r6|r7|r8|r9|', 'OK|'],
      ['c', 0, 'GET_PERMS', '/t8/x|', 'n0|r1|r2|r3|r4|r5|r6|r7|r8|r9|'],
      // Malformed lists: EINVAL, and the list is unchanged.
      ['c', 0, 'SET_PERMS', '/t8/x|', 'EINVAL'],
      ['c', 0, 'SET_PERMS', '/t8/x|x5|', 'EINVAL'],
      ['c', 0, 'SET_PERMS', '/t8/x|r|', 'EINVAL'],
      ['c', 0, 'SET_PERMS', '/t8/x|r5x|', 'EINVAL'],
      ['c', 0, 'SET_PERMS', '/t8/x|5|', 'EINVAL'],
      ['c', 0, 'SET_PERMS', '/t8/x|r70000|', 'EINVAL'],
      ['c', 0, 'SET_PERMS', '/t8/x|n0|r1', 'EINVAL'],
      ['c', 0, 'GET_PERMS', '/t8/x|', 'n0|r1|r2|r3|r4|r5|r6|r7|r8|r9|'],
    ]);
  });
});

describe('DIRECTORY (§7.5)', () => {
  it('lists children sorted by name, whatever the creation order', async () => {
    for (const n of ['delta', 'alpha', 'charlie', 'Bravo', '9', '_x', 'a-b', 'a']) await c.write(`/tdir/${n}`, '');
    expect(await c.dir('/tdir')).toEqual(['9', 'Bravo', '_x', 'a', 'a-b', 'alpha', 'charlie', 'delta']);
    await c.rm('/tdir/alpha');
    expect(await c.dir('/tdir')).toEqual(['9', 'Bravo', '_x', 'a', 'a-b', 'charlie', 'delta']);
  });

  it('a reply over 4096 bytes is E2BIG and the connection survives (XSA-72)', async () => {
    const names = Array.from({ length: 60 }, (_, i) => `n${String(i).padStart(3, '0')}_${'x'.repeat(90)}`);
    await Promise.all(names.map((n) => c.write(`/tbig/${n}`, '')));
    // 60 × 96 bytes = 5760 > 4096
    const r = await c.request(Op.DIRECTORY, '/tbig|');
    expect(r.type).toBe(Op.ERROR);
    expect(r.payload.toString('latin1')).toBe('E2BIG\0');
    expect(await c.read('/tbig')).toBe('');
    expect((await c.dir(`/tbig/${names[0]}`)).length).toBe(0);
  });

  it('DIRECTORY_PART pages through a big directory and reassembles the full sorted list (§7.6)', async () => {
    const names = Array.from({ length: 150 }, (_, i) => `p${String(i).padStart(3, '0')}_${'y'.repeat(40 + (i % 17))}`);
    await Promise.all(names.map((n) => c.write(`/tpart/${n}`, '')));
    expect(await c.ask(Op.DIRECTORY, '/tpart|')).toBe('E2BIG');
    const got: string[] = [];
    let offset = 0;
    let gen: string | undefined;
    let chunks = 0;
    for (;;) {
      const r = await c.request(Op.DIRECTORY_PART, `/tpart|${offset}|`);
      expect(r.type).toBe(Op.DIRECTORY_PART);
      expect(r.payload.length).toBeLessThanOrEqual(4096);
      const s = r.payload.toString('latin1');
      const g = s.slice(0, s.indexOf('\0'));
      expect(g).toMatch(/^\d+$/);
      if (gen !== undefined) expect(g).toBe(gen);
      gen = g;
      const body = s.slice(g.length + 1);
      chunks++;
      // The last chunk ends with an extra empty string (one more NUL).
      const done = body.endsWith('\0\0') || body === '\0';
      const part = body.split('\0').filter((x) => x !== '');
      got.push(...part);
      offset += part.reduce((n, x) => n + x.length + 1, 0);
      if (done) break;
      expect(part.length).toBeGreaterThan(0);
      expect(chunks).toBeLessThan(20);
    }
    expect(chunks).toBeGreaterThan(1);
    expect(got).toEqual([...names].sort());
  });

  it("DIRECTORY_PART of a large directory: the generation stays through a child's write, changes when a child is added or removed", async () => {
    // 1,100 children: a listing of that many names is made by blocks and its generation drawn
    // per name list (server/dispatch/listing.ts), not hashed.
    const names = Array.from({ length: 1100 }, (_, i) => `q${String(i).padStart(4, '0')}`);
    await pipelineSettled(c, names.map((n) => [Op.WRITE, `/tlarge/${n}|`] as const));
    const gen = async (offset = 0): Promise<string> => (await c.ask(Op.DIRECTORY_PART, `/tlarge|${offset}|`)).split('|')[0]!;
    const g = await gen();
    expect(g).toMatch(/^\d{1,23}$/);
    expect(await gen(4000)).toBe(g);
    await c.write('/tlarge/q0007', 'a value');
    await c.write('/tlarge', 'its own value');
    expect(await gen(4000)).toBe(g);
    await c.write('/tlarge/zz', '');
    const g2 = await gen(4000);
    expect(g2).not.toBe(g);
    await c.rm('/tlarge/q0003');
    expect(await gen()).not.toBe(g2);
    expect(await c.ask(Op.DIRECTORY, '/tlarge|')).toBe('E2BIG');
  });

  it('DIRECTORY_PART: small directory, offset past the end, argument errors', async () => {
    await c.write('/tpart2/a', '');
    await c.write('/tpart2/bb', '');
    const whole = await c.ask(Op.DIRECTORY_PART, '/tpart2|0|');
    expect(whole).toMatch(/^\d+\|a\|bb\|\|$/);
    const gen = whole.split('|')[0];
    expect(await c.ask(Op.DIRECTORY_PART, '/tpart2|2|')).toBe(`${gen}|bb||`);
    expect(await c.ask(Op.DIRECTORY_PART, '/tpart2|5|')).toBe(`${gen}||`);
    expect(await c.ask(Op.DIRECTORY_PART, '/tpart2|999|')).toBe(`${gen}||`);
    // An empty directory.
    expect(await c.ask(Op.DIRECTORY_PART, '/tpart2/a|0|')).toMatch(/^\d+\|\|$/);
    // The generation changes when the listing changes.
    await c.write('/tpart2/c', '');
    expect((await c.ask(Op.DIRECTORY_PART, '/tpart2|0|')).split('|')[0]).not.toBe(gen);
    expect(await c.ask(Op.DIRECTORY_PART, '/tpart2|')).toBe('EINVAL');
    expect(await c.ask(Op.DIRECTORY_PART, '/tpart2|0|1|')).toBe('EINVAL');
    expect(await c.ask(Op.DIRECTORY_PART, '/tpart2|x|')).toBe('EINVAL');
    expect(await c.ask(Op.DIRECTORY_PART, '/tpart2/none|0|')).toBe('ENOENT');
  });
});

describe('GET_DOMAIN_PATH (§7.8)', () => {
  it('scenario', async () => {
    await runScenario({ c }, [
      ['c', 0, 'GET_DOMAIN_PATH', '0|', '/local/domain/0|'],
      ['c', 0, 'GET_DOMAIN_PATH', '5|', '/local/domain/5|'],
      // No existence check.
      ['c', 0, 'GET_DOMAIN_PATH', '32000|', '/local/domain/32000|'],
      ['c', 0, 'GET_DOMAIN_PATH', '65535|', '/local/domain/65535|'],
      ['c', 0, 'GET_DOMAIN_PATH', '65536|', 'EINVAL'],
      ['c', 0, 'GET_DOMAIN_PATH', '|', 'EINVAL'],
      ['c', 0, 'GET_DOMAIN_PATH', '5|6|', 'EINVAL'],
      ['c', 0, 'GET_DOMAIN_PATH', 'abc|', 'EINVAL'],
    ]);
  });
});
