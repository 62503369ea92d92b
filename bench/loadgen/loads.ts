import { Op } from '../../protocol/index.js';
import { bulk } from './bulk.js';
import { DATA_KEYS, dataDir, dataKey, Rng, scaleKey, value16 } from './keyspace.js';
import { frame, LoadConnection, type ReplySink } from './load-connection.js';
import { Recorder, type LoadResult } from './result.js';
import { ThroughputClient } from './throughput-load.js';
import { TransactionClient, type TxScript } from './transaction-client.js';
import { WATCH_DIR, WatchLoad } from './watch-load.js';

export interface LoadOptions {
  readonly socket: string;
  readonly label: string;
  /** Measured window and discarded warm-up, seconds. */
  readonly duration: number;
  readonly warmup: number;
  /** Throughput loads: connections × requests in flight. */
  readonly connections: number;
  readonly depth: number;
  /** Transaction loads: sequential clients, one connection each. */
  readonly clients: number;
  /** Store-size series and fill: number of keys. */
  readonly nodes: number;
  /** Watch fan-out: number of watches, over `watchConns` connections. */
  readonly watches: number;
  readonly watchConns: number;
  readonly seed: number;
  /** Skip writing the load's keys (they exist from an earlier run). */
  readonly noPrepare: boolean;
}

const CYCLE = 1 << 15; // prebuilt requests per connection, replayed in a loop
export const WRITE_VARIANTS = 16; // values per key, so a write almost always changes the value
const NOOP: ReplySink = { reply: () => undefined };

export const LOAD_NAMES = ['read', 'write', 'mixed', 'tx', 'vm', 'vm-dir', 'watch', 'scale-read', 'scale-write', 'fill'] as const;
export type LoadName = (typeof LOAD_NAMES)[number];

const read = (path: string) => frame(Op.READ, `${path}\0`);
const write = (path: string, value: string) => frame(Op.WRITE, `${path}\0${value}`);
const directory = (path: string) => frame(Op.DIRECTORY, `${path}\0`);
const mkdir = (path: string) => frame(Op.MKDIR, `${path}\0`);
const rm = (path: string) => frame(Op.RM, `${path}\0`);

/** `runLoad(name, opts)` runs one load against `opts.socket` and returns what it measured. */
export async function runLoad(name: LoadName, opts: LoadOptions): Promise<LoadResult> {
  switch (name) {
    case 'read':
    case 'write':
    case 'mixed':
      return throughput(name, opts, dataCycle(name, opts), () => prepareData(opts));
    case 'scale-read':
    case 'scale-write':
      return throughput(name, opts, scaleCycle(name, opts), async () => undefined);
    case 'tx':
    case 'vm':
    case 'vm-dir':
      return transactions(name, opts);
    case 'watch':
      return watch(opts);
    case 'fill':
      return fill(opts);
  }
}

async function openAll(opts: LoadOptions, n: number): Promise<LoadConnection[]> {
  const out: LoadConnection[] = [];
  for (let i = 0; i < n; i++) out.push(await LoadConnection.open(opts.socket, NOOP));
  return out;
}

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

/** Warm-up, then the measured window, with the same timing for every load and daemon. */
async function measure(rec: Recorder, opts: LoadOptions, start: () => void, stop: () => Promise<unknown>): Promise<void> {
  start();
  await sleep(opts.warmup);
  rec.open();
  await sleep(opts.duration);
  rec.close();
  await Promise.race([stop(), sleep(5)]);
}

/** `measure` for a set of clients that start and stop together. */
function measureClients(rec: Recorder, opts: LoadOptions, clients: readonly { start(): void; stop(): Promise<void> }[]): Promise<void> {
  return measure(
    rec,
    opts,
    () => clients.forEach((c) => c.start()),
    () => Promise.all(clients.map((c) => c.stop())),
  );
}

async function prepareData(opts: LoadOptions): Promise<void> {
  if (opts.noPrepare) return;
  const conns = await openAll(opts, 2);
  const r = await bulk(conns, DATA_KEYS, (i) => write(dataKey(i), value16(i)));
  for (const c of conns) c.close();
  if (r.errors > 0) throw new Error(`preparing ${DATA_KEYS} keys: ${r.errors} errors, first ${r.first}`);
}

/** Prebuilt request cycles: reads of 1,000 keys, writes of 16-byte values, listings of their dirs. */
function dataCycle(name: 'read' | 'write' | 'mixed', opts: LoadOptions): (conn: number) => Buffer[] {
  const reads = Array.from({ length: DATA_KEYS }, (_, i) => read(dataKey(i)));
  const writes = Array.from({ length: DATA_KEYS * WRITE_VARIANTS }, (_, j) =>
    write(dataKey(j % DATA_KEYS), value16(j % DATA_KEYS, Math.floor(j / DATA_KEYS))),
  );
  const dirs = Array.from({ length: DATA_KEYS }, (_, i) => directory(dataDir(i)));
  return (conn) => {
    const rng = new Rng(opts.seed * 7919 + conn + 1);
    return Array.from({ length: CYCLE }, () => {
      const pick = name === 'read' ? 0 : name === 'write' ? 80 : rng.below(100);
      const key = rng.below(DATA_KEYS);
      if (pick < 70) return reads[key]!;
      if (pick < 90) return writes[key + DATA_KEYS * rng.below(WRITE_VARIANTS)]!;
      return dirs[key]!;
    });
  };
}

/** The store-size series: reads or writes of keys drawn from all `nodes` keys of `fill`. */
function scaleCycle(name: 'scale-read' | 'scale-write', opts: LoadOptions): (conn: number) => Buffer[] {
  return (conn) => {
    const rng = new Rng(opts.seed * 104729 + conn + 1);
    return Array.from({ length: CYCLE }, (_, j) => {
      const key = rng.below(opts.nodes);
      return name === 'scale-read' ? read(scaleKey(key)) : write(scaleKey(key), value16(key, j & 15));
    });
  };
}

