/**
 * Issue 15: an administrator tries nxenstored on a host running cxenstored, and goes back.
 * Debian's 4.17 cxenstored from ../shared/refd (its fake hypervisor: `.ci/run` prepares it) is
 * filled (nodes with permissions, an introduced domain, a watching client, a client in the middle
 * of sending a request), then `xenstore-control live-update -f <wrapper of nxenstored>` makes it
 * exec us in its place (same pid); every client carries on and the tree is identical. Then
 * CONTROL `hand-back` gives the daemon back to cxenstored (a new pid, the same sockets), with
 * the same checks.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { DAEMON_JS, REPO } from '../helpers/daemon.js';
import { header, Wire } from '../helpers/wire.js';
import { runTool } from '../helpers/xen-tools.js';

const REFD = process.env['REFD_DIR'] ?? resolve(REPO, '..', 'shared', 'refd');
const XEN_DIR = process.env['XEN_DIR'] ?? join(REPO, '.xen-tools', 'refd');
const XENSTORED = join(XEN_DIR, 'root', 'usr', 'lib', 'xen-4.17', 'bin', 'xenstored');
const SHIM = join(XEN_DIR, 'shim', 'xenfake.so');

let dir: string;
let rundir: string;
let socket: string;
const clients: Wire[] = [];

const pidOf = () => Number(readFileSync(join(rundir, 'pid'), 'utf8').trim());
/** True while `pid` runs (a zombie has exited). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ');

async function connect(): Promise<Wire> {
  const w = await Wire.connect(socket);
  clients.push(w);
  return w;
}

/** The whole tree (every path, value and permissions), as a client sees it. */
async function tree(c: Wire): Promise<string[]> {
  const out: string[] = [];
  const walk = async (path: string): Promise<void> => {
    out.push(`${path} = ${JSON.stringify(await c.read(path))} (${(await c.getPerms(path)).join(',')})`);
    for (const name of (await c.dir(path)).sort()) await walk(path === '/' ? `/${name}` : `${path}/${name}`);
  };
  await walk('/');
  return out;
}

/** A WRITE split in two: the first part now, the rest (and its reply) later. */
function splitWrite(path: string, value: string, reqId: number): [Buffer, Buffer] {
  const payload = Buffer.from(`${path}\0${value}`, 'latin1');
  const frame = Buffer.concat([header(Op.WRITE, reqId, 0, payload.length), payload]);
  return [frame.subarray(0, 20), frame.subarray(20)];
}

beforeAll(() => {
  for (const f of [join(REFD, 'start-cxenstored.sh'), XENSTORED, SHIM]) {
    if (!existsSync(f)) throw new Error(`missing ${f}: run 'bash test/setup/tools.sh' (npm test does), which runs ${join(REFD, 'setup.sh')} with XEN_DIR=${XEN_DIR}`);
  }
  if (!existsSync(DAEMON_JS)) throw new Error(`${DAEMON_JS} is missing: npm run build`);
  dir = mkdtempSync(join(tmpdir(), 'nxs-xenmig-'));
  rundir = join(dir, 'rd');
  socket = join(rundir, 'socket');
  execFileSync('bash', [join(REFD, 'start-cxenstored.sh'), rundir], { stdio: 'pipe', env: { ...process.env, XEN_DIR } });
});

