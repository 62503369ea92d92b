/**
 * Live update on the real daemon (issue 6; Xen's `xenstore-control live-update`): the running
 * process hands its sockets, connections, store, watches, quotas and domains to a new process
 * while clients keep working. Clients here run transactions in loops, watch, and leave half a
 * request in flight across the update; afterwards every acknowledged write is read back, every
 * event of those writes has arrived, and no request got an error.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { DAEMON_JS, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/poll.js';
import { frame, show, Wire } from '../helpers/wire.js';

let d: RunningDaemon;
let c: Wire;

beforeAll(async () => {
  d = await startDaemon();
  c = await d.connect();
  await c.mkdir('/lu');
});

afterAll(async () => {
  await d?.stop();
});

/** Runs `live-update ARGS` on the control connection and, when it says OK, returns the new pid. */
async function liveUpdate(...args: string[]): Promise<{ reply: string; pid: number }> {
  const before = d.currentPid();
  const reply = await c.control('live-update', ...args);
  const pid = reply === 'OK' ? await eventually(() => d.currentPid(), (p) => p !== before) : d.currentPid();
  return { reply, pid };
}

/** How many updates the daemons have logged as started (the log is the only outside sign). */
const startsLogged = () => d.output().split('live-update: start').length - 1;

interface Loop {
  readonly acked: Map<string, string>;
  readonly errors: string[];
  iterations: number;
  done: Promise<void>;
}

/**
 * A transaction loop on its own connection: start, read, two writes, commit, again. Every
 * committed write is remembered; any error (EAGAIN included: the loops touch disjoint subtrees,
 * so nothing may conflict) is recorded.
 */
function transactionLoop(w: Wire, name: string, stop: () => boolean): Loop {
  const loop: Loop = { acked: new Map(), errors: [], iterations: 0, done: Promise.resolve() };
  loop.done = (async () => {
    for (let i = 0; !stop(); i++) {
      try {
        const tx = await w.txStart();
        const last = await w.read(`/lu/${name}/last`, tx);
        if (last !== String(i - 1)) loop.errors.push(`iteration ${i} read last=${last}`);
        await w.write(`/lu/${name}/k${i}`, `v${i}`, tx);
        await w.write(`/lu/${name}/last`, String(i), tx);
        const end = await w.txEnd(tx, true);
        if (end !== 'OK|') loop.errors.push(`iteration ${i} commit ${end}`);
        else loop.acked.set(`/lu/${name}/k${i}`, `v${i}`);
      } catch (e) {
        loop.errors.push(`iteration ${i}: ${(e as Error).message}`);
        return;
      }
      loop.iterations++;
    }
  })();
  return loop;
}

/** Plain writes from a guest, relative to its home (a domain connection across the update). */
function guestLoop(g: Wire, stop: () => boolean): Loop {
  const loop: Loop = { acked: new Map(), errors: [], iterations: 0, done: Promise.resolve() };
  loop.done = (async () => {
    for (let i = 0; !stop(); i++) {
      // A hundred to a directory: a guest's child names count against its node size (2048
      // bytes, as cxenstored's), so one directory would fill after some 400 writes.
      const path = `data/d${Math.floor(i / 100)}/n${i}`;
      try {
        await g.write(path, `g${i}`);
        loop.acked.set(`/local/domain/5/${path}`, `g${i}`);
      } catch (e) {
        loop.errors.push(`write ${i}: ${(e as Error).message}`);
        return;
      }
      loop.iterations++;
    }
  })();
  return loop;
}

const progressed = (loops: readonly Loop[], by: number) => {
  const start = loops.map((l) => l.iterations);
  return eventually(
    () => loops.map((l) => l.iterations),
    (now) => now.every((n, i) => n >= start[i]! + by) || loops.some((l) => l.errors.length > 0),
    60_000,
  );
};

