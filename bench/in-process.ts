#!/usr/bin/env node
/**
 * The daemon's own CPU per transaction, without sockets: 16 in-process clients (`Daemon.attach`
 * with a transport that keeps what it is given) run a wire load's transactions through the real
 * dispatch (`process()`), store, transactions and per-turn flush, one request per client per turn
 * as sequential clients on the wire do. Set beside `bench/peers.ts --floor` it splits a wire
 * load's cost into ours and the runtime's.
 *
 * - `--load tx`: the `tx` load's START, 2 READs, 2 WRITEs, END in the client's own subtree;
 * - `--load vm`: the `vm` load's VM start (3 RMs of the slot's last VM, then START, 13 WRITEs,
 *   2 READs, END; `bench/loadgen/loads.ts` `vmScript`), each client cycling 4 VM slots.
 * - `--load write`: the `write` load's plain WRITEs of 16-byte values to its 1,000 keys, 8
 *   clients each with 16 in flight (one pipeline of 16 per client per turn, as the wire load's
 *   `--connections 8 --depth 16` arrive): the per-write path without the socket's syscalls, whose
 *   cost on the wire swings with how the replies happen to batch.
 *
 * `--history-records N` bounds history's window as the daemon's option does (0: no history), so
 * history's cost per write can be read with and without it in one process's terms, without the
 * socket's noise (issue 14).
 *
 *     node dist/bench/in-process.js [--load tx|vm|write] [--rounds 20000] [--history-records N]
 */
import { parseArgs } from 'node:util';
import { encodeFrame, Op } from '../protocol/index.js';
import { DATA_KEYS, dataKey, Rng, value16 } from './loadgen/keyspace.js';
import { vmScript, WRITE_VARIANTS } from './loadgen/loads.js';
import { createLogger, Daemon, Quotas } from '../server/index.js';
import { KeptTransport } from './kept-transport.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '20000' }, load: { type: 'string', default: 'tx' }, 'history-records': { type: 'string' } },
});
const ROUNDS = Number(values.rounds);
const LOAD = values.load;
if (LOAD !== 'tx' && LOAD !== 'vm' && LOAD !== 'write') throw new Error(`--load must be tx, vm or write, not ${LOAD}`);
const CLIENTS = LOAD === 'write' ? 8 : 16;
const DEPTH = 16;

