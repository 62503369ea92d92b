/**
 * Compatibility with Xen's own clients (libxenstore, Xen 4.17 as shipped by Debian 12): the
 * xenstore-* command-line tools, xenstore-control and Xen's test suite test-xenstore, run against
 * nxenstored through `XENSTORED_PATH`. Expected outputs are what the tools print against Xen's own
 * daemons (checked with ../shared/refd/ while writing these tests).
 *
 * Binaries: see test/helpers/xen-tools.ts. A missing binary fails the test: CI installs them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import type { Wire } from '../helpers/wire.js';
import { runTool, startTool, xenTool } from '../helpers/xen-tools.js';

let d: RunningDaemon;
let c: Wire;

const tool = (name: string, ...args: string[]) => runTool(name, args, d.socket);

beforeAll(async () => {
  d = await startDaemon();
  c = await d.connect();
});

afterAll(async () => {
  await d?.stop();
});

describe('the binaries are there', () => {
  for (const name of [
    'xenstore-write',
    'xenstore-read',
    'xenstore-ls',
    'xenstore-list',
    'xenstore-exists',
    'xenstore-rm',
    'xenstore-chmod',
    'xenstore-watch',
    'xenstore-control',
    'test-xenstore',
  ]) {
    it(name, () => {
      expect(xenTool(name)).toMatch(new RegExp(`/${name}$`));
    });
  }
});

describe('xenstore-write, -read, -exists, -list, -ls, -rm', () => {
  it('write several pairs, read them back', async () => {
    const w = await tool('xenstore-write', '/compat/a', 'hello', '/compat/b', 'two words', '/compat/sub/c', '');
    expect(w).toMatchObject({ code: 0, stdout: '' });
    expect(await c.read('/compat/a')).toBe('hello');
    expect(await c.read('/compat/sub/c')).toBe('');
    const r = await tool('xenstore-read', '/compat/a', '/compat/b');
    expect(r).toMatchObject({ code: 0, stdout: 'hello\ntwo words\n' });
    const p = await tool('xenstore-read', '-p', '/compat/a');
    expect(p).toMatchObject({ code: 0, stdout: '/compat/a: hello\n' });
  });

  it('read of a missing node fails with exit code 1', async () => {
    const r = await tool('xenstore-read', '/compat/none');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain("couldn't read path /compat/none");
  });

  it('non-printable bytes written on the wire are escaped by -ls and -read, raw with -read -R', async () => {
    await c.write('/compat/bin/v', Buffer.from('a\x01b'));
    expect((await tool('xenstore-ls', '-f', '/compat/bin')).stdout).toBe('/compat/bin/v = "a\\001b"\n');
    expect((await tool('xenstore-read', '/compat/bin/v')).stdout).toBe('a\\001b\n');
    expect((await tool('xenstore-read', '-R', '/compat/bin/v')).stdout).toBe('a\x01b');
  });

  it('exists: 0 for a node, 1 for a missing one', async () => {
    expect((await tool('xenstore-exists', '/compat/a')).code).toBe(0);
    expect((await tool('xenstore-exists', '/compat')).code).toBe(0);
    expect((await tool('xenstore-exists', '/compat/none')).code).toBe(1);
    expect((await tool('xenstore-exists', '/compat/none/deeper')).code).toBe(1);
  });

  it('list prints the children, sorted; -p prints full paths', async () => {
    expect(await tool('xenstore-list', '/compat')).toMatchObject({ code: 0, stdout: 'a\nb\nbin\nsub\n' });
    expect(await tool('xenstore-list', '-p', '/compat/sub')).toMatchObject({ code: 0, stdout: '/compat/sub/c\n' });
    expect(await tool('xenstore-list', '/compat/a')).toMatchObject({ code: 0, stdout: '' });
    expect((await tool('xenstore-list', '/compat/none')).code).toBe(1);
  });

  it('list of a directory too big for one reply: libxenstore pages with DIRECTORY_PART', async () => {
    const names = Array.from({ length: 80 }, (_, i) => `entry${String(i).padStart(2, '0')}_${'x'.repeat(70)}`);
    for (const n of names) await c.write(`/compat-big/${n}`, '');
    expect(await c.ask(Op.DIRECTORY, '/compat-big|')).toBe('E2BIG');
    const r = await tool('xenstore-list', '/compat-big');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${names.join('\n')}\n`);
    expect((await tool('xenstore-rm', '/compat-big')).code).toBe(0);
  });

  it('ls -p -f prints every node with its value and permissions', async () => {
    await c.setPerms('/compat/b', ['n0', 'r5']);
    const r = await tool('xenstore-ls', '-p', '-f', '/compat');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        '/compat/a = "hello"   (n0)',
        '/compat/b = "two words"   (n0,r5)',
        '/compat/bin = ""   (n0)',
        '/compat/bin/v = "a\\001b"   (n0)',
        '/compat/sub = ""   (n0)',
        '/compat/sub/c = ""   (n0)',
        '',
      ].join('\n'),
    );
    const plain = await tool('xenstore-ls', '/compat/sub');
    expect(plain).toMatchObject({ code: 0, stdout: 'c = ""\n' });
  });

  it('rm: a node, a subtree, an absent node with a parent (0), an absent parent (1)', async () => {
    expect((await tool('xenstore-rm', '/compat/a')).code).toBe(0);
    expect(await c.ask(Op.READ, '/compat/a|')).toBe('ENOENT');
    expect((await tool('xenstore-rm', '/compat/sub')).code).toBe(0);
    expect(await c.ask(Op.READ, '/compat/sub/c|')).toBe('ENOENT');
    expect((await tool('xenstore-rm', '/compat/none')).code).toBe(0);
    const r = await tool('xenstore-rm', '/compat-nothing/none');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('could not remove path /compat-nothing/none');
    expect(await tool('xenstore-list', '/compat')).toMatchObject({ code: 0, stdout: 'b\nbin\n' });
  });
});

describe('xenstore-chmod', () => {
  it('sets a permission list, recursively with -r', async () => {
    await c.write('/compat-perm/x/y', 'v');
    expect((await tool('xenstore-chmod', '/compat-perm/x', 'n0', 'r5', 'w6')).code).toBe(0);
    expect(await c.getPerms('/compat-perm/x')).toEqual(['n0', 'r5', 'w6']);
    expect(await c.getPerms('/compat-perm/x/y')).toEqual(['n0']);
    expect((await tool('xenstore-chmod', '-r', '/compat-perm', 'b0')).code).toBe(0);
    for (const p of ['/compat-perm', '/compat-perm/x', '/compat-perm/x/y']) expect(await c.getPerms(p)).toEqual(['b0']);
    expect((await tool('xenstore-chmod', '/compat-perm/none', 'n0')).code).not.toBe(0);
    expect((await tool('xenstore-chmod', '/compat-perm/x', 'q7')).code).not.toBe(0);
  });
});

describe('xenstore-watch', () => {
  it('-n 3: prints the initial event, then the paths of changes at or below, then exits 0', async () => {
    const watcher = startTool('xenstore-watch', ['-n', '3', '/compat-w'], d.socket);
    try {
      expect(await watcher.lines(1)).toEqual(['/compat-w']);
      await c.write('/compat-w/x', '1');
      await c.write('/compat-other', 'no');
      await c.write('/compat-w', '2');
      const result = await watcher.done;
      expect(result.code).toBe(0);
      expect(result.stdout).toBe('/compat-w\n/compat-w/x\n/compat-w\n');
    } finally {
      watcher.kill();
    }
  });
});

describe('relative paths through libxenstore', () => {
  it('resolve under /local/domain/0; a relative watch reports relative paths', async () => {
    expect((await tool('xenstore-write', 'compat-rel/a', 'r')).code).toBe(0);
    expect(await c.read('/local/domain/0/compat-rel/a')).toBe('r');
    expect(await tool('xenstore-read', 'compat-rel/a')).toMatchObject({ code: 0, stdout: 'r\n' });
    const watcher = startTool('xenstore-watch', ['-n', '2', 'compat-rel'], d.socket);
    try {
      expect(await watcher.lines(1)).toEqual(['compat-rel']);
      await c.write('/local/domain/0/compat-rel/b', 'x');
      const result = await watcher.done;
      expect(result).toMatchObject({ code: 0, stdout: 'compat-rel\ncompat-rel/b\n' });
    } finally {
      watcher.kill();
    }
  });
});

describe('xenstore-control', () => {
  it('help lists the commands', async () => {
    const r = await tool('xenstore-control', 'help');
    expect(r.code).toBe(0);
    for (const cmd of ['check', 'help', 'log', 'print', 'quota']) expect(r.stdout).toMatch(new RegExp(`^${cmd}\\b`, 'm'));
  });

  it('check prints OK', async () => {
    expect(await tool('xenstore-control', 'check')).toMatchObject({ code: 0, stdout: 'OK\n' });
  });

  it('quota prints the limits', async () => {
    const r = await tool('xenstore-control', 'quota');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^nodes\s+1000$/m);
  });

  it('an unknown command fails (EINVAL: exit code 3, "Command not supported")', async () => {
    const r = await tool('xenstore-control', 'no-such-command');
    expect(r.code).toBe(3);
    expect(r.stdout + r.stderr).toContain('Command not supported');
  });
});

describe('as a guest (the domain socket)', () => {
  it('the tools act as the introduced domain', async () => {
    await d.guest(5);
    await c.mkdir('/local/domain/5');
    await c.setPerms('/local/domain/5', ['n5']);
    const sock = d.domainSocket(5);
    expect((await runTool('xenstore-write', ['data/x', '1'], sock)).code).toBe(0);
    expect(await c.read('/local/domain/5/data/x')).toBe('1');
    expect(await c.getPerms('/local/domain/5/data/x')).toEqual(['n5']);
    expect(await runTool('xenstore-read', ['data/x'], sock)).toMatchObject({ code: 0, stdout: '1\n' });
    expect((await runTool('xenstore-read', ['/tool/xenstored'], sock)).code).toBe(1);
    expect((await runTool('xenstore-write', ['/compat-guest', '1'], sock)).code).toBe(1);
    expect((await runTool('xenstore-control', ['check'], sock)).code).not.toBe(0);
  });
});

describe("Xen's test suite", () => {
  it('test-xenstore -i 100 passes', async () => {
    const r = await tool('test-xenstore', '-i', '100');
    if (r.code !== 0) throw new Error(`test-xenstore exited ${r.code} (${r.signal}):\n${r.stdout}\n${r.stderr}\n${d.output().slice(-3000)}`);
    for (const t of ['read 1', 'write 1', 'dir', 'rm node', 'ta empty', 'ta rmw', 'ta err']) expect(r.stdout).toContain(t);
    expect(await c.control('check')).toBe('OK');
  });
});
