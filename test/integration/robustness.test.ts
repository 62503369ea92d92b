/**
 * Robustness (spec §12, §16 check 24; XSA-326, XSA-330, XSA-418, XSA-420): deep trees, clients
 * that never read, watch/reset loops, connection churn, and random requests. Assertions are about
 * answers and survival; the bounded waits only turn a hang into a failure, they measure nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/poll.js';
import { frame, header, show, Wire, type Reply } from '../helpers/wire.js';
import { mulberry32 } from '../helpers/prng.js';

let d: RunningDaemon;
let c: Wire;

beforeAll(async () => {
  d = await startDaemon();
  c = await d.connect();
});

afterAll(async () => {
  await d?.stop();
});

/** `bounded(p, ms, what)`: p, or a failure naming what hung. */
function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`${what}: no answer within ${ms} ms (daemon hung?)\n${d.output().slice(-2000)}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function statsNumber(name: string): Promise<number> {
  return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await c.control('stats'))![1]);
}

/** Polls `f` (bounded) until it returns `want`; returns the last value. */
const settle = <T>(f: () => Promise<T>, want: T): Promise<T> => eventually(f, (v) => v === want);

describe('deep trees (XSA-418)', () => {
  const depth = 1000;
  const deep = `/deep${'/a'.repeat(depth - 1)}`;

  it('a path of 1000 components can be written, read, listed, watched and removed', async () => {
    expect(deep.split('/').length - 1).toBe(depth);
    expect(deep.length).toBeLessThanOrEqual(2048);
    const x = await d.connect();
    await x.watch(deep, 'bottom');
    await x.watch('/deep', 'top');
    await x.drain();
    await c.write(deep, 'bottom');
    expect(await c.read(deep)).toBe('bottom');
    expect(await c.dir(deep.slice(0, -2))).toEqual(['a']);
    expect((await x.drain()).sort()).toEqual([`${deep} bottom`, `${deep} top`]);
    await c.rm('/deep');
    expect(await c.ask(Op.READ, '/deep|')).toBe('ENOENT');
    expect((await x.drain()).sort()).toEqual(['/deep top', `${deep} bottom`].sort());
    expect(await c.control('check')).toBe('OK');
    x.close();
  });

  it('inside transactions, and when a released domain is scrubbed from a deep tree', async () => {
    const tx = await c.txStart();
    await c.write(deep, 'tx', tx);
    expect(await c.txEnd(tx, true)).toBe('OK|');
    const tx2 = await c.txStart();
    await c.rm('/deep', tx2);
    await c.write(`/deep${'/a'.repeat(depth / 2)}/b`, 'v', tx2);
    expect(await c.txEnd(tx2, true)).toBe('OK|');
    // A deep tree whose every node carries an ACL entry for domain 5, then RELEASE 5.
    await c.ask(Op.INTRODUCE, '5|4096|1|');
    await c.mkdir('/deep5');
    await c.setPerms('/deep5', ['n0', 'r5']);
    await c.write(`/deep5${'/a'.repeat(depth - 1)}`, 'v');
    expect(await c.ask(Op.RELEASE, '5|')).toBe('OK|');
    expect(await c.getPerms(`/deep5${'/a'.repeat(depth - 1)}`)).toEqual(['n0']);
    await c.rm('/deep5');
    await c.rm('/deep');
    expect(await c.control('check')).toBe('OK');
  });
});

// Both socket I/O paths (server/transport/socket-transport.ts): below the streams (default) and through them.
describe.each(['direct', 'stream'])('clients that do not read (XSA-326, §16.24), --socket-io %s', (mode) => {
  let d: RunningDaemon;
  let c: Wire;
  beforeAll(async () => {
    d = await startDaemon({ args: ['--socket-io', mode] });
    c = await d.connect();
  });
  afterAll(async () => {
    await d?.stop();
  });

  it('says at start-up which Node and which socket I/O mode serve', async () => {
    // This Node has what the direct path uses; a fallback to streams would show here. The line may
    // reach us after the socket is up (the logger writes asynchronously): wait for it.
    const ready = new RegExp(`ready .*node=${process.version.replace(/\./g, '\\.')} .*socketIo=${mode}`);
    expect(await eventually(() => d.output(), (out) => ready.test(out))).toMatch(ready);
  });

  it('a watcher that never reads does not stall the daemon for others', async () => {
    const sleeper = await d.connect();
    const token = 'z'.repeat(2000);
    await sleeper.watch('/flood', token);
    await sleeper.nextEvent();
    sleeper.pause();
    const writer = await d.connect();
    const reader = await d.connect();
    await c.write('/flood/probe', 'alive');
    const total = 10_000;
    const batch = 500;
    for (let i = 0; i < total; i += batch) {
      const replies = [];
      for (let k = i; k < i + batch; k++) replies.push(writer.awaitReply());
      await writer.sendRaw(Buffer.concat(Array.from({ length: batch }, (_, k) => frame(Op.WRITE, `/flood/k${(i + k) % 100}|${i + k}`, i + k + 1))));
      const got = await bounded(Promise.all(replies), 30_000, `writes ${i}..${i + batch}`);
      expect(got.every((r) => show(r) === 'OK|')).toBe(true);
      expect(await bounded(reader.read('/flood/probe'), 10_000, 'a read by another client')).toBe('alive');
    }
    // The sleeper wakes up: its connection still answers. The events it did not read were
    // dropped beyond a bound, not queued for ever (cxenstored discards them; XSA-326): 10 001
    // events of 2 KB each were caused, keeping them all is the unbounded growth of the XSA.
    sleeper.resume();
    await bounded(sleeper.sync(), 30_000, 'the sleeper\'s own request');
    const heard = sleeper.events();
    expect(heard.length).toBeGreaterThan(0);
    expect(heard.length).toBeLessThan(total);
    expect(heard.every((e) => e.token === token && e.path.startsWith('/flood/'))).toBe(true);
    expect(d.exited()).toBeUndefined();
    sleeper.close();
    writer.close();
    reader.close();
  });

  it('a client that sends requests but never reads replies only stalls itself', async () => {
    await c.write('/flood/big', 'b'.repeat(4000));
    const greedy = await d.connect();
    greedy.pause();
    const n = 20_000; // ~80 MB of replies if the daemon kept them all
    const one = frame(Op.READ, '/flood/big|', 1);
    const chunk = Buffer.concat(Array.from({ length: 1000 }, () => one));
    // Do not wait for the kernel to accept everything: the daemon is expected to stop reading.
    for (let i = 0; i < n / 1000; i++) greedy.socket.write(chunk);
    for (let i = 0; i < 20; i++) {
      expect(await bounded(c.read('/flood/probe'), 10_000, 'a read by another client')).toBe('alive');
      await new Promise((r) => setTimeout(r, 20));
    }
    greedy.close();
    await greedy.closed;
    expect(await bounded(c.read('/flood/probe'), 10_000, 'a read after the greedy client left')).toBe('alive');
    await c.rm('/flood');
  });
});

describe('bounded bookkeeping (XSA-330)', () => {
  it('watch + RESET_WATCHES loops keep the watch count flat', async () => {
    const base = await statsNumber('watches');
    const x = await d.connect();
    for (let round = 0; round < 20; round++) {
      const replies = Array.from({ length: 100 }, () => x.awaitReply());
      await x.sendRaw(Buffer.concat(Array.from({ length: 100 }, (_, i) => frame(Op.WATCH, `/loop/r${round}/w${i}|t${i}|`, i + 1))));
      expect((await Promise.all(replies)).every((r) => show(r) === 'OK|')).toBe(true);
      expect(await statsNumber('watches')).toBe(base + 100);
      expect(await x.ask(Op.RESET_WATCHES, '|')).toBe('OK|');
      expect(await statsNumber('watches')).toBe(base);
    }
    await c.write('/loop/r0/w0', 'v');
    // Initial events were taken by drain-free pipelining above; none may follow the resets.
    x.events();
    expect(await x.drain()).toEqual([]);
    x.close();
  });

  it('connections that come and go leave nothing behind', async () => {
    const baseWatches = await statsNumber('watches');
    const baseConns = await statsNumber('connections');
    for (let round = 0; round < 5; round++) {
      const conns = await Promise.all(Array.from({ length: 40 }, () => d.connect()));
      await Promise.all(
        conns.map(async (w, i) => {
          await w.watch(`/churn/${i}`, 't');
          await w.txStart();
        }),
      );
      conns.forEach((w) => w.close());
      await Promise.all(conns.map((w) => w.closed));
    }
    expect(await settle(() => statsNumber('connections'), baseConns)).toBe(baseConns);
    expect(await settle(() => statsNumber('watches'), baseWatches)).toBe(baseWatches);
  });
});

describe('random requests', () => {
  it('every random request gets exactly one well-formed reply; the store stays consistent', async () => {
    const fz = await startDaemon();
    try {
      const dom0 = await fz.connect();
      const guest = await fz.guest(9);
      await dom0.mkdir('/local/domain/9');
      await dom0.setPerms('/local/domain/9', ['n9']);
      const rand = mulberry32(20260801);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
      const words = ['/', '/f', '/f/a', '/f/a/b', 'rel', 'rel/x', '@releaseDomain', '@introduceDomain', '/local/domain/9/x', '/local/domain/', '//', 'T', 'F', 'n0', 'r9', 'b9', '9', '0', '4096', '1', 'help', 'check', 'nodes', 'watches', 'tok', ''];
      // Not INTRODUCE, RELEASE, SET_FEATURE, SET_QUOTA: they would change the test's own setup.
      const types = [0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 25, 27, 65535];
      for (let round = 0; round < 4; round++) {
        for (const w of [dom0, guest]) {
          const sent: { type: number; reqId: number }[] = [];
          const frames: Buffer[] = [];
          for (let i = 0; i < 150; i++) {
            const type = pick(types);
            const n = Math.floor(rand() * 4);
            let payload = Buffer.from(Array.from({ length: n }, () => pick(words)).join('\0') + (rand() < 0.8 ? '\0' : ''), 'latin1');
            if (rand() < 0.1) payload = Buffer.from(Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)));
            const reqId = round * 1000 + i + 1;
            const txId = rand() < 0.1 ? Math.floor(rand() * 3) : 0;
            sent.push({ type, reqId });
            frames.push(Buffer.concat([header(type, reqId, txId, payload.length), payload]));
          }
          const replies: Promise<Reply>[] = sent.map(() => w.awaitReply());
          await w.sendRaw(Buffer.concat(frames));
          const got = await bounded(Promise.all(replies), 30_000, `random round ${round}`);
          got.forEach((r, i) => {
            expect(r.reqId, `reply ${i}`).toBe(sent[i]!.reqId);
            expect([sent[i]!.type, Op.ERROR], `reply ${i} type`).toContain(r.type);
            expect(r.payload.length).toBeLessThanOrEqual(4096);
            if (r.type === Op.ERROR) expect(r.payload.toString('latin1')).toMatch(/^E[A-Z0-9]+\0$/);
          });
        }
      }
      expect(await dom0.control('check')).toBe('OK');
      expect(fz.exited()).toBeUndefined();
    } finally {
      await fz.stop();
    }
  });
});

describe('shutdown', () => {
  it('SIGTERM with busy clients connected: the daemon exits 0 by itself', async () => {
    const sd = await startDaemon();
    const x = await sd.connect();
    await x.watch('/', 'all');
    const tx = await x.txStart();
    await x.write('/pending', 'v', tx);
    expect(await x.ask(Op.INTRODUCE, '5|4096|1|')).toBe('OK|');
    const g = await sd.connectDomain(5);
    await g.ask(Op.WATCH, 'x|t|');
    const result = await sd.stop();
    expect(result).toEqual({ code: 0, signal: null, forced: false });
    await Promise.all([x.closed, g.closed]);
  });
});

describe('after all of this', () => {
  it('the shared daemon is alive and consistent', async () => {
    expect(d.exited()).toBeUndefined();
    expect(await c.control('check')).toBe('OK');
  });
});