afterAll(() => {
  for (const c of clients) c.close();
  try {
    if (rundir !== undefined && existsSync(join(rundir, 'pid'))) process.kill(pidOf(), 'SIGKILL');
  } catch {
    /* already gone */
  }
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('cxenstored -> nxenstored -> cxenstored, without a restart', () => {
  it('takes over from cxenstored (xenstore-control live-update) and hands back (CONTROL hand-back)', async () => {
    const c = await connect();
    await c.write('/a/b', 'hello');
    await c.setPerms('/a/b', ['n0', 'r5', 'w7']);
    await c.write('/a/c', 'x y');
    await c.write('/bin', Buffer.from([0, 1, 2, 255]));
    expect(await c.ask(Op.INTRODUCE, '5|4096|9|')).toBe('OK|');
    await c.write('/local/domain/5/name', 'guest');
    await c.setPerms('/local/domain/5', ['n5']);
    expect(await c.ask(Op.SET_PERMS, '@releaseDomain|n0|r5|')).toBe('OK|');
    const watcher = await connect();
    await watcher.watch('/a', 'tok');
    expect(await watcher.nextEvent()).toMatchObject({ path: '/a', token: 'tok' });
    const half = await connect();
    const [first, rest] = splitWrite('/half', 'done', 77);
    await half.sendRaw(first);
    const before = await tree(c);
    const cxPid = pidOf();
    expect(cmdline(cxPid)).toContain('xenstored');

    // cxenstored execs the wrapper in its place; refd's LD_PRELOAD shim is not for node.
    const wrapper = join(dir, 'nxenstored-wrapper');
    writeFileSync(wrapper, `#!/bin/sh\nunset LD_PRELOAD\nexec '${process.execPath}' '${DAEMON_JS}' "$@" --log-format json\n`);
    chmodSync(wrapper, 0o755);
    const lu = await runTool('xenstore-control', ['live-update', wrapper], socket, { timeoutMs: 60_000 });
    expect({ code: lu.code, stderr: lu.stderr }).toEqual({ code: 0, stderr: '' });
    expect(pidOf()).toBe(cxPid);
    expect(cmdline(cxPid)).toContain('nxenstored.js');
    expect(cmdline(cxPid)).toContain('-U');

    await checkCarriedOn(before, 'nx');
    const reply = half.awaitReply();
    await half.sendRaw(rest);
    expect((await reply).payload.toString('latin1')).toBe('OK\0');
    expect(await c.read('/half')).toBe('done');
    // cxenstored 4.17 cannot show a special name's permissions; we can (they came in the stream).
    expect(await c.getPerms('@releaseDomain')).toEqual(['n0', 'r5']);
    // Xen 4.22's protocol, now that we serve.
    expect(await c.ask(Op.GET_FEATURE, '5|')).toBe('12|');

    // Our own live update in between: the next nxenstored carries what cxenstored left (its
    // event channel descriptor, the rings), so it can still hand back.
    const ours = await runTool('xenstore-control', ['live-update', DAEMON_JS], socket, { timeoutMs: 60_000 });
    expect({ code: ours.code, stderr: ours.stderr }).toEqual({ code: 0, stderr: '' });
    expect(pidOf()).not.toBe(cxPid);
    expect(cmdline(pidOf())).toContain('nxenstored.js');
    expect(cmdline(pidOf())).not.toContain(' -U');
    await checkCarriedOn(before.concat().sort(), 'nx2', true);
    // The previous process listens until it exits (it passes on what it accepts meanwhile): a
    // hand-back that binds the socket path again must not race with it.
    for (let i = 0; alive(cxPid) && i < 400; i++) await new Promise((r) => setTimeout(r, 25));
    expect(alive(cxPid)).toBe(false);

    // A hand-back that fails (the program does not take over) leaves us serving, and says why.
    const failing = await connect();
    expect(await failing.ask(Op.CONTROL, 'hand-back|/bin/false|')).toMatch(/^\/bin\/false did not take over: exit code 1\|$/);
    expect(existsSync(join(rundir, 'state_dump'))).toBe(false);
    expect(await c.read('/a/b')).toBe('hello');
    expect(await (await connect()).read('/a/c')).toBe('x y');
    expect(await c.ask(Op.CONTROL, 'hand-back|/nonexistent/xenstored|')).toBe('/nonexistent/xenstored: not executable|');

    // And back: cxenstored answers the request itself, once it serves.
    const [first2, rest2] = splitWrite('/half2', 'again', 78);
    await half.sendRaw(first2);
    const before2 = await tree(c);
    const r = await connect();
    expect(await r.ask(Op.CONTROL, `hand-back|-e|LD_PRELOAD=${SHIM}|${XENSTORED}|`)).toBe('OK|');
    const cxPid2 = pidOf();
    expect(cxPid2).not.toBe(cxPid);
    expect(cmdline(cxPid2)).toMatch(/xenstored -N -F \S+ -U/);
    await checkCarriedOn(before2, 'cx');
    const reply2 = half.awaitReply();
    await half.sendRaw(rest2);
    expect((await reply2).payload.toString('latin1')).toBe('OK\0');
    expect(await c.read('/half2')).toBe('again');
    // 4.17 again: no GET_FEATURE.
    expect(await c.ask(Op.GET_FEATURE, '')).toBe('ENOSYS');
    expect(existsSync(join(rundir, 'state_dump'))).toBe(false);

    /** Every client carries on: the tree, the watcher, the domain, a new client. */
    async function checkCarriedOn(expected: string[], tag: string, unordered = false): Promise<void> {
      const now = await tree(c);
      expect(unordered ? now.filter((l) => !l.startsWith('/half ')).sort() : now).toEqual(unordered ? expected.filter((l) => !l.startsWith('/half ')) : expected);
      await c.write(`/a/${tag}`, 'v');
      expect(await watcher.nextEvent()).toMatchObject({ path: `/a/${tag}`, token: 'tok' });
      expect(await c.ask(Op.IS_DOMAIN_INTRODUCED, '5|')).toBe('T|');
      const fresh = await connect();
      expect(await fresh.read('/a/b')).toBe('hello');
      expect(await fresh.getPerms('/a/b')).toEqual(['n0', 'r5', 'w7']);
      await c.rm(`/a/${tag}`);
      expect(await watcher.nextEvent()).toMatchObject({ path: `/a/${tag}`, token: 'tok' });
    }
  });
});

describe('a state_dump that cannot be read whole', () => {
  it('is refused before anything is served, with a message saying what and where; the file stays', () => {
    const rd = mkdtempSync(join(tmpdir(), 'nxs-xenbad-'));
    try {
      const file = join(rd, 'state_dump');
      const stream = Buffer.concat([Buffer.from('xenstore', 'latin1'), Buffer.from([0, 0, 0, 1, 0, 0, 0, 0]), Buffer.from([9, 0, 0, 0, 0, 0, 0, 0]), Buffer.alloc(8)]);
      writeFileSync(file, stream);
      let err: { status?: number; stderr?: Buffer } = {};
      try {
        execFileSync(process.execPath, [DAEMON_JS, '-N', '-U', '--rundir', rd], { stdio: 'pipe', timeout: 30_000 });
      } catch (e) {
        err = e as typeof err;
      }
      expect(err.status).toBe(1);
      expect(err.stderr?.toString()).toContain(`${file}: unknown record type 0x9 at offset 16`);
      expect(existsSync(file)).toBe(true);
      writeFileSync(file, stream.subarray(0, 20));
      expect(() => execFileSync(process.execPath, [DAEMON_JS, '-U', '--rundir', rd], { stdio: 'pipe', timeout: 30_000 })).toThrow(/torn state stream/);
      rmSync(file);
      expect(() => execFileSync(process.execPath, [DAEMON_JS, '-U', '--rundir', rd], { stdio: 'pipe', timeout: 30_000 })).toThrow(/no state found after live-update/);
      expect(existsSync(join(rd, 'socket'))).toBe(false);
    } finally {
      rmSync(rd, { recursive: true, force: true });
    }
  });
});
