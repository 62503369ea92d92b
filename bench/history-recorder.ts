#!/usr/bin/env node
/**
 * History's recorder alone (issue 14): `History.recordRequest` called for commits shaped as the
 * loadgen's write load makes them (a WRITE of a 16-byte value over another to one of 1,000 keys,
 * its payload `path\0value`, one permission entry kept), in a full window of `--records` records,
 * with nothing else running. Against what history costs a write in the daemon
 * (`bench/history-cost.sh wire`) it tells the recorder's own work from what it costs among the
 * daemon's (bench/RESULTS.md, "History", seventh pass). `--rounds` rounds of `--writes` records
 * after `--writes` of warm-up; prints the CPU per record of each round. `--skip` runs the same loop
 * without the call: the harness's own share. The time moves every 16 commits, as a turn's
 * pipelined writes share the turn's time in the daemon (server/turn-clock.ts).
 *
 * `--floor` runs the same loop with, instead of History, the least any history of these writes has
 * to do per write (`Floor`, below): a lower bound on what history can cost, set beside the few percent of
 * the daemon's CPU per write that issue 14 allows it (bench/RESULTS.md, "History", fourteenth pass).
 *
 *     node dist/bench/history-recorder.js [--writes 2000000] [--rounds 3] [--records 200000] [--skip | --floor]
 */
import { parseArgs } from 'node:util';
import { History, XsNode, createStore, type Touched, type Version } from '../store/index.js';
import { DATA_KEYS, dataKey, value16 } from './loadgen/keyspace.js';
import { WRITE_VARIANTS as VARIANTS } from './loadgen/loads.js';

const { values } = parseArgs({
  options: {
    writes: { type: 'string', default: '2000000' },
    rounds: { type: 'string', default: '3' },
    records: { type: 'string', default: '200000' },
    skip: { type: 'boolean', default: false },
    floor: { type: 'boolean', default: false },
  },
});
const WRITES = Number(values.writes);
const ROUNDS = Number(values.rounds);
const RECORDS = Number(values.records);
for (const [name, n] of [['--writes', WRITES], ['--rounds', ROUNDS], ['--records', RECORDS]] as const) {
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`${name} takes a whole number of at least 1`);
}

const perms = [{ access: 'n', domid: 0 }] as const;
const keys = Array.from({ length: DATA_KEYS }, (_, i) => dataKey(i));
/**
 * Per key and variant: the request's payload (`path\0value`) and the node the write makes, its
 * value decoded from the payload as the daemon decodes it (protocol/payload.ts `writeArgs`): a
 * flat string, which Node's string copies take on their fast path (a sliced one they do not).
 */
const payloads = keys.flatMap((k, i) => Array.from({ length: VARIANTS }, (_, v) => Buffer.from(`${k}\0${value16(i, v)}`, 'latin1')));
const made = payloads.map((p, j) => XsNode.leaf(p.toString('latin1', keys[Math.floor(j / VARIANTS)]!.length + 1), perms));

const start = createStore();
let live: Version = { root: start.root, special: start.special, generation: 0 };
const history = new History(live, { records: RECORDS }, 0);
const skip = values.skip;
if (skip && values.floor) throw new Error('--skip and --floor are two different loops: give one');

/**
 * The least a history of plain writes has to do per write, whatever its design: keep the bytes of
 * the request (its path and new value, copied whole from the payload as History does) and of the
 * value it replaced (the tree keeps no old version, so an old moment can only be rebuilt from
 * them), stamped with who wrote it (domid, connection kind and id: a turn's writes come from many
 * clients), and find the record again (one index entry). Not even the generation and the time
 * (a record's place in the index can give the one, a turn's records can share the other), nor the
 * old permissions (a rewrite keeps them). Into one buffer allocated at the start, wrapping at its
 * end, with no record kinds, no byte bound, no eviction and no check: whatever History does
 * beyond this, no history of these writes can cost less.
 */
class Floor {
  private readonly buf: Buffer;
  private readonly view: DataView;
  private readonly at: Uint32Array;
  private pos = 0;
  private n = 0;

  constructor(private readonly records: number) {
    this.buf = Buffer.allocUnsafeSlow(records * 128);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
    this.at = new Uint32Array(records);
  }

  take(domid: number, connection: number, id: number, payload: Buffer, old: string): void {
    const b = this.buf;
    const v = this.view;
    let p = this.pos;
    if (p + 15 + payload.length + old.length > b.length) p = 0;
    this.at[this.n] = p;
    if (++this.n === this.records) this.n = 0;
    v.setUint16(p, domid, true);
    b[p + 2] = connection;
    v.setUint32(p + 3, id, true);
    v.setUint32(p + 7, payload.length, true);
    b.set(payload, p + 11);
    p += 11 + payload.length;
    const n = old.length;
    v.setUint32(p, n, true);
    p += 4;
    for (let i = 0; i < n; i++) b[p + i] = old.charCodeAt(i);
    this.pos = p + n;
  }
}
const floor = values.floor ? new Floor(RECORDS) : undefined;

/** Commit `i`: key i mod 1,000 goes from its previous variant's value to the next (the tree itself is not rebuilt: only history is measured). */
function step(i: number): void {
  const k = i % DATA_KEYS;
  const v = Math.floor(i / DATA_KEYS) % VARIANTS;
  const before = live;
  const after: Version = { root: before.root, special: before.special, generation: before.generation + 1 };
  const path = keys[k]!;
  const touched: Touched = { path, before: made[k * VARIANTS + ((v + VARIANTS - 1) % VARIANTS)]!, after: made[k * VARIANTS + v]! };
  // The time moves every 16 commits, as a turn's do (server/turn-clock.ts).
  if (floor !== undefined) floor.take(1, 1, 7, payloads[k * VARIANTS + v]!, touched.before!.value);
  else if (!skip) history.recordRequest(before, after, 1.7e12 + (i >> 4), 1, 'socket', 7, 'write', path, undefined, touched, payloads[k * VARIANTS + v]!);
  live = after;
}

for (let i = 0; i < WRITES; i++) step(i);
for (let r = 0; r < ROUNDS; r++) {
  const t0 = process.cpuUsage();
  for (let i = 0; i < WRITES; i++) step(WRITES * (r + 1) + i);
  const c = process.cpuUsage(t0);
  const ns = ((c.user + c.system) * 1000) / WRITES;
  // Bytes a record counts for (each as if alone: the window's byte bound), and what the window holds per record.
  const per = (n: number): string => (n / Math.max(1, history.size)).toFixed(1);
  if (floor !== undefined) console.log(`history recorder (floor): ${ns.toFixed(1)} ns of CPU per record`);
  else console.log(`history recorder${skip ? ' (skipped)' : ''}: ${ns.toFixed(1)} ns of CPU per record, window ${history.size} records of ${per(history.bytes)} bytes (${per(history.allocated)} held)`);
}
