/**
 * What the tests of test/attacks share: a guest with a home of its own, many connections to a
 * guest's socket (some of which the daemon may refuse), requests pipelined on connections that may
 * be closed under them, and the daemon's own account of a domain (CONTROL `quota <domid>`).
 */
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
