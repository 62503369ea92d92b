#!/usr/bin/env node
/**
 * History's recorder alone (issue 14): `History.recordRequest` called for commits shaped as the
 * loadgen's write load makes them (a WRITE of a 16-byte value over another to one of 1,000 keys,
 * its payload `path\0value`, one permission entry kept), in a full window of `--records` records,
 * with nothing else running. Against what history costs a write in the daemon
 * (`bench/history-cost.sh wire`) it tells the recorder's own work from what it costs among the
 * daemon's (bench/RESULTS.md, "History", seventh pass). `--rounds` rounds of `--writes` records
 * after `--writes` of warm-up; prints the CPU per record of each round. `--skip` runs the same loop
 * without the call: the harness's own share.
 *
 *     node dist/bench/history-recorder.js [--writes 2000000] [--rounds 3] [--records 200000] [--skip]
 */
import { parseArgs } from 'node:util';
import { History, XsNode, createStore, type Touched, type Version } from '../store/index.js';

const { values } = parseArgs({
  options: {
    writes: { type: 'string', default: '2000000' },
    rounds: { type: 'string', default: '3' },
    records: { type: 'string', default: '200000' },
    skip: { type: 'boolean', default: false },
  },
});
const WRITES = Number(values.writes);
const ROUNDS = Number(values.rounds);
const RECORDS = Number(values.records);
for (const [name, n] of [['--writes', WRITES], ['--rounds', ROUNDS], ['--records', RECORDS]] as const) {
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`${name} takes a whole number of at least 1`);
}

const KEYS = 1000;
const VARIANTS = 16;
const perms = [{ access: 'n', domid: 0 }] as const;
const keys = Array.from({ length: KEYS }, (_, i) => `/data/group${i % 37}/key${i}`);
const values16 = Array.from({ length: 64 }, (_, i) => `v${i}`.padEnd(16, 'x'));
const nodes = values16.map((v) => XsNode.leaf(v, perms));
const payloads = keys.flatMap((k, i) => Array.from({ length: VARIANTS }, (_, v) => Buffer.from(`${k}\0${values16[(i + v) & 63]!}`, 'latin1')));

const start = createStore();
let live: Version = { root: start.root, special: start.special, generation: 0 };
const history = new History(live, { records: RECORDS }, 0);
const skip = values.skip;

/** Commit `i`: key i mod 1000 goes from one 16-byte value to another (the tree itself is not rebuilt: only history is measured). */
function step(i: number): void {
  const k = i % KEYS;
  const v = (i >> 3) % VARIANTS;
  const before = live;
  const after: Version = { root: before.root, special: before.special, generation: before.generation + 1 };
  const path = keys[k]!;
  const touched: Touched = { path, before: nodes[(k + v + 63) & 63]!, after: nodes[(k + v) & 63]! };
  // The time moves every 16 commits, as a turn's do (server/turn-clock.ts).
  if (!skip) history.recordRequest(before, after, 1.7e12 + (i >> 4), 1, 'socket', 7, 'write', path, undefined, touched, payloads[k * VARIANTS + v]!);
  live = after;
}

for (let i = 0; i < WRITES; i++) step(i);
for (let r = 0; r < ROUNDS; r++) {
  const t0 = process.cpuUsage();
  for (let i = 0; i < WRITES; i++) step(WRITES * (r + 1) + i);
  const c = process.cpuUsage(t0);
  const ns = ((c.user + c.system) * 1000) / WRITES;
  console.log(`history recorder${skip ? ' (skipped)' : ''}: ${ns.toFixed(1)} ns of CPU per record, window ${history.size} records of ${(history.bytes / Math.max(1, history.size)).toFixed(1)} bytes`);
}
