/**
 * History on the wire (issue 14): CONTROL `history ...` names who made each commit (domid,
 * connection kind, connection id, transaction id), answers the tree as it was, diffs and blame,
 * works through xenstore-control, and is refused to guests. History never changes replies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { runScenario } from '../helpers/scenario.js';
import type { Wire } from '../helpers/wire.js';
import { runTool } from '../helpers/xen-tools.js';

let d: RunningDaemon;
let c: Wire;

beforeAll(async () => {
  d = await startDaemon({ args: ['--history-records', '1000'] });
  c = await d.connect();
});

afterAll(async () => {
  await d?.stop();
});

interface Entry {
  generation: number;
  time: string;
  domid: number;
  connection: string;
  id?: number;
  tx?: number;
  requests: string[];
  changes: { path: string; kind: string; old?: string; new?: string }[];
}

const json = async <T>(...args: string[]): Promise<T> => JSON.parse(await c.control('history', ...args)) as T;
const generation = async (): Promise<number> => Number(/^generation (\d+)$/m.exec(await c.control('stats'))![1]);

describe('CONTROL history', () => {
  it('is listed in CONTROL help', async () => {
    expect(await c.control('help')).toMatch(/^history log \[PATH\]/m);
  });

  it('logs who changed a path: dom0 on its socket, a guest on its ring, a transaction, a release', async () => {
    await c.write('/local/domain/0/backend/vbd/7/51712/state', '1');
    const g = await d.guest(7);
    await c.write('/local/domain/7/device', '');
    await c.setPerms('/local/domain/7/device', ['n7']);
    await g.write('device/state', '3');
    const g0 = await generation();
    const tx = await c.txStart();
    await c.write('/local/domain/0/backend/vbd/7/51712/state', '2', tx);
    await c.write('/local/domain/0/backend/vbd/7/51712/state', '4', tx);
    expect(await c.txEnd(tx, true)).toBe('OK|');
    expect(await generation()).toBe(g0 + 1);

    const log = await json<{ entries: Entry[]; next?: number }>('log', '/local/domain/0/backend/vbd/7/51712/state');
    expect(log.next).toBeUndefined();
    expect(log.entries.map((e) => [e.generation, e.domid, e.connection, e.tx, e.changes.map((x) => `${x.kind} ${x.old ?? '-'}>${x.new ?? '-'}`)])).toEqual([
      [g0 + 1, 0, 'socket', tx, ['changed 1>4']],
      [expect.any(Number), 0, 'socket', undefined, ['added ->1']],
    ]);
    expect(log.entries[0]!.requests).toEqual(['write /local/domain/0/backend/vbd/7/51712/state', 'write /local/domain/0/backend/vbd/7/51712/state']);
    expect(new Date(log.entries[0]!.time).getTime()).toBeGreaterThan(Date.now() - 600_000);

    const guestLog = await json<{ entries: Entry[] }>('log', '/local/domain/7', 'domid=7');
    expect(guestLog.entries).toHaveLength(1);
    expect(guestLog.entries[0]).toMatchObject({ generation: g0, domid: 7, connection: 'domain', requests: ['write device/state'] });

    // The release: an internal commit removing what domain 7 owned.
    expect(await c.ask(Op.RELEASE, '7|')).toBe('OK|');
    const rel = await json<{ entries: Entry[] }>('log', '/local/domain/7', 'limit=1');
    expect(rel.entries[0]).toMatchObject({ domid: 0, connection: 'internal', requests: ['release /local/domain/7'] });
    expect(rel.entries[0]!.changes).toEqual(
      expect.arrayContaining([{ path: '/local/domain/7/device', kind: 'removed', old: '', oldPerms: ['n7'] }]),
    );
  });

  it('answers the tree as it was, by generation or time, and diffs and blames', async () => {
    await c.write('/hist/vm/state', 'running');
    const before = await generation();
    const t = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    await c.write('/hist/vm/state', 'paused');
    await c.write('/hist/vm/extra', 'x');
    expect(await c.control('history', 'at', String(before), 'read', '/hist/vm/state')).toBe('running');
    expect(await c.control('history', 'at', t, 'read', '/hist/vm/state')).toBe('running');
    expect(await c.control('history', 'at', String(before + 1), 'read', '/hist/vm/state')).toBe('paused');
    expect(await json('at', String(before), 'ls', '/hist/vm')).toEqual({ generation: before, path: '/hist/vm', children: ['state'] });
    expect(await json('at', String(before), 'perms', '/hist/vm')).toEqual({ generation: before, path: '/hist/vm', perms: ['n0'] });
    expect(await c.ask(Op.CONTROL, `history|at|${before}|read|/hist/vm/extra|`)).toBe('ENOENT');
    expect(await json('diff', String(before), String(before + 2), '/hist')).toEqual({
      from: before,
      to: before + 2,
      path: '/hist',
      changes: [
        { path: '/hist/vm/extra', kind: 'added', new: 'x', newPerms: ['n0'] },
        { path: '/hist/vm/state', kind: 'changed', old: 'running', new: 'paused', newPerms: ['n0'] },
      ],
    });
    const blame = await json<{ lines: { path: string; generation?: number; connection?: string }[] }>('blame', '/hist/vm');
    expect(blame.lines.map((l) => [l.path, l.generation])).toEqual([
      ['/hist/vm', before],
      ['/hist/vm/extra', before + 2],
      ['/hist/vm/state', before + 1],
    ]);
    expect(await c.read('/hist/vm/state')).toBe('paused'); // the live store is untouched
  });

  it('names the oldest kept generation when asked for an older moment', async () => {
    const info = await json<{ oldest: { generation: number }; records: number }>('info');
    expect(info.oldest.generation).toBe(0);
    expect(await c.ask(Op.CONTROL, 'history|at|1970-01-01T00:00:00Z|read|/|')).toBe('ENOENT');
    expect(await c.ask(Op.CONTROL, `history|at|999999999|read|/|`)).toBe('EINVAL');
    expect(await c.ask(Op.CONTROL, `history|at|yesterday|read|/|`)).toBe('EINVAL');
    expect(await c.ask(Op.CONTROL, `history|log|relative/path|`)).toBe('EINVAL');
    expect(await c.ask(Op.CONTROL, `history|log|limit=0|`)).toBe('EINVAL');
    expect(await c.ask(Op.CONTROL, `history|nonsense|`)).toBe('EINVAL');
  });

  it('is refused to guests, which see nothing; socket_ro (dom0 reading) may query it', async () => {
    const g = await d.guest(9);
    const ro = await d.connectRo();
    await runScenario({ g, ro }, [
      ['g', 0, 'CONTROL', 'history|info|', 'EACCES'],
      ['g', 0, 'CONTROL', 'history|log|/|', 'EACCES'],
      ['g', 0, 'CONTROL', 'history|at|1|read|/local|', 'EACCES'],
    ]);
    expect(await ro.ask(Op.CONTROL, 'history|log|/|limit=1|')).toMatch(/^\{"entries":\[\{"generation":\d+/);
  });

  it('works through xenstore-control', async () => {
    await c.write('/hist/tool', 'v1');
    await c.write('/hist/tool', 'v2');
    const g = await generation();
    const r = await runTool('xenstore-control', ['history', 'at', String(g - 1), 'read', '/hist/tool'], d.socket);
    expect(r).toMatchObject({ code: 0, stdout: 'v1\n' });
    const log = await runTool('xenstore-control', ['history', 'log', '/hist/tool', 'limit=1'], d.socket);
    expect(log.code).toBe(0);
    expect(JSON.parse(log.stdout).entries[0].changes[0]).toMatchObject({ old: 'v1', new: 'v2' });
  });
});

describe('--history-records 0', () => {
  it('keeps no history: writes are served, CONTROL history answers ENOSYS', async () => {
    const off = await startDaemon({ args: ['--history-records', '0'] });
    try {
      const w = await off.connect();
      await w.write('/h0', 'x');
      expect(await w.read('/h0')).toBe('x');
      await expect(w.control('history', 'info')).rejects.toThrow(/ENOSYS/);
      await expect(w.control('history', 'log', '/h0')).rejects.toThrow(/ENOSYS/);
    } finally {
      await off.stop();
    }
  });
});