describe('live update with clients at work', () => {
  it('keeps transactions, watches, domains, quotas and half-sent requests across two updates', async () => {
    // A guest with its home, a per-domain quota and a relative watch.
    const g = await d.guest(5);
    await c.mkdir('/local/domain/5');
    await c.setPerms('/local/domain/5', ['n5']);
    expect(await c.ask(Op.SET_QUOTA, '5|nodes|4000|')).toBe('OK|');
    await c.control('quota', 'set', 'watches', '99');
    await g.watch('data/n3', 'rel');
    expect(await g.nextEvent()).toMatchObject({ path: 'data/n3', token: 'rel' });

    // Watchers: one on a node written only after the updates, one on a loop's subtree.
    const [w1, w2] = await Promise.all([d.connect(), d.connect()]);
    await w1.watch('/lu/watched', 'tok-1');
    expect(await w1.nextEvent()).toMatchObject({ path: '/lu/watched', token: 'tok-1' });
    await w2.watch('/lu/loop0', 'tok-2');
    expect(await w2.nextEvent()).toMatchObject({ path: '/lu/loop0', token: 'tok-2' });

    const quotasBefore = await c.control('quota');
    const guestQuotaBefore = await c.ask(Op.GET_QUOTA, '5|nodes|');

    // Three transaction loops and a guest writing, all running while the updates happen.
    let stopping = false;
    const stop = () => stopping;
    const workers = await Promise.all([d.connect(), d.connect(), d.connect()]);
    for (let i = 0; i < workers.length; i++) {
      await c.mkdir(`/lu/loop${i}`);
      await c.write(`/lu/loop${i}/last`, '-1');
    }
    const loops = [...workers.map((w, i) => transactionLoop(w, `loop${i}`, stop)), guestLoop(g, stop)];
    await progressed(loops, 5);

    // Half a request in flight: a header cut in two on one connection, a body on another.
    const [p1, p2] = await Promise.all([d.connect(), d.connect()]);
    const f1 = frame(Op.WRITE, '/lu/partial1|first half and second', 0x51);
    const f2 = frame(Op.WRITE, '/lu/partial2|body cut in the middle', 0x52);
    const r1 = p1.awaitReply();
    const r2 = p2.awaitReply();
    await p1.sendRaw(f1.subarray(0, 7));
    await p2.sendRaw(f2.subarray(0, 16 + 9));

    const first = await liveUpdate('-s', '-t', '30');
    expect(first.reply).toBe('OK');
    expect(first.pid).not.toBe(d.pid);
    // The original process exits by itself once the new one serves.
    expect(await eventually(() => d.exited(), (e) => e !== undefined)).toEqual({ code: 0, signal: null });

    await p1.sendRaw(f1.subarray(7));
    await p2.sendRaw(f2.subarray(16 + 9));
    expect(show(await r1)).toBe('OK|');
    expect(show(await r2)).toBe('OK|');
    expect(await c.read('/lu/partial1')).toBe('first half and second');
    expect(await c.read('/lu/partial2')).toBe('body cut in the middle');

    await progressed(loops, 5);
    const second = await liveUpdate('-s');
    expect(second.reply).toBe('OK');
    expect(second.pid).not.toBe(first.pid);
    await progressed(loops, 5);
    stopping = true;
    await Promise.all(loops.map((l) => l.done));

    // No request got an error, and every acknowledged write is there.
    expect(loops.flatMap((l) => l.errors)).toEqual([]);
    for (const l of loops) {
      expect(l.acked.size).toBeGreaterThanOrEqual(15);
      for (const [path, value] of l.acked) expect(await c.read(path)).toBe(value);
    }
    // Every event of loop0's commits reached its watcher, token intact, across both updates.
    await w2.sync();
    const seen = new Set(w2.events().filter((e) => e.token === 'tok-2').map((e) => e.path));
    for (const path of loops[0]!.acked.keys()) expect(seen.has(path)).toBe(true);

    // Watches registered before the updates still fire, with their tokens (relative ones too).
    await c.write('/lu/watched', 'now');
    expect(await w1.nextEvent()).toMatchObject({ path: '/lu/watched', token: 'tok-1' });
    await c.write('/local/domain/5/data/n3', 'again');
    await g.sync();
    expect(g.events().some((e) => e.path === 'data/n3' && e.token === 'rel')).toBe(true);

    // Quotas (global and per domain) and the domain itself came along.
    expect(await c.control('quota')).toBe(quotasBefore);
    expect(await c.ask(Op.GET_QUOTA, '5|nodes|')).toBe(guestQuotaBefore);
    expect(await c.ask(Op.IS_DOMAIN_INTRODUCED, '5|')).toBe('T|');
    expect(await c.control('check')).toBe('OK');
  }, 120_000);
});

