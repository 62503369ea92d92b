#!/usr/bin/env node
/**
 * The daemon's own CPU per transaction, without sockets: 16 in-process clients (`Daemon.attach`
 * with a transport that keeps what it is given) run the `tx` load's transaction, START, 2 READs,
 * 2 WRITEs, END, through the real dispatch (`process()`), store, transactions and per-turn flush.
 * Set beside `bench/peers.ts --floor` it splits a wire load's cost into ours and the runtime's.
 *
 *     node dist/bench/in-process.js [--rounds 20000]
 */
import { EventEmitter } from 'node:events';
import { parseArgs } from 'node:util';
import { encodeFrame, Op } from '../protocol/index.js';
import { createLogger, Daemon, Quotas } from '../server/index.js';
import type { Transport } from '../server/connection.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '20000' } } });
const ROUNDS = Number(values.rounds);
const CLIENTS = 16;

class Kept extends EventEmitter implements Transport {
  readonly writableLength = 0;
  readonly writableNeedDrain = false;
  readonly out: Buffer[] = [];
  write(frame: Buffer): boolean {
    this.out.push(frame);
    return true;
  }
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  destroy(): this {
    return this;
  }
}

const daemon = new Daemon({ rundir: '/nonexistent', log: createLogger('json', 'error'), quotas: new Quotas(), accessLog: false });
const clients = Array.from({ length: CLIENTS }, () => {
  const t = new Kept();
  daemon.attach(t, 'socket', { domid: 0, privileged: true });
  return t;
});
const bytes = (s: string) => Buffer.from(s, 'latin1');
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Sends one frame per client and lets the daemon answer them all in one turn, as on the wire. */
async function step(frame: (i: number) => Buffer): Promise<Buffer[]> {
  for (let i = 0; i < CLIENTS; i++) {
    clients[i]!.out.length = 0;
    clients[i]!.emit('data', frame(i));
  }
  await turn();
  return clients.map((t) => t.out[0]!);
}

await step((i) => encodeFrame(Op.WRITE, 1, 0, bytes(`/bench/tx/c${i}/a\0v`)));
await step((i) => encodeFrame(Op.WRITE, 1, 0, bytes(`/bench/tx/c${i}/b\0v`)));
const t0 = process.cpuUsage();
const w0 = performance.now();
for (let r = 0; r < ROUNDS; r++) {
  const started = await step(() => encodeFrame(Op.TRANSACTION_START, 1, 0, bytes('\0')));
  const ids = started.map((f) => Number(f.subarray(16, f.length - 1).toString('latin1')));
  await step((i) => encodeFrame(Op.READ, 2, ids[i]!, bytes(`/bench/tx/c${i}/a\0`)));
  await step((i) => encodeFrame(Op.READ, 3, ids[i]!, bytes(`/bench/tx/c${i}/b\0`)));
  await step((i) => encodeFrame(Op.WRITE, 4, ids[i]!, bytes(`/bench/tx/c${i}/a\0x${r}`)));
  await step((i) => encodeFrame(Op.WRITE, 5, ids[i]!, bytes(`/bench/tx/c${i}/b\0y${r}`)));
  const ended = await step((i) => encodeFrame(Op.TRANSACTION_END, 6, ids[i]!, bytes('T\0')));
  if (ended.some((f) => f.readUInt32LE(0) !== Op.TRANSACTION_END)) throw new Error('a commit failed');
}
const cpu = process.cpuUsage(t0);
const ms = performance.now() - w0;
const commits = ROUNDS * CLIENTS;
process.stdout.write(
  `in-process tx: ${((cpu.user + cpu.system) / commits).toFixed(1)} µs of CPU per commit (6 requests), ` +
    `${Math.round((commits / ms) * 1000)} commits/s, ${commits} commits\n`,
);