async function throughput(
  name: LoadName,
  opts: LoadOptions,
  cycleOf: (conn: number) => Buffer[],
  prepare: () => Promise<void>,
): Promise<LoadResult> {
  await prepare();
  const rec = new Recorder();
  const conns = await openAll(opts, opts.connections);
  const clients = conns.map((c, i) => new ThroughputClient(c, cycleOf(i), opts.depth, rec));
  await measureClients(rec, opts, clients);
  for (const c of conns) c.close();
  return rec.result(name, opts.label, false);
}

const VM_SLOTS = 4; // VMs per client that exist at once; a slot is torn down before it is reused

/**
 * Starting VM `domid` the way libxl lays it out: the guest's subtree, dom0's backend directory for
 * its disk, and /vm/<uuid>, all in one transaction, reading back only its own nodes. With
 * `listBackends`, the transaction also lists dom0's backend directory first (as a toolstack does
 * to pick a device), which every other VM start changes: a true conflict.
 */
export function vmScript(domid: number, listBackends: boolean): TxScript {
  const dom = `/local/domain/${domid}`;
  const be = `/local/domain/0/backend/vbd/${domid}/51712`;
  const uuid = `00000000-0000-4000-8000-${domid.toString(16).padStart(12, '0')}`;
  const vm = `/vm/${uuid}`;
  const steps = [
    ...(listBackends ? [directory('/local/domain/0/backend/vbd')] : []),
    write(`${dom}/name`, `vm${domid}`),
    write(`${dom}/vm`, vm),
    write(`${dom}/memory/target`, '1048576'),
    write(`${dom}/device/vbd/51712/backend`, be),
    write(`${dom}/device/vbd/51712/backend-id`, '0'),
    write(`${dom}/device/vbd/51712/state`, '1'),
    write(`${be}/frontend`, `${dom}/device/vbd/51712`),
    write(`${be}/frontend-id`, String(domid)),
    write(`${be}/params`, `/images/vm${domid}.img`),
    write(`${be}/state`, '1'),
    write(`${vm}/name`, `vm${domid}`),
    write(`${vm}/uuid`, uuid),
    write(`${vm}/image/ostype`, 'linux'),
    read(`${dom}/name`),
    read(`${vm}/name`),
  ];
  return { before: [rm(dom), rm(`/local/domain/0/backend/vbd/${domid}`), rm(vm)], steps };
}

/** Two reads and two writes in the client's own subtree: no two clients ever truly conflict. */
export function txScript(client: number, n: number): TxScript {
  const base = `/bench/tx/c${client}`;
  const v = value16(client, n & 1);
  return { before: [], steps: [read(`${base}/a`), read(`${base}/b`), write(`${base}/a`, v), write(`${base}/b`, v)] };
}

async function transactions(name: 'tx' | 'vm' | 'vm-dir', opts: LoadOptions): Promise<LoadResult> {
  const conns = await openAll(opts, opts.clients);
  if (!opts.noPrepare) {
    const setup =
      name === 'tx'
        ? Array.from({ length: opts.clients * 2 }, (_, i) => write(`/bench/tx/c${i >> 1}/${i & 1 ? 'b' : 'a'}`, value16(i)))
        : [mkdir('/local/domain/0/backend/vbd'), mkdir('/vm')];
    const r = await bulk(conns.slice(0, 1), setup.length, (i) => setup[i]!, 1);
    if (r.errors > 0) throw new Error(`preparing ${name}: ${r.first}`);
  }
  const rec = new Recorder();
  const clients = conns.map((c, i) => {
    if (name === 'tx') {
      const scripts = [txScript(i, 0), txScript(i, 1)];
      return new TransactionClient(c, (n) => scripts[n & 1]!, rec);
    }
    const scripts = Array.from({ length: VM_SLOTS }, (_, s) => vmScript(1 + i * VM_SLOTS + s, name === 'vm-dir'));
    return new TransactionClient(c, (n) => scripts[n % VM_SLOTS]!, rec);
  });
  await measureClients(rec, opts, clients);
  for (const c of conns) c.close();
  return rec.result(name, opts.label, true);
}

async function watch(opts: LoadOptions): Promise<LoadResult> {
  const target = `${WATCH_DIR}/key`;
  const [writer, ...watchers] = await openAll(opts, opts.watchConns + 1);
  if (!opts.noPrepare) {
    const r = await bulk([writer!], 1, () => write(target, 'start'), 1);
    if (r.errors > 0) throw new Error(`preparing watch: ${r.first}`);
  }
  const rec = new Recorder();
  const load = new WatchLoad(rec, opts.watches);
  await load.setUp(target, watchers, writer!);
  await measure(
    rec,
    opts,
    () => load.start(),
    () => load.stop(),
  );
  writer!.close();
  for (const c of watchers) c.close();
  return rec.result('watch', opts.label, false);
}

/** Writes `nodes` keys of the store-size series (16-byte values); reports writes per second. */
async function fill(opts: LoadOptions): Promise<LoadResult> {
  const conns = await openAll(opts, 4);
  const rec = new Recorder();
  rec.open();
  const r = await bulk(conns, opts.nodes, (i) => write(scaleKey(i), value16(i)), 64);
  rec.close();
  rec.ops = opts.nodes;
  rec.errors = r.errors;
  if (r.first !== undefined) rec.firstError = r.first;
  for (const c of conns) c.close();
  return rec.result('fill', opts.label, false);
}