describe('clients that connect while the process changes', () => {
  it('are served, whichever process accepted them', async () => {
    await c.write('/lu/greeting', 'hello');
    let stopping = false;
    let served = 0;
    const failures: string[] = [];
    // A new client every few milliseconds, each on its own (none waits for another's answer),
    // so that some arrive while the new process is still loading.
    const clients: Promise<void>[] = [];
    const client = async () => {
      try {
        const w = await Wire.connect(d.socket);
        const value = await w.read('/lu/greeting');
        w.close();
        if (value !== 'hello') failures.push(`read ${value}`);
        served++;
      } catch (e) {
        failures.push((e as Error).message);
      }
    };
    const connector = (async () => {
      while (!stopping) {
        clients.push(client());
        await new Promise((r) => setTimeout(r, 5));
      }
      await Promise.all(clients);
    })();
    await eventually(() => served, (n) => n >= 3);
    const before = d.currentPid();
    const { reply, pid } = await liveUpdate('-s');
    expect(reply).toBe('OK');
    expect(pid).not.toBe(before);
    const at = served;
    await eventually(() => served, (n) => n >= at + 3);
    stopping = true;
    await connector;
    expect(failures).toEqual([]);
    // The window between the spawn and the old process's exit was used: some connection was
    // accepted by the old process after it had handed its descriptors over, and passed on.
    await expect.poll(() => d.output(), { timeout: 5000 }).toContain('adopted a connection accepted after the spawn');
  });
});

describe('open transactions (-t, -F)', () => {
  it('waits for them; after the timeout without -F it fails, says why, and serves on', async () => {
    const t = await d.connect();
    const tx = await t.txStart();
    await t.write('/lu/held', 'x', tx);
    const before = d.currentPid();
    const { reply, pid } = await liveUpdate('-s', '-t', '1');
    expect(reply).toMatch(/^Open transactions/);
    expect(reply).toContain('1 open');
    expect(pid).toBe(before);
    // Nothing was lost: the transaction commits, and new ones start.
    expect(await t.txEnd(tx, true)).toBe('OK|');
    expect(await t.read('/lu/held')).toBe('x');
    const tx2 = await t.txStart();
    expect(await t.txEnd(tx2, false)).toBe('OK|');
  });

  it('goes ahead with -F: the open transaction answers its requests, then EAGAIN on commit', async () => {
    const t = await d.connect();
    const tx = await t.txStart();
    await t.write('/lu/forced', 'lost', tx);
    const before = d.currentPid();
    const { reply, pid } = await liveUpdate('-s', '-t', '1', '-F');
    expect(reply).toBe('OK');
    expect(pid).not.toBe(before);
    expect(await t.ask(Op.READ, '/lu/held|', { txId: tx })).toBe('x');
    expect(await t.txEnd(tx, true)).toBe('EAGAIN');
    expect(await t.ask(Op.READ, '/lu/forced|')).toBe('ENOENT');
    // The retry, as a client does on EAGAIN, commits.
    const again = await t.txStart();
    await t.write('/lu/forced', 'kept', again);
    expect(await t.txEnd(again, true)).toBe('OK|');
    expect(await t.read('/lu/forced')).toBe('kept');
  });

  it('a transaction that ends during the wait lets the update go ahead', async () => {
    const t = await d.connect();
    const tx = await t.txStart();
    const before = d.currentPid();
    const started = startsLogged();
    const update = liveUpdate('-s', '-t', '30');
    // Once logged, the update is waiting for this transaction, whose requests are still served.
    await eventually(startsLogged, (n) => n > started);
    await t.write('/lu/during', 'y', tx);
    expect(await t.txEnd(tx, true)).toBe('OK|');
    const { reply, pid } = await update;
    expect(reply).toBe('OK');
    expect(pid).not.toBe(before);
    expect(await t.read('/lu/during')).toBe('y');
  });
});