const historyRecords = values['history-records'] === undefined ? undefined : Number(values['history-records']);
if (historyRecords !== undefined && !(Number.isInteger(historyRecords) && historyRecords >= 0)) throw new Error('--history-records takes a number of records (0: no history)');
const daemon = new Daemon({
  rundir: '/nonexistent',
  log: createLogger('json', 'error'),
  quotas: new Quotas(),
  accessLog: false,
  history: historyRecords === undefined ? undefined : { records: historyRecords },
});
const clients = Array.from({ length: CLIENTS }, () => {
  const t = new KeptTransport();
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

/** `inTx(frame, txId)` is a loadgen frame (req_id and tx_id 0) sent in transaction `txId`. */
function inTx(frame: Buffer, txId: number): Buffer {
  const out = Buffer.from(frame);
  out.writeUInt32LE(txId, 8);
  return out;
}

/**
 * One transaction per client: client i sends `before[i]` outside it, then START, `steps[i]`, END;
 * all must commit. The frames are built once per transaction, before it runs.
 */
async function transaction(before: readonly (readonly Buffer[])[], steps: readonly (readonly Buffer[])[]): Promise<void> {
  for (let k = 0; k < before[0]!.length; k++) await step((i) => before[i]![k]!);
  const started = await step(() => encodeFrame(Op.TRANSACTION_START, 1, 0, bytes('\0')));
  const ids = started.map((f) => Number(f.subarray(16, f.length - 1).toString('latin1')));
  for (let k = 0; k < steps[0]!.length; k++) await step((i) => inTx(steps[i]![k]!, ids[i]!));
  const ended = await step((i) => encodeFrame(Op.TRANSACTION_END, 6, ids[i]!, bytes('T\0')));
  if (ended.some((f) => f.readUInt32LE(0) !== Op.TRANSACTION_END)) throw new Error('a commit failed');
}

const VM_SLOTS = 4;
const vms = Array.from({ length: CLIENTS }, (_, i) => Array.from({ length: VM_SLOTS }, (_, s) => vmScript(1 + i * VM_SLOTS + s, false)));
const NOTHING = Array.from({ length: CLIENTS }, (): Buffer[] => []);
let round = 0;
const rng = new Rng(1);
const writes = Array.from({ length: DATA_KEYS * WRITE_VARIANTS }, (_, j) =>
  encodeFrame(Op.WRITE, 1, 0, bytes(`${dataKey(j % DATA_KEYS)}\0${value16(j % DATA_KEYS, Math.floor(j / DATA_KEYS))}`)),
);
// Pipelines chosen at random up front, so the loop below measures the daemon, not their making.
const BATCHES = 1024;
const batches = Array.from({ length: BATCHES }, () => Buffer.concat(Array.from({ length: DEPTH }, () => writes[rng.below(writes.length)]!)));
let nextBatch = 0;
/** One turn of the write load: every client's pipeline of DEPTH writes, answered in that turn. */
async function writeTurn(): Promise<void> {
  for (let i = 0; i < CLIENTS; i++) {
    clients[i]!.out.length = 0;
    clients[i]!.emit('data', batches[nextBatch++ % BATCHES]!);
  }
  // Usually one turn; more when a pipeline outlasted its input slice (connection-input.ts SLICE_MS).
  for (let turns = 0; ; turns++) {
    await turn();
    const short = clients.find((t) => t.out.reduce((sum, b) => sum + countFrames(b, Op.WRITE), 0) < DEPTH);
    if (short === undefined) return;
    if (turns === 100) throw new Error('a client\'s writes were not all answered in 100 turns');
  }
}

/** The frames of `type` in `buf` (one reply frame, or a turn's frames joined). */
function countFrames(buf: Buffer, type: number): number {
  let n = 0;
  for (let at = 0; at < buf.length; at += 16 + buf.readUInt32LE(at + 12)) if (buf.readUInt32LE(at) === type) n++;
  return n;
}

const once: () => Promise<void> =
  LOAD === 'write'
    ? writeTurn
    : LOAD === 'tx'
    ? () => {
        const r = round++;
        return transaction(
          NOTHING,
          Array.from({ length: CLIENTS }, (_, i) => [
            encodeFrame(Op.READ, 2, 0, bytes(`/bench/tx/c${i}/a\0`)),
            encodeFrame(Op.READ, 3, 0, bytes(`/bench/tx/c${i}/b\0`)),
            encodeFrame(Op.WRITE, 4, 0, bytes(`/bench/tx/c${i}/a\0x${r}`)),
            encodeFrame(Op.WRITE, 5, 0, bytes(`/bench/tx/c${i}/b\0y${r}`)),
          ]),
        );
      }
    : () => {
        const slot = round++ % VM_SLOTS;
        return transaction(
          vms.map((v) => v[slot]!.before),
          vms.map((v) => v[slot]!.steps),
        );
      };

if (LOAD === 'write') {
  for (let k = 0; k < DATA_KEYS; k += CLIENTS) await step((i) => encodeFrame(Op.WRITE, 1, 0, bytes(`${dataKey(k + i)}\0${value16(k + i)}`)));
} else if (LOAD === 'tx') {
  await step((i) => encodeFrame(Op.WRITE, 1, 0, bytes(`/bench/tx/c${i}/a\0v`)));
  await step((i) => encodeFrame(Op.WRITE, 1, 0, bytes(`/bench/tx/c${i}/b\0v`)));
} else {
  await step(() => encodeFrame(Op.MKDIR, 1, 0, bytes('/local/domain/0/backend/vbd\0')));
  await step(() => encodeFrame(Op.MKDIR, 1, 0, bytes('/vm\0')));
}
const t0 = process.cpuUsage();
const w0 = performance.now();
for (let r = 0; r < ROUNDS; r++) await once();
const cpu = process.cpuUsage(t0);
const ms = performance.now() - w0;
const units = ROUNDS * CLIENTS * (LOAD === 'write' ? DEPTH : 1);
const what = LOAD === 'write' ? 'write' : LOAD === 'tx' ? 'tx (6 requests)' : 'vm (3 RMs + 17 requests)';
const unit = LOAD === 'write' ? 'write' : 'commit';
process.stdout.write(
  `in-process ${what}: ${((cpu.user + cpu.system) / units).toFixed(LOAD === 'write' ? 2 : 1)} µs of CPU per ${unit}, ` +
    `${Math.round((units / ms) * 1000)} ${unit}s/s, ${units} ${unit}s\n`,
);
