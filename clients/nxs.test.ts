import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type NxsIo } from './nxs.js';
import { COMMANDS } from './nxs-commands.js';

/**
 * `nxs` against the real daemon: dist/src/nxenstored.js on a temporary run directory (the test
 * command builds dist/ first). Each command is run through `main(argv, io)` with captured output.
 */

const DAEMON = fileURLToPath(new URL('../dist/src/nxenstored.js', import.meta.url));

let rundir: string;
let daemon: ChildProcess;

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

beforeAll(async () => {
  if (!existsSync(DAEMON)) {
    throw new Error(`${DAEMON} is missing: build first with \`npx tsc -p tsconfig.json\` (\`npm test\` does)`);
  }
  rundir = mkdtempSync(join(tmpdir(), 'nxs-test-'));
  daemon = spawn(process.execPath, [DAEMON, '--rundir', rundir, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  daemon.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const socket = join(rundir, 'socket');
  for (let i = 0; !(await canConnect(socket)); i++) {
    if (daemon.exitCode !== null) throw new Error(`nxenstored exited with ${daemon.exitCode}: ${stderr}`);
    if (i > 300) throw new Error(`nxenstored did not open ${socket} within 15 s: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});

afterAll(async () => {
  if (daemon !== undefined && daemon.exitCode === null) {
    const exited = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGTERM');
    await exited;
  }
  if (rundir !== undefined) rmSync(rundir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  bytes: Buffer;
  stderr: string;
}

/** Runs `nxs argv` with the test daemon's run directory in the environment. */
async function nxs(argv: string[], extra: Partial<NxsIo> & { onOut?: (text: string) => void } = {}): Promise<Run> {
  const out: Buffer[] = [];
  let stderr = '';
  const io: NxsIo = {
    stdout: {
      write: (c: string | Uint8Array) => {
        out.push(Buffer.from(c));
        extra.onOut?.(Buffer.concat(out).toString());
      },
    },
    stderr: { write: (c: string) => (stderr += c) },
    env: { XENSTORED_RUNDIR: rundir },
    ...extra,
  };
  const code = await main(argv, io);
  const bytes = Buffer.concat(out);
  return { code, stdout: bytes.toString('utf8'), bytes, stderr };
}

/** Runs and expects success with empty stderr; returns stdout. */
async function ok(argv: string[], extra: Partial<NxsIo> = {}): Promise<string> {
  const r = await nxs(argv, extra);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

describe('command line', () => {
  it('-h lists every command on stdout and exits 0', async () => {
    const text = await ok(['-h']);
    for (const name of Object.keys(COMMANDS)) expect(text).toMatch(new RegExp(`^  ${name} `, 'm'));
    expect(await ok(['ls', '-h'])).toMatch(/^usage: nxs \[GLOBAL OPTIONS\] ls \[-p\] \[-f\] \[PATH\]/);
  });

  it.each([
    [[], /no command given/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['--bogus', 'read', '/'], /unknown option --bogus/],
    [['write', '/a'], /write: wrong number of arguments/],
    [['write', '/a', 'v', '/b'], /PATH VALUE pairs/],
    [['read', '-x', '/a'], /Unknown option '-x'/],
    [['chmod', '/a', 'q1'], /invalid permission "q1"/],
    [['watch', '-n', 'many', '/a'], /bad event count/],
    [['--socket', '/s', '--ro', 'read', '/'], /cannot be combined/],
    [['--domid', 'x', 'read', '/'], /bad --domid/],
    [['quota', 'a', 'b'], /quota \[DOMID\] \[NAME\]/],
  ])('usage error %j exits 2 with the message and usage', async (argv, message) => {
    const r = await nxs(argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^nxs: /);
    expect(r.stderr).toMatch(/usage: nxs/);
  });

  it('reports a socket nobody answers on as exit 1, without a stack trace', async () => {
    const missing = join(rundir, 'no-such-socket');
    expect(await nxs(['--socket', missing, 'read', '/'])).toEqual({
      code: 1,
      stdout: '',
      bytes: Buffer.alloc(0),
      stderr: `nxs: could not connect to ${missing}: ENOENT\n`,
    });
    const notSocket = join(rundir, 'plain-file');
    writeFileSync(notSocket, '');
    expect((await nxs(['--socket', notSocket, 'read', '/'])).stderr).toBe(`nxs: could not connect to ${notSocket}: ECONNREFUSED\n`);
  });

  it('takes the socket from --rundir and from XENSTORED_PATH', async () => {
    await ok(['write', '/cl/where', 'here']);
    expect(await ok(['-s', '--rundir', rundir, 'read', '/cl/where'], { env: {} })).toBe('here\n');
    expect(await ok(['read', '/cl/where'], { env: { XENSTORED_PATH: join(rundir, 'socket') } })).toBe('here\n');
  });
});

describe('tree commands', () => {
  it('write several pairs, read them back escaped, raw and prefixed', async () => {
    await ok(['write', '/rw/a', 'hello', '/rw/b', 'tab\\there', '/rw/c', 'é']);
    expect(await ok(['read', '/rw/a', '/rw/b', '/rw/c'])).toBe('hello\ntab\\there\n\\xc3\\xa9\n');
    expect((await nxs(['read', '-R', '/rw/b'])).bytes).toEqual(Buffer.from('tab\there'));
    expect(await ok(['read', '-p', '/rw/a'])).toBe('/rw/a: hello\n');
    await ok(['write', '-R', '/rw/raw', 'a\\tb']);
    expect(await ok(['read', '/rw/raw'])).toBe('a\\\\tb\n');
  });

  it('a failed read exits 1 with "could not read" and prints nothing on stdout', async () => {
    const r = await nxs(['read', '/rw-missing/x']);
    expect(r).toMatchObject({ code: 1, stdout: '', stderr: 'nxs: could not read /rw-missing/x: ENOENT\n' });
    // In a transaction, the output of the paths before the failure is not printed either.
    await ok(['write', '/rw2/a', '1']);
    expect(await nxs(['read', '/rw2/a', '/rw2/missing'])).toMatchObject({ code: 1, stdout: '' });
  });

  it('mkdir, exists and list', async () => {
    await ok(['mkdir', '/dir/x', '/dir/y']);
    expect(await ok(['list', '/dir'])).toBe('x\ny\n');
    expect(await ok(['list', '-p', '/dir'])).toBe('/dir/x\n/dir/y\n');
    expect(await nxs(['exists', '/dir/x'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(await nxs(['exists', '/dir/z'])).toMatchObject({ code: 1, stdout: '', stderr: '' });
  });

  // Expected texts: xenstore-ls (Xen 4.17) on the same tree.
  it('ls prints the tree like xenstore-ls, with -p and -f', async () => {
    await ok(['write', '/ls/a', 'one', '/ls/a/b', 'two', '/ls/c', '\\x01']);
    await ok(['chmod', '/ls/c', 'n0', 'r5']);
    expect(await ok(['ls', '/ls'])).toBe('a = "one"\n b = "two"\nc = "\\001"\n');
    expect(await ok(['ls', '-f', '-p', '/ls'])).toBe('/ls/a = "one"   (n0)\n/ls/a/b = "two"   (n0)\n/ls/c = "\\001"   (n0,r5)\n');
    expect(await ok(['ls', '-p', '/ls'])).toBe(
      'a = "one"  . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)\n' +
        ' b = "two" . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)\n' +
        'c = "\\001" . . . . . . . . . . . . . . . . . . . . . . . . .  (n0,r5)\n',
    );
    expect(await nxs(['ls', '/ls-missing'])).toMatchObject({ code: 1, stderr: 'nxs: could not list /ls-missing: ENOENT\n' });
  });

  it('rm removes a subtree; rm -t also removes the parents it leaves empty', async () => {
    await ok(['write', '/rm/keep', 'v', '/rm/a/b/c', '']);
    await ok(['rm', '-t', '/rm/a/b/c']);
    expect(await ok(['list', '/rm'])).toBe('keep\n');
    await ok(['write', '/rm2/x/y', '']);
    await ok(['rm', '-t', '/rm2/x/y']);
    expect((await nxs(['exists', '/rm2'])).code).toBe(1);
    await ok(['write', '/rm3/x/y', '1']);
    await ok(['rm', '/rm3/x']);
    expect(await ok(['list', '/rm3'])).toBe('');
  });

  it('chmod sets permissions, -r for the subtree, and getperms shows them', async () => {
    await ok(['write', '/perm/a/b', '1']);
    await ok(['chmod', '-r', '/perm', 'n0', 'r7']);
    expect(await ok(['getperms', '/perm/a/b'])).toBe('n0 r7\n');
    await ok(['chmod', '/perm/a', 'b3']);
    expect(await ok(['getperms', '/perm/a'])).toBe('b3\n');
    expect(await ok(['getperms', '/perm'])).toBe('n0 r7\n');
  });
});

describe('watch', () => {
  it('prints each event path until -n events', async () => {
    let registered: () => void = () => {};
    const ready = new Promise<void>((r) => (registered = r));
    const watching = nxs(['watch', '-n', '2', '/wt'], { onOut: (text) => text === '/wt\n' && registered() });
    await ready; // the registration event came: the watch is in place
    await ok(['write', '/wt/x', '1']);
    expect(await watching).toMatchObject({ code: 0, stdout: '/wt\n/wt/x\n', stderr: '' });
  });

  it('stops cleanly when interrupted', async () => {
    const controller = new AbortController();
    const watching = nxs(['watch', '/wt2', '@introduceDomain'], {
      signal: controller.signal,
      onOut: (text) => text.split('\n').length === 3 && controller.abort(),
    });
    expect(await watching).toMatchObject({ code: 0, stdout: '/wt2\n@introduceDomain\n' });
  });
});

describe('control and quota', () => {
  it('control prints the reply; an unknown command is exit 1', async () => {
    expect(await ok(['control', 'help'])).toMatch(/^check /m);
    expect(await nxs(['control', 'no-such-command'])).toMatchObject({
      code: 1,
      stderr: 'nxs: could not run control command no-such-command: EINVAL\n',
    });
  });

  it('quota lists, gets and sets', async () => {
    expect(await ok(['quota'])).toMatch(/^nodes +\d+$/m);
    const before = await ok(['quota', 'watches']);
    expect(before).toMatch(/^\d+\n$/);
    // Xen 4.22: a domain's quota exists once the domain does.
    expect(await nxs(['quota', 'set', '9', 'watches', '3'])).toMatchObject({ code: 1, stderr: 'nxs: could not set quota watches: ENOENT\n' });
    await ok(['introduce', '9', '4096', '3']);
    await ok(['quota', 'set', '9', 'watches', '3']);
    expect(await ok(['quota', '9', 'watches'])).toBe('3\n');
    expect(await ok(['quota', 'watches'])).toBe(before);
    expect(await ok(['quota', '9'])).toMatch(/^watches +3$/m);
    expect(await nxs(['quota', 'set', 'no-such-quota', '1'])).toMatchObject({ code: 1, stderr: 'nxs: could not set quota no-such-quota: EINVAL\n' });
  });
});

describe('live-update --to (back to cxenstored, issue 15)', () => {
  it('asks CONTROL hand-back, and reports why it cannot without a take-over from cxenstored', async () => {
    expect(await nxs(['live-update', '--to', '/bin/false', '--cmdline=-N -F /tmp/x.pid'])).toMatchObject({
      code: 1,
      stderr: "nxs: hand-back failed: hand-back needs the state of a take-over from cxenstored (its event channel device and dom0's ring)\n",
    });
    expect(await nxs(['live-update', '--to', '/bin/false', '-F'])).toMatchObject({ code: 2 });
  });
});

describe('dump and restore', () => {
  it('restores a dump elsewhere with values and permissions, read from stdin', async () => {
    await ok(['write', '/dump/text', 'é ok', '/dump/bin', '\\xff\\x00', '/dump/sub/leaf', '']);
    await ok(['chmod', '/dump/sub', 'n0', 'r5']);
    const dumped = JSON.parse(await ok(['dump', '/dump']));
    expect(dumped.children.text.value).toBe('é ok');
    expect(dumped.children.bin.value).toEqual({ base64: Buffer.from([0xff, 0]).toString('base64') });
    expect(dumped.children.sub.perms).toEqual(['n0', 'r5']);

    async function* stdin() {
      yield JSON.stringify(dumped);
    }
    await ok(['restore', '-', '/copy'], { stdin: stdin() });
    expect(JSON.parse(await ok(['dump', '/copy']))).toEqual(dumped);
  });

  it('restores from a file, and refuses an invalid one with exit 1', async () => {
    const file = join(rundir, 'dump.json');
    writeFileSync(file, JSON.stringify({ value: 'v', perms: ['n0'], children: { k: { value: 'w', perms: ['n0', 'r2'], children: {} } } }));
    await ok(['restore', file, '/fromfile']);
    expect(await ok(['ls', '-p', '-f', '/fromfile'])).toBe('/fromfile/k = "w"   (n0,r2)\n');
    writeFileSync(file, '{"value": 1}');
    const r = await nxs(['restore', file, '/bad']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^nxs: could not restore .*dump\.json: invalid dump: \$: value must be/);
    expect((await nxs(['exists', '/bad'])).code).toBe(1);
    expect(await nxs(['restore', join(rundir, 'missing.json')])).toMatchObject({ code: 1, stderr: `nxs: could not read ${join(rundir, 'missing.json')}: ENOENT\n` });
  });
});

describe('unprivileged connections', () => {
  it('--ro reads but may not write', async () => {
    await ok(['write', '/ro/a', 'v']);
    expect(await ok(['--ro', 'read', '/ro/a'])).toBe('v\n');
    expect(await nxs(['--ro', 'write', '/ro/a', 'w'])).toMatchObject({ code: 1, stderr: 'nxs: could not write /ro/a: EACCES\n' });
    expect(await ok(['read', '/ro/a'])).toBe('v\n');
  });

  it('--domid acts as an introduced guest: EACCES on dom0 nodes, its own home works', async () => {
    await ok(['write', '/private/secret', 's']);
    await ok(['mkdir', '/local/domain/5']);
    await ok(['chmod', '/local/domain/5', 'n5']);
    await ok(['introduce', '5', '1234', '7']);

    expect(await nxs(['--domid', '5', 'read', '/private/secret'])).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'nxs: could not read /private/secret: EACCES\n',
    });
    expect(await nxs(['--domid', '5', 'write', '/private/x', '1'])).toMatchObject({ code: 1, stderr: 'nxs: could not write /private/x: EACCES\n' });
    // A relative path is relative to the guest's home (spec §3.2).
    await ok(['--domid', '5', 'write', 'data/k', 'guest value']);
    expect(await ok(['read', '/local/domain/5/data/k'])).toBe('guest value\n');
    expect(await ok(['getperms', '/local/domain/5/data/k'])).toBe('n5\n');

    await ok(['release', '5']);
    expect((await nxs(['--domid', '5', 'read', 'data/k'])).stderr).toMatch(/^nxs: could not connect to .*domains\/5\/socket: E(NOENT|CONNREFUSED)\n$/);
  });

  it('introduce and release report the daemon\'s refusal', async () => {
    expect(await nxs(['release', '77'])).toMatchObject({ code: 1, stderr: 'nxs: could not release domain 77: ENOENT\n' });
    expect(await nxs(['introduce', '0', '1', '1'])).toMatchObject({ code: 1, stderr: 'nxs: could not introduce domain 0: EINVAL\n' });
  });
});

describe('history', () => {
  /** The daemon's generation now (CONTROL stats). */
  const generation = async (): Promise<number> => Number(/^generation (\d+)$/m.exec(await ok(['control', 'stats']))![1]);

  it('log, diff, at and blame: human output, and --json for scripts', async () => {
    await ok(['write', '/hx/be/state', '1']);
    const g = await generation();
    await ok(['write', '/hx/be/state', '4', '/hx/be/ring', 'r']);
    const log = await ok(['log', '/hx/be']);
    const lines = log.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^${g + 1}  \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z  dom0 socket#\\d+ tx \\d+  write /hx/be/state; write /hx/be/ring$`));
    expect(lines.slice(1, 3).sort()).toEqual(['  + /hx/be/ring = "r"', '  ~ /hx/be/state: "1" -> "4"']);
    expect(log).toMatch(new RegExp(`^${g}  .*  dom0 socket#\\d+  write /hx/be/state$`, 'm'));
    const json = JSON.parse(await ok(['history', '--json', '-n', '1', '/hx/be/state']));
    expect(json.entries[0]).toMatchObject({ generation: g + 1, domid: 0, connection: 'socket', changes: [{ path: '/hx/be/state', kind: 'changed', old: '1', new: '4' }] });
    expect(json.next).toBe(g + 1);
    expect(await ok(['at', String(g), 'read', '/hx/be/state'])).toBe('1\n');
    expect(await ok(['at', String(g), 'ls', '/hx/be'])).toBe('state\n');
    expect(await ok(['diff', String(g), String(g + 1), '/hx'])).toBe(`generation ${g} -> ${g + 1}\n  + /hx/be/ring = "r"\n  ~ /hx/be/state: "1" -> "4"\n`);
    const blame = await ok(['blame', '/hx/be']);
    expect(blame).toMatch(new RegExp(`^${g + 1}\\s+\\S+\\s+dom0 socket\\s+/hx/be/state$`, 'm'));
    expect(JSON.parse(await ok(['blame', '--json', '/hx/be'])).lines).toHaveLength(3);
  });

  it('names the oldest kept moment when asked for an older one; a guest is refused', async () => {
    const r = await nxs(['at', '2000-01-01T00:00:00Z', 'read', '/']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^nxs: could not read \/ at 2000-01-01T00:00:00Z: ENOENT \(no such node then, or older than the oldest kept: generation 0 at .*\)\n$/);
    expect(await nxs(['at', 'yesterday', 'read', '/'])).toMatchObject({ code: 1, stderr: 'nxs: could not read / at yesterday: EINVAL\n' });
    expect(await nxs(['at', '1', 'frob', '/'])).toMatchObject({ code: 2 });
    await ok(['introduce', '6', '1234', '7']);
    expect(await nxs(['--domid', '6', 'log', '/'])).toMatchObject({ code: 1, stdout: '', stderr: 'nxs: could not read the history of /: EACCES\n' });
    await ok(['release', '6']);
  });
});