describe('a new process that fails', () => {
  it('leaves the old one serving, with the requests that waited and a half-sent one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nxs-lu-'));
    const bad = join(dir, 'broken.js');
    writeFileSync(bad, 'process.exit(3);\n');
    try {
      const t = await d.connect();
      const f = frame(Op.WRITE, '/lu/after-failure|still here', 0x61);
      const r = t.awaitReply();
      await t.sendRaw(f.subarray(0, 20));
      const before = d.currentPid();
      expect(await c.control('live-update', '-f', bad)).toBe('OK');
      const reply = await c.control('live-update', '-s', '-t', '5');
      expect(reply).toMatch(/^the new process failed: exited \(code 3/);
      expect(d.currentPid()).toBe(before);
      await t.sendRaw(f.subarray(20));
      expect(show(await r)).toBe('OK|');
      expect(await c.read('/lu/after-failure')).toBe('still here');
      // The session ended with the failure: a new update can start.
      const { reply: again, pid } = await liveUpdate('-s');
      expect(again).toBe('OK');
      expect(pid).not.toBe(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A "new program" that corrupts the state file it is given (the pre-copy's, at the spawn) or the
 * pause's (named by the "final" message, before the daemon's own listener reads it), then runs
 * the real daemon on it.
 */
function corrupter(dir: string, when: 'spawn' | 'final', how: 'unknown' | 'torn' | 'version'): string {
  const file = join(dir, `corrupt-${when}-${how}.mjs`);
  const mutate = {
    unknown: 'b.writeUInt32LE(0x4e580009, 16)', // the first record's type: one nobody knows
    torn: 'b = b.subarray(0, b.length - 8)', // without its END record
    version: 'b.writeUInt32BE(3, 8)',
  }[how];
  writeFileSync(
    file,
    `import { readFileSync, writeFileSync } from 'node:fs';
const corrupt = (f) => { let b = readFileSync(f); ${mutate}; writeFileSync(f, b); };
${when === 'spawn' ? "corrupt(process.argv[process.argv.indexOf('--live-update-state') + 1]);" : "process.on('message', (m) => { if (m?.type === 'final') corrupt(m.file); });"}
await import(${JSON.stringify(pathToFileURL(DAEMON_JS).href)});
`,
  );
  return file;
}

describe('a state file the new process refuses (issue 15)', () => {
  it.each([
    ['spawn', 'unknown', /live-update state: unknown record type 0x4e580009 at offset 16/],
    ['spawn', 'torn', /live-update state: torn state stream: it ends at byte \d+ without an END record/],
    ['spawn', 'version', /live-update state: unsupported state stream version 3/],
    ['final', 'unknown', /live-update state: unknown record type 0x4e580009 at offset 16/],
  ] as const)("%s state, %s: the new process says why and exits, the old one serves on", async (when, how, message) => {
    const dir = mkdtempSync(join(tmpdir(), 'nxs-lu-'));
    try {
      const before = d.currentPid();
      const logged = d.output().length;
      expect(await c.control('live-update', '-f', corrupter(dir, when, how))).toBe('OK');
      expect(await c.control('live-update', '-s', '-t', '5')).toMatch(/^the new process failed: exited \(code 1/);
      expect(d.output().slice(logged)).toMatch(message);
      expect(d.currentPid()).toBe(before);
      await c.write(`/lu/refused-${when}-${how}`, 'served');
      expect(await c.read(`/lu/refused-${when}-${how}`)).toBe('served');
      expect(existsSync(join(d.rundir, 'live-update.state'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a previous build's state file (NXLU, issue 15)", () => {
  it('is still read by the new process: a live update from the build before the stream into this one', async () => {
    // The previous build wrote "NXLU", the JSON length, the state as JSON (version 1), then the
    // store's bytes (none for the pre-copy's state, the delta for the pause's): this "new program"
    // rewrites both files so, and says it did, before the real daemon reads them.
    const dir = mkdtempSync(join(tmpdir(), 'nxs-lu-'));
    const reader = pathToFileURL(join(DAEMON_JS, '..', '..', 'server', 'live-update', 'handoff-reader.js')).href;
    const wrapper = join(dir, 'as-nxlu.mjs');
    writeFileSync(
      wrapper,
      `import { readFileSync, writeFileSync } from 'node:fs';
import { decodeHandoffState } from ${JSON.stringify(reader)};
const legacy = (f) => {
  const { state, tree } = decodeHandoffState(readFileSync(f));
  const json = Buffer.from(JSON.stringify({ version: 1, ...state }), 'utf8');
  const head = Buffer.alloc(8);
  head.write('NXLU', 0, 'latin1');
  head.writeUInt32LE(json.length, 4);
  writeFileSync(f, Buffer.concat([head, json, tree?.bytes ?? Buffer.alloc(0)]));
  process.stderr.write('test: rewrote ' + f + ' as NXLU\\n');
};
legacy(process.argv[process.argv.indexOf('--live-update-state') + 1]);
process.on('message', (m) => { if (m?.type === 'final') legacy(m.file); });
await import(${JSON.stringify(pathToFileURL(DAEMON_JS).href)});
`,
    );
    try {
      const w = await d.connect();
      await w.watch('/lu/nxlu', 'tok');
      await w.nextEvent();
      await c.write('/lu/nxlu/before', '1');
      expect(await w.nextEvent()).toMatchObject({ path: '/lu/nxlu/before', token: 'tok' });
      const logged = d.output().length;
      const before = d.currentPid();
      expect(await c.control('live-update', '-f', wrapper)).toBe('OK');
      const { reply, pid } = await liveUpdate('-s');
      expect(reply).toBe('OK');
      expect(pid).not.toBe(before);
      expect(d.output().slice(logged).match(/test: rewrote \S+ as NXLU/g)).toHaveLength(2);
      expect(await c.read('/lu/nxlu/before')).toBe('1');
      await c.write('/lu/nxlu/after', '2');
      expect(await w.nextEvent()).toMatchObject({ path: '/lu/nxlu/after', token: 'tok' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a stop signal during the hand-over', () => {
  it('abandons a hand-over not yet decided: the new process is killed, the old one stops as usual', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nxs-lu-'));
    const hang = join(dir, 'hang.js');
    const pidFile = join(dir, 'pid');
    // A "new program" that starts and never says ready.
    writeFileSync(hang, `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setInterval(() => {}, 1000);\n`);
    const e = await startDaemon();
    try {
      const k = await e.connect();
      expect(await k.control('live-update', '-f', hang)).toBe('OK');
      const pending = k.control('live-update', '-s').catch((err: Error) => err.message);
      const childPid = Number(await eventually(() => (existsSync(pidFile) ? readFileSync(pidFile, 'latin1') : ''), (p) => p !== ''));
      process.kill(e.pid, 'SIGTERM');
      expect(await eventually(() => e.exited(), (x) => x !== undefined)).toEqual({ code: 0, signal: null });
      expect(await pending).toMatch(/connection closed/);
      expect(await eventually(() => running(childPid), (r) => !r)).toBe(false);
    } finally {
      await e.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** True while `pid` runs (a zombie counts as gone). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('the session commands of xenstore-control', () => {
  it('answers -f, -c, -a and -s as cxenstored does', async () => {
    const other = await d.connect();
    expect(await c.control('live-update', '-a')).toBe('No live-update session active.');
    expect(await c.control('live-update', '-c', '--log-level info')).toBe('Not in live-update session.');
    expect(await c.control('live-update', '-f', '/nonexistent/nxenstored.js')).toBe('File not accessible.');
    expect(await c.control('live-update', '-s', '-v', '2')).toBe('Migration stream version not supported.');
    expect(await c.ask(Op.CONTROL, 'live-update|-x|')).toBe('EINVAL');
    expect(await c.ask(Op.CONTROL, 'live-update|')).toBe('EINVAL');

    expect(await c.control('live-update', '-f', DAEMON_JS)).toBe('OK');
    expect(await other.control('live-update', '-f', DAEMON_JS)).toBe('live-update session already active.');
    expect(await other.control('live-update', '-s')).toBe('live-update session already active.');
    expect(await c.control('live-update', '-a')).toBe('OK');

    // -f then -c then -s: the new process runs FILE with CMDLINE (its run directory is the state's).
    expect(await c.control('live-update', '-f', DAEMON_JS)).toBe('OK');
    expect(await c.control('live-update', '-c', `--rundir ${d.rundir} --log-level info`)).toBe('OK');
    const before = d.currentPid();
    const { reply, pid } = await liveUpdate('-s', '-t', '10');
    expect(reply).toBe('OK');
    expect(pid).not.toBe(before);
    expect(await c.read('/lu/forced')).toBe('kept');
  });

  it('-a from another connection cancels a -s that waits for transactions', async () => {
    const t = await d.connect();
    const other = await d.connect();
    const tx = await t.txStart();
    const before = d.currentPid();
    const started = startsLogged();
    const pending = c.control('live-update', '-s', '-t', '60');
    // Once the daemon logged the start, the -s is waiting (t's transaction is open); t's requests
    // are still served meanwhile.
    await eventually(startsLogged, (n) => n > started);
    await t.write('/lu/cancel', 'z', tx);
    expect(await other.control('live-update', '-a')).toBe('OK');
    expect(await pending).toBe('Cancellation was requested');
    expect(d.currentPid()).toBe(before);
    expect(await t.txEnd(tx, true)).toBe('OK|');
    expect(await c.control('live-update', '-a')).toBe('No live-update session active.');
  });

  it('is privileged', async () => {
    const g = await d.guest(7);
    expect(await g.ask(Op.CONTROL, 'live-update|-s|')).toBe('EACCES');
    const ro = await d.connectRo();
    expect(await ro.ask(Op.CONTROL, 'live-update|-s|')).toBe('EACCES');
  });
});
