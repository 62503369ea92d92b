import { PassThrough } from 'node:stream';
import { expect } from 'vitest';
import { KeptTransport } from '../../bench/kept-transport.js';
import { encodeFrame, Op } from '../../protocol/index.js';
import { createLogger, Daemon, Quotas } from '../../server/index.js';

/**
 * A daemon in this process with one dom0 client on a kept transport (bench/kept-transport.ts): the
 * test feeds it input and reads what it was sent, and reads the daemon's log lines, with no socket.
 */
export function daemonWithClient(): { daemon: Daemon; client: KeptTransport; logged: string[] } {
  const logged: string[] = [];
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => logged.push(chunk.toString()));
  const daemon = new Daemon({ rundir: '/nonexistent', log: createLogger('pretty', 'warn', sink), quotas: new Quotas(), accessLog: false, history: { records: 1000 } });
  const client = new KeptTransport();
  daemon.attach(client, 'socket', { domid: 0, privileged: true });
  return { daemon, client, logged };
}

/** The types of the frames a client was sent (a turn's replies leave in one buffer). */
export function replies(client: KeptTransport): number[] {
  const all = Buffer.concat(client.out);
  const types: number[] = [];
  for (let at = 0; at < all.length; at += 16 + all.readUInt32LE(at + 12)) types.push(all.readUInt32LE(at));
  return types;
}

export const turn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/** Waits for `n` replies in all: a pipelined input may be answered over several turns (its slices). */
export async function answered(client: KeptTransport, n: number): Promise<void> {
  for (let i = 0; i < 1000 && replies(client).length < n; i++) await turn();
  expect(replies(client)).toHaveLength(n);
}

/** A WRITE frame. */
export const write = (path: string, value: string, req: number): Buffer => encodeFrame(Op.WRITE, req, 0, Buffer.from(`${path}\0${value}`, 'latin1'));
