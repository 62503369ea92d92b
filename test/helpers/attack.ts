/**
 * What the tests of test/attacks share: a guest with a home of its own, many connections to a
 * guest's socket (some of which the daemon may refuse), requests pipelined on connections that may
 * be closed under them, and the daemon's own account of a domain (CONTROL `quota <domid>`).
 */
import { Worker } from 'node:worker_threads';
import type { RunningDaemon } from './daemon.js';
import { frame, show, type Wire } from './wire.js';

/** Introduces `domid` (from dom0's `c`), gives it a home it owns; returns a connection acting as it. */
export async function guestWithHome(d: RunningDaemon, c: Wire, domid: number): Promise<Wire> {
  const g = await d.guest(domid);
  await c.mkdir(`/local/domain/${domid}`);
  await c.setPerms(`/local/domain/${domid}`, [`n${domid}`]);
  return g;
}

/**
 * `connectMany(d, domid, n)`: n connections to the guest's socket. A refused one is accepted and
 * closed by the daemon, so it connects and then ends; every one is returned.
 */
export function connectMany(d: RunningDaemon, domid: number, n: number): Promise<Wire[]> {
  return Promise.all(Array.from({ length: n }, () => d.connectDomain(domid)));
}

/**
 * `pipelineSettled(w, reqs, txId)` sends the requests in one write and resolves with each reply
 * shown (`OK|`, `ENOSPC`, ...), or `closed` for those the connection ended before answering.
 */
export async function pipelineSettled(w: Wire, reqs: readonly (readonly [number, string | Buffer])[], txId = 0): Promise<string[]> {
  if (!w.isOpen) return reqs.map(() => 'closed');
  const replies = reqs.map(() => w.awaitReply().then(show, () => 'closed'));
  await w.sendRaw(Buffer.concat(reqs.map(([t, p], i) => frame(t, p, 1 + i, txId)))).catch(() => undefined);
  return Promise.all(replies);
}

/** `askSettled(w, type, payload)` is `w.ask`, or `closed` when the connection ends first. */
export function askSettled(w: Wire, type: number, payload: string | Buffer = ''): Promise<string> {
  return w.isOpen ? w.ask(type, payload).catch(() => 'closed') : Promise.resolve('closed');
}

/** A domain's figures from CONTROL `quota <domid>`: `{ watches: [used, max], memory: [...], ... }`. */
export async function usage(c: Wire, domid: number): Promise<Record<string, [number, number]>> {
  const out: Record<string, [number, number]> = {};
  for (const m of (await c.control('quota', String(domid))).matchAll(/^(\w+)\s+(\d+)\/(\d+|Infinity)/gm)) {
    out[m[1]!] = [Number(m[2]), Number(m[3])];
  }
  return out;
}

/** Counts each shown reply: `{ 'OK|': 3, ENOSPC: 5 }`. */
export function tally(replies: readonly string[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const r of replies) {
    const k = /^\d+\|$/.test(r) ? 'id' : r;
    t[k] = (t[k] ?? 0) + 1;
  }
  return t;
}

/**
 * What "others" see during an attack (issue 18): a client of `socket` reading `path` every
 * `everyMs`, each read's round trip timed. It runs on a worker thread with its own event loop,
 * so that what the test's thread does to drive the attack is not counted against the daemon.
 * `stop()` ends it and gives the latencies in ms.
 */
export function steadyReader(socket: string, path: string, everyMs = 10): { stop(): Promise<number[]> } {
  const worker = new Worker(READER, { eval: true, workerData: { socket, path, everyMs } });
  const done = new Promise<number[]>((resolve, reject) => {
    worker.once('message', (m: number[]) => resolve(m));
    worker.once('error', reject);
  });
  return {
    stop: async () => {
      worker.postMessage('stop');
      const out = await done;
      await worker.terminate();
      return out;
    },
  };
}

/** The reader's code (plain JS: a worker evaluates it as is). READ is type 2 (spec §2). */
const READER = `
const { workerData, parentPort } = require('node:worker_threads');
const net = require('node:net');
const { socket, path, everyMs } = workerData;
const latencies = [];
let running = true;
let buf = Buffer.alloc(0);
let waiting;
const s = net.connect(socket);
s.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  while (buf.length >= 16 && buf.length >= 16 + buf.readUInt32LE(12)) {
    const len = buf.readUInt32LE(12);
    const type = buf.readUInt32LE(0);
    buf = buf.subarray(16 + len);
    if (type !== 15 && waiting) { const w = waiting; waiting = undefined; w(); }
  }
});
const payload = Buffer.from(path + '\\0', 'latin1');
const hdr = Buffer.alloc(16);
hdr.writeUInt32LE(2, 0); hdr.writeUInt32LE(1, 4); hdr.writeUInt32LE(0, 8); hdr.writeUInt32LE(payload.length, 12);
const frame = Buffer.concat([hdr, payload]);
parentPort.on('message', () => { running = false; });
s.once('connect', async () => {
  while (running) {
    const t0 = performance.now();
    await new Promise((r) => { waiting = r; s.write(frame); });
    latencies.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  s.destroy();
  parentPort.postMessage(latencies);
});
`;

/** The `q`-quantile (0..1) of `xs`, nearest rank. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** CONTROL `loop [reset]`: the longest event-loop delay of the daemon (ms) since the last reset. */
export async function loopMax(c: Wire, reset = false): Promise<number> {
  const out = reset ? await c.control('loop', 'reset') : await c.control('loop');
  return Number(/max-ms ([\d.]+)/.exec(out)![1]);
}
