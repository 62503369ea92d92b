/**
 * Store engine benchmark (`npm run bench:store`): operations per second of the pure store — read,
 * write, directory, transaction commit on each of its paths — on trees of 10^3, 10^5 and 10^6
 * nodes, the heap each node costs, and how a commit's cost grows with the size of its change.
 *
 * The target (from the issue): per-operation cost flat in store size (within 2x from 10^3 to 10^6
 * nodes), and a commit whose cost grows with what it changed, not with the tree.
 *
 * Every rate is reported twice: per CPU-second of this process (the main table: steadier on a
 * shared machine) and per wall-clock second. A warm-up pass over all rows on the smallest tree runs
 * first and is discarded; a calibration row (the same reads on one fixed small tree, at every size)
 * shows whether the machine's speed drifted during the run.
 *
 * Options (all optional): --sizes=1000,100000,1000000  --rounds=5  --min-ms=200  --min-ops=10000
 * --warmup-ms=150  --only=REGEX (rows to run, for profiling)  --no-k (skip the change-size table)
 * --json=FILE (also write the JSON lines to FILE; they always go to stdout).
 *
 * Profiling one row: `node --expose-gc --cpu-prof dist/bench/store-bench.js --sizes=1000000
 * --only='^read$' --no-k`. The progress lines go to stderr, the report to stdout.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { dirname } from 'node:path';
import { Map as ImmMap } from 'immutable';
import {
  DEFAULT_LIMITS,
  DOM0,
  DOM0_ONLY,
  Transaction,
  XsNode,
  advance,
  commit,
  execute,
  forgetDomain,
  fromRoot,
  subtreeSize,
  type CommitResult,
  type PermEntry,
  type Perms,
  type Store,
  type StoreRequest,
} from '../store/index.js';
import { Metric, fmt, markdownTable, median, runContext } from './metric.js';

// ---------------------------------------------------------------------------------------------
// Options

function option(name: string, fallback: string): string {
  const a = process.argv.find((x) => x === `--${name}` || x.startsWith(`--${name}=`));
  if (a === undefined) return fallback;
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : 'true';
}

const SIZES = option('sizes', '1000,100000,1000000').split(',').map(Number);
const ROUNDS = Number(option('rounds', '5'));
const MIN_MS = Number(option('min-ms', '200'));
const MIN_OPS = Number(option('min-ops', '10000'));
const WARMUP_MS = Number(option('warmup-ms', '150'));
const ONLY = new RegExp(option('only', '.'));
const K_TABLE = option('no-k', 'false') !== 'true';
const JSON_OUT = option('json', '');

const LIMITS = DEFAULT_LIMITS;
const gc: () => void = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const hasGc = (globalThis as { gc?: () => void }).gc !== undefined;
/** A scavenge only (V8's `gc({ type: 'minor' })`): promotes what survives, costs what survives. */
const minorGc: () => void = hasGc ? () => (globalThis as unknown as { gc: (o: object) => void }).gc({ type: 'minor' }) : () => undefined;
const now = process.hrtime.bigint;
const loadavg = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');

/** Results are kept here (and folded into `checksum`) so that no measured call is dead code. */
let sink: unknown;
let checksum = 0;

// ---------------------------------------------------------------------------------------------
// Deterministic randomness (mulberry32), so every run draws the same keys.

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// The tree: a realistic xenstore layout, the same for every domain, so paths have the same length
// at every store size and only the number of domains grows. Per domain (libxl's layout):
//   /local/domain/<d>                     120 nodes: name, domid, vm, memory/*, control/*, data,
//     device/vbd/<dev>/{state,backend,...}  4 disks x 10 keys, device/vif/<n>/... 4 nics x 9 keys,
//     device/vkbd/0/..., console/..., store/...
//   /vm/<uuid>                              5 nodes: name, uuid, image, start_time
// plus /, /local, /local/domain, /vm, /tool, /tool/xenstored. 125 nodes per domain: 10^3 nodes are
// 8 domains, 10^5 are 800, 10^6 are 8 000. The domain's directory is dom0's with read for the
// guest ("n0,r<d>"), everything below it belongs to the guest ("n<d>"), as libxl creates them, so
// the quota table has one entry per domain.

type Spec = string | { readonly [name: string]: Spec };

const NODES_PER_DOMAIN = 125;
const FIXED_NODES = 6;
const VBDS = ['51712', '51728', '51744', '51760'];
const VIFS = ['0', '1', '2', '3'];

const hex2 = (n: number) => (n & 255).toString(16).padStart(2, '0');
const uuid = (d: number) => `4f1c9a2e-7b3d-4c1e-9a5f-${d.toString(16).padStart(12, '0')}`;

function domainSpec(d: number): Spec {
  const backend = (kind: string, dev: string) => `/local/domain/0/backend/${kind}/${d}/${dev}`;
  const vbd = (dev: string, i: number): Spec => ({
    state: '4',
    backend: backend('vbd', dev),
    'backend-id': '0',
    'virtual-device': dev,
    'device-type': 'disk',
    'ring-ref': String(8 + i),
    'event-channel': String(20 + i),
    protocol: 'x86_64-abi',
    'feature-persistent': '1',
    'multi-queue-num-queues': '2',
  });
  const vif = (dev: string, i: number): Spec => ({
    state: '4',
    backend: backend('vif', dev),
    'backend-id': '0',
    handle: dev,
    mac: `00:16:3e:${hex2(d >> 8)}:${hex2(d)}:${hex2(i)}`,
    'tx-ring-ref': String(768 + 2 * i),
    'rx-ring-ref': String(769 + 2 * i),
    'event-channel': String(30 + i),
    'request-rx-copy': '1',
  });
  return {
    name: `guest-${d}`,
    domid: String(d),
    vm: `/vm/${uuid(d)}`,
    memory: { target: '1048576', 'static-max': '1048576', videoram: '-1' },
    control: {
      shutdown: '',
      'feature-poweroff': '1',
      'feature-reboot': '1',
      'feature-suspend': '1',
      'feature-s3': '0',
      'platform-feature-multiprocessor-suspend': '1',
    },
    data: '',
    device: {
      vbd: Object.fromEntries(VBDS.map((dev, i) => [dev, vbd(dev, i)])),
      vif: Object.fromEntries(VIFS.map((dev, i) => [dev, vif(dev, i)])),
      vkbd: {
        '0': {
          state: '4',
          backend: backend('vkbd', '0'),
          'backend-id': '0',
          'page-ref': '1234',
          'page-gref': '9',
          'event-channel': '40',
        },
      },
    },
    console: { 'ring-ref': '1233', port: '2', limit: '1048576', type: 'xenconsoled', tty: '/dev/pts/3' },
    store: { 'ring-ref': '1232', port: '1' },
  };
}

function vmSpec(d: number): Spec {
  return { name: `guest-${d}`, uuid: uuid(d), image: '(linux (kernel /boot/vmlinuz))', start_time: '1700000000.42' };
}

/**
 * A string as the server holds it: flat, as decoded from the wire (`latin1`). Template literals of
 * 13 characters or more are V8 cons-strings (ropes), which would cost the tree ~13 B per node more
 * than the real thing.
 */
const flat = (v: string) => (v.length < 13 ? v : Buffer.from(v, 'latin1').toString('latin1'));

function buildNode(spec: Spec, perms: Perms, top: Perms = perms): XsNode {
  if (typeof spec === 'string') return XsNode.leaf(flat(spec), perms);
  const entries: [string, XsNode][] = Object.entries(spec).map(([k, v]) => [k, buildNode(v, perms)]);
  return new XsNode('', top, ImmMap(entries));
}

const entry = (access: PermEntry['access'], domid: number): PermEntry => Object.freeze({ access, domid });

function buildStore(domains: number): Store {
  const local = ImmMap<string, XsNode>().withMutations((m) => {
    for (let d = 1; d <= domains; d++) {
      const guestOwned: Perms = Object.freeze([entry('n', d)]);
      const dom0ReadByGuest: Perms = Object.freeze([entry('n', 0), entry('r', d)]);
      m.set(String(d), buildNode(domainSpec(d), guestOwned, dom0ReadByGuest));
    }
  });
  const vm = ImmMap<string, XsNode>().withMutations((m) => {
    for (let d = 1; d <= domains; d++) {
      const dom0ReadByGuest: Perms = Object.freeze([entry('n', 0), entry('r', d)]);
      m.set(flat(uuid(d)), buildNode(vmSpec(d), dom0ReadByGuest));
    }
  });
  const dir = (children: ImmMap<string, XsNode>) => new XsNode('', DOM0_ONLY, children);
  const root = dir(
    ImmMap([
      ['local', dir(ImmMap([['domain', dir(local)]]))],
      ['vm', dir(vm)],
      ['tool', dir(ImmMap([['xenstored', XsNode.leaf('', DOM0_ONLY)]]))],
    ]),
  );
  return fromRoot(root);
}

/** Relative paths of the leaves of a spec (`device/vbd/51712/state`, ...). */
function leaves(spec: Spec, prefix = ''): string[] {
  if (typeof spec === 'string') return [prefix];
  return Object.entries(spec).flatMap(([k, v]) => leaves(v, prefix === '' ? k : `${prefix}/${k}`));
}

const DOMAIN_LEAVES = leaves(domainSpec(1)); // 102
const VM_LEAVES = leaves(vmSpec(1)); // 4
const VBD_LEAVES = leaves(domainSpec(1)).filter((p) => p.startsWith(`device/vbd/${VBDS[0]}/`)).map((p) => p.split('/')[3]!);

// ---------------------------------------------------------------------------------------------
// Measurement: warm up, then ROUNDS rounds, each of at least MIN_MS of timed work and MIN_OPS
// operations (or a wall-clock cap); the figure is the median round. Every timed section is measured
// twice: wall clock, and the CPU time of this process (user + system, all threads, so GC helper
// threads count). On a shared, loaded machine the wall clock also counts the time other processes
// held the CPU; the CPU-time rate does not, which makes it the steadier figure to compare sizes.

interface Step {
  readonly ops: number;
  readonly wallNs: number;
  readonly cpuNs: number;
}

interface Mark {
  readonly wall: bigint;
  readonly cpu: NodeJS.CpuUsage;
}

function start(): Mark {
  return { cpu: process.cpuUsage(), wall: now() };
}

function stop(m: Mark, ops: number): Step {
  const wallNs = Number(now() - m.wall);
  const c = process.cpuUsage(m.cpu);
  return { ops, wallNs, cpuNs: (c.user + c.system) * 1000 };
}

interface Plan {
  readonly minMs: number;
  readonly minOps: number;
  readonly warmupMs: number;
  readonly rounds: number;
  /** Wall-clock cap per round, preparation included, to bound the run time. */
  readonly capMs: number;
}

const PLAN: Plan = { minMs: MIN_MS, minOps: MIN_OPS, warmupMs: WARMUP_MS, rounds: ROUNDS, capMs: 3000 };

interface Rates {
  /** ops/s, median of the rounds. */
  readonly rate: number;
  readonly samples: number[];
}

interface Measured {
  readonly cpu: Rates;
  readonly wall: Rates;
  readonly capped: boolean;
}

/**
 * True during the warm-up pass: one quick pass over every row on the smallest tree, results thrown
 * away, so that the first size measured does not also pay for the JIT's tiering (on a loaded
 * 2-core machine the optimizing compiler's thread lags, and the first rows came out ~40% low).
 */
let discarding = false;

function measure(step: () => Step, full: Plan = PLAN): Measured {
  const plan: Plan = discarding ? { ...full, rounds: 1, minMs: Math.min(full.minMs, 30), minOps: 1 } : full;
  gc();
  const warmEnd = Date.now() + plan.warmupMs;
  do step();
  while (Date.now() < warmEnd);
  const cpu: number[] = [];
  const wall: number[] = [];
  let capped = false;
  for (let r = 0; r < plan.rounds; r++) {
    let ops = 0;
    let wallNs = 0;
    let cpuNs = 0;
    const cap = Date.now() + plan.capMs;
    while (wallNs < plan.minMs * 1e6 || ops < plan.minOps) {
      if (ops > 0 && Date.now() > cap) {
        capped = true;
        break;
      }
      const s = step();
      ops += s.ops;
      wallNs += s.wallNs;
      cpuNs += s.cpuNs;
    }
    wall.push((ops / wallNs) * 1e9);
    cpu.push((ops / Math.max(cpuNs, 1000)) * 1e9);
  }
  return { cpu: { rate: median(cpu), samples: cpu }, wall: { rate: median(wall), samples: wall }, capped };
}

const CHUNK = 2000;
const KEYS = 1 << 16;
const MASK = KEYS - 1;

// ---------------------------------------------------------------------------------------------
// Results

interface Row {
  readonly name: string;
  readonly unit: string;
}

/** clock -> row name -> column -> metric; `cpu` holds the single-valued rows (heap, build) too. */
const results = { cpu: new Map<string, Map<string, Metric>>(), wall: new Map<string, Map<string, Metric>>() };
const units = new Map<string, string>();

function put(clock: 'cpu' | 'wall', row: Row, column: string, value: number, samples: readonly number[], note = ''): void {
  if (discarding) return;
  units.set(row.name, row.unit);
  let byColumn = results[clock].get(row.name);
  if (byColumn === undefined) results[clock].set(row.name, (byColumn = new Map()));
  byColumn.set(column, new Metric(`${row.name}${clock === 'wall' ? ' [wall]' : ''}`, column, row.unit, value, samples, note));
}

const spreadOf = (samples: readonly number[], value: number) =>
  samples.length > 1 ? `±${Math.round(((Math.max(...samples) - Math.min(...samples)) / value) * 50)}%` : '';

/** A single figure (heap, build time): one column, no wall/cpu distinction. */
function recordValue(row: Row, column: string, value: number): void {
  put('cpu', row, column, value, [value]);
  if (!discarding) console.error(`  ${row.name.padEnd(50)} ${fmt(value).padStart(11)} ${row.unit}`);
}

/** A rate (ops/s), or with `perOp` a cost in µs per operation. */
function recordRate(row: Row, column: string, m: Measured, note = '', perOp = false): void {
  const conv = (x: number) => (perOp ? 1e6 / x : x);
  const fix = (r: Rates) => ({ value: conv(r.rate), samples: r.samples.map(conv) });
  const c = fix(m.cpu);
  const w = fix(m.wall);
  // A capped round (too few ops within capMs, preparation included) is only shown in the progress
  // line: for commits it is expected, their batches cost more to prepare than to commit.
  const n = note;
  put('cpu', row, column, c.value, c.samples, n);
  put('wall', row, column, w.value, w.samples, n);
  if (!discarding) console.error(
    `  ${row.name.padEnd(50)} ${column.padEnd(6)} cpu ${fmt(c.value).padStart(10)} ${spreadOf(c.samples, c.value).padEnd(5)}` +
      ` wall ${fmt(w.value).padStart(10)} ${spreadOf(w.samples, w.value).padEnd(5)} ${row.unit}${n ? `  [${n}]` : ''}${m.capped ? ' (capped)' : ''}`,
  );
}

/** Tallies the commit paths taken; the note names any that is not the expected one. */
function pathNote(tally: Map<string, number>, expected: string): string {
  const total = [...tally.values()].reduce((a, b) => a + b, 0);
  const wrong = [...tally].filter(([k]) => k !== expected);
  if (wrong.length === 0 && total > 0) return '';
  return `WARN ${wrong.map(([k, n]) => `${k} ${n}/${total}`).join(', ')}`;
}

function kindOf(r: CommitResult): string {
  return r.kind === 'committed' ? r.path : r.kind;
}

const PATHS = ['read-only', 'fast', 'merge', 'replay', 'conflict', 'failed'] as const;

function pathIndex(r: CommitResult): number {
  if (r.kind !== 'committed') return r.kind === 'conflict' ? 4 : 5;
  return r.path === 'read-only' ? 0 : r.path === 'fast' ? 1 : r.path === 'merge' ? 2 : 3;
}

/**
 * Times commits only: `prepare` builds a batch of transactions and the live version to commit them
 * against (untimed); each is committed against that same live version, so every commit takes the
 * same path and the live tree keeps its size. The tally checks the path each one took.
 */
function commitStep(
  prepare: () => { live: Store; txs: Transaction[] },
  tally: Map<string, number>,
  prepTime?: { cpuNs: number; txs: number },
): () => Step {
  return () => {
    const p = start();
    const { live, txs } = prepare();
    if (prepTime !== undefined) {
      prepTime.cpuNs += stop(p, 0).cpuNs;
      prepTime.txs += txs.length;
    }
    // Promote the batch out of the young generation now, so that the scavenges the timed loop
    // triggers do not copy thousands of prepared transactions (a cost no server would pay).
    minorGc();
    minorGc();
    const paths = new Int32Array(PATHS.length);
    let last: CommitResult | undefined;
    const t = start();
    for (let i = 0; i < txs.length; i++) {
      last = commit(live, txs[i]!);
      paths[pathIndex(last)]!++;
    }
    const step = stop(t, txs.length);
    PATHS.forEach((k, i) => {
      if (paths[i]! > 0) tally.set(k, (tally.get(k) ?? 0) + paths[i]!);
    });
    sink = last;
    return step;
  };
}

function writeReq(path: string, value: string): StoreRequest {
  return { op: 'write', path, value };
}

// ---------------------------------------------------------------------------------------------
// One tree size: the operations table.

function benchSize(size: number): void {
  const domains = Math.max(2, Math.round((size - FIXED_NODES) / NODES_PER_DOMAIN));
  const nodes = domains * NODES_PER_DOMAIN + FIXED_NODES;
  const col = String(size);
  if (!discarding) console.error(`\n== ${size} nodes requested: ${domains} domains, ${nodes} nodes (load average ${loadavg()})`);

  // --- build + heap per node. Small trees are built in copies (kept alive together) until they
  // hold >= 10^5 nodes, so that the heap delta is not lost in the allocator's page granularity.
  const copies = Math.max(1, Math.ceil(100_000 / nodes));
  gc();
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const b = start();
  const built: Store[] = [];
  for (let i = 0; i < copies; i++) built.push(buildStore(domains));
  const buildMs = stop(b, 0).wallNs / 1e6 / copies;
  gc();
  gc();
  const heap1 = process.memoryUsage().heapUsed;
  const base = built[0]!;
  built.length = 1;
  const counted = subtreeSize(base.root);
  if (counted !== nodes) throw new Error(`built ${counted} nodes, expected ${nodes}`);
  recordValue({ name: 'heap per node', unit: 'B/node' }, col, (heap1 - heap0) / (nodes * copies));
  recordValue({ name: 'heap, whole tree', unit: 'MiB' }, col, (heap1 - heap0) / copies / 2 ** 20);
  recordValue({ name: 'build (bulk, fromRoot)', unit: 'ms' }, col, buildMs);

  // --- calibration: the same reads on the same small tree (built once, at start) at every size.
  // If this row moves between columns, the machine's speed changed during the run (a shared host):
  // read the other rows' ratios against it.
  if (calibration !== undefined && ONLY.test('calibration')) {
    const cal = calibration;
    let j = 0;
    const m = measure(() => {
      const t = start();
      let acc = 0;
      for (let i = 0; i < CHUNK; i++) {
        const out = execute(cal.store, DOM0, LIMITS, cal.reqs[j++ & MASK]!);
        if (out.reply.kind === 'value') acc += out.reply.value.length;
      }
      checksum += acc;
      return stop(t, CHUNK);
    });
    recordRate({ name: 'calibration: read on one fixed 10^3 tree', unit: 'ops/s' }, col, m);
  }

  const r = rng(0x5eed + size);
  const dom = () => 1 + Math.floor(r() * domains);
  const domOtherThan1 = () => 2 + Math.floor(r() * (domains - 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const anyLeaf = (d: number) => {
    const i = Math.floor(r() * (DOMAIN_LEAVES.length + VM_LEAVES.length));
    return i < DOMAIN_LEAVES.length
      ? `/local/domain/${d}/${DOMAIN_LEAVES[i]}`
      : `/vm/${uuid(d)}/${VM_LEAVES[i - DOMAIN_LEAVES.length]}`;
  };
  const VALUES = Array.from({ length: 1024 }, (_, i) => `v${i}`);
  const rate = (name: string): Row => ({ name, unit: 'ops/s' });
  const run = (name: string, fn: () => void) => {
    if (ONLY.test(name)) fn();
  };

  // --- read: a random leaf of a random domain (3 to 7 components), values kept
  const readLoop = (reqs: StoreRequest[]) => {
    let j = 0;
    return measure(() => {
      const t = start();
      let acc = 0;
      for (let i = 0; i < CHUNK; i++) {
        const out = execute(base, DOM0, LIMITS, reqs[j++ & MASK]!);
        if (out.reply.kind === 'value') acc += out.reply.value.length;
      }
      const step = stop(t, CHUNK);
      checksum += acc;
      return step;
    });
  };
  run('read', () => {
    const reqs: StoreRequest[] = Array.from({ length: KEYS }, () => ({ op: 'read', path: anyLeaf(dom()) }));
    recordRate(rate('read'), col, readLoop(reqs));
  });

  // --- the same reads confined to 8 domains (10^3 nodes' worth): what the tree's size costs when
  // the working set stays in the CPU caches, against the row above, where it does not.
  run('read hot', () => {
    const reqs: StoreRequest[] = Array.from({ length: KEYS }, () => ({ op: 'read', path: anyLeaf(1 + Math.floor(r() * Math.min(8, domains))) }));
    recordRate(rate('read, 8 hot domains (cache-resident)'), col, readLoop(reqs));
  });

  // --- directory: a device directory of 10 children, names sorted
  run('directory', () => {
    const reqs: StoreRequest[] = Array.from({ length: KEYS }, () => ({
      op: 'directory',
      path: `/local/domain/${dom()}/device/vbd/${pick(VBDS)}`,
    }));
    let j = 0;
    const m = measure(() => {
      const t = start();
      let acc = 0;
      for (let i = 0; i < CHUNK; i++) {
        const out = execute(base, DOM0, LIMITS, reqs[j++ & MASK]!);
        if (out.reply.kind === 'names') acc += out.reply.names.length;
      }
      const step = stop(t, CHUNK);
      checksum += acc;
      return step;
    });
    recordRate(rate('directory (10 children)'), col, m);
  });

  // --- write: execute + advance, chained, over existing leaves. Two passes of values, alternated:
  // within a pass every request has its own value, so every write changes its leaf.
  run('write', () => {
    const paths = Array.from({ length: KEYS }, () => anyLeaf(dom()));
    const reqsA = paths.map((p, i) => writeReq(p, `a${i}`));
    const reqsB = paths.map((p, i) => writeReq(p, `b${i}`));
    let j = 0;
    let live = base;
    let noops = 0;
    let writes = 0;
    const m = measure(() => {
      const t = start();
      for (let i = 0; i < CHUNK; i++, j++) {
        const req = (j & KEYS ? reqsB : reqsA)[j & MASK]!;
        const next = advance(execute(live, DOM0, LIMITS, req).store, live);
        if (next === live) noops++;
        live = next;
      }
      writes += CHUNK;
      return stop(t, CHUNK);
    });
    sink = live;
    const note = noops > writes / 100 ? `WARN ${noops}/${writes} writes changed nothing` : '';
    recordRate(rate('write (existing leaf; execute+advance)'), col, m, note);
  });

  // --- create: a new leaf under an existing directory. Each create applies to the same base, so
  // the directory does not grow during the run (a chained loop would time a directory of 10^5
  // children at every size).
  run('create', () => {
    const reqs = Array.from({ length: KEYS }, (_, i) => writeReq(`/local/domain/${dom()}/data/key-${i}`, 'x'));
    let j = 0;
    let bad = 0;
    const m = measure(() => {
      const t = start();
      for (let i = 0; i < CHUNK; i++) {
        const next = advance(execute(base, DOM0, LIMITS, reqs[j++ & MASK]!).store, base);
        if (next.generation !== base.generation + 1) bad++;
        sink = next;
      }
      return stop(t, CHUNK);
    });
    recordRate(rate('create (new leaf; execute+advance)'), col, m, bad ? `WARN ${bad} no-op` : '');
  });

  // --- commits of 1-write transactions, timed at commit only; one batch of BATCH per round
  const BATCH = 2000;
  const commitPlan: Plan = { ...PLAN, minMs: Math.min(MIN_MS, 100), minOps: BATCH, capMs: 1500 };
  const batchOf = (fill: (tx: Transaction) => void): Transaction[] => {
    const txs: Transaction[] = [];
    for (let i = 0; i < BATCH; i++) {
      const tx = new Transaction(base, DOM0, LIMITS);
      fill(tx);
      txs.push(tx);
    }
    return txs;
  };
  /** `base` plus one committed write: "another commit happened since the transactions started". */
  const after = (path: string, value: string) => advance(execute(base, DOM0, LIMITS, writeReq(path, value)).store, base);

  run('commit fast', () => {
    const tally = new Map<string, number>();
    const step = commitStep(() => ({ live: base, txs: batchOf((tx) => tx.execute(writeReq(anyLeaf(dom()), pick(VALUES)))) }), tally);
    recordRate(rate('commit fast (1 write, live === base)'), col, measure(step, commitPlan), pathNote(tally, 'fast'));
  });

  run('commit merge', () => {
    const tally = new Map<string, number>();
    const step = commitStep(
      () => ({
        live: after('/local/domain/1/control/shutdown', 'reboot'), // disjoint: domain 1
        txs: batchOf((tx) => tx.execute(writeReq(anyLeaf(domOtherThan1()), pick(VALUES)))),
      }),
      tally,
    );
    recordRate(rate('commit merge (1 write, disjoint commit between)'), col, measure(step, commitPlan), pathNote(tally, 'merge'));
  });

  run('commit merge 2 subtrees', () => {
    const tally = new Map<string, number>();
    const step = commitStep(
      () => ({
        live: after(`/vm/${uuid(1)}/name`, 'renamed'),
        txs: batchOf((tx) => {
          // /local/domain/A/... and /vm/A/...: two subtrees, merged field by field (was: replay).
          const a = domOtherThan1();
          tx.execute(writeReq(`/local/domain/${a}/device/vbd/${pick(VBDS)}/state`, pick(VALUES)));
          tx.execute(writeReq(`/vm/${uuid(a)}/name`, pick(VALUES)));
        }),
      }),
      tally,
    );
    recordRate(rate('commit merge (2 writes, two subtrees)'), col, measure(step, commitPlan), pathNote(tally, 'merge'));
  });

  run('commit merge create', () => {
    const tally = new Map<string, number>();
    let n = 0;
    const step = commitStep(
      () => ({
        // The commit between also created a node: both sides changed the quota table.
        live: after('/local/domain/1/data/other', 'y'),
        txs: batchOf((tx) => tx.execute(writeReq(`/local/domain/${domOtherThan1()}/data/tx-${n++}`, 'x'))),
      }),
      tally,
    );
    recordRate(rate('commit merge (1 create, create between)'), col, measure(step, commitPlan), pathNote(tally, 'merge'));
  });

  // --- the whole cycle a client sees: start, one write, commit, chained on the live version
  run('tx cycle', () => {
    const paths = Array.from({ length: KEYS }, () => anyLeaf(dom()));
    const reqsA = paths.map((p, i) => writeReq(p, `a${i}`));
    const reqsB = paths.map((p, i) => writeReq(p, `b${i}`));
    const tally = new Map<string, number>();
    let live = base;
    let j = 0;
    const m = measure(() => {
      const t = start();
      for (let i = 0; i < CHUNK; i++, j++) {
        const tx = new Transaction(live, DOM0, LIMITS);
        tx.execute((j & KEYS ? reqsB : reqsA)[j & MASK]!);
        const res = commit(live, tx);
        if (res.kind === 'committed') live = res.store;
        tally.set(kindOf(res), (tally.get(kindOf(res)) ?? 0) + 1);
      }
      return stop(t, CHUNK);
    });
    sink = live;
    recordRate(rate('transaction: start+write+commit (chained)'), col, m, pathNote(tally, 'fast'));
  });

  // --- releasing a domain (forgetDomain): the walk for every node naming the domain (XSA-322),
  // pruned by the subtree domain summaries (node.ts); measured so that its cost at 10^6 is on record.
  run('forget domain', () => {
    const m = measure(
      () => {
        const t = start();
        sink = forgetDomain(base, domOtherThan1());
        return stop(t, 1);
      },
      { minMs: 50, minOps: 2, warmupMs: 0, rounds: 3, capMs: 3000 },
    );
    const ms = (x: Rates): Rates => ({ rate: 1e3 / x.rate, samples: x.samples.map((y) => 1e3 / y) });
    const c = ms(m.cpu);
    const w = ms(m.wall);
    put('cpu', { name: 'release a domain (forgetDomain)', unit: 'ms/op' }, col, c.rate, c.samples);
    put('wall', { name: 'release a domain (forgetDomain)', unit: 'ms/op' }, col, w.rate, w.samples);
    if (!discarding) console.error(`  ${'release a domain (forgetDomain)'.padEnd(50)} ${col.padEnd(6)} cpu ${fmt(c.rate).padStart(10)} ms/op  wall ${fmt(w.rate)} ms/op`);
  });

  if (K_TABLE && !discarding && size === Math.max(...SIZES)) changeSizeTable(base, domains, size, r);
  sink = base;
}

// ---------------------------------------------------------------------------------------------
// Commit cost against the size of the change, on the largest tree: transactions of k = 1, 10, 100
// writes to existing leaves of one domain (k = 1: one leaf; 10: the 10 keys of one disk; 100: 100
// of the domain's 102 leaves). µs per commit; the "start + k writes" row is the cost of building
// the transaction (CPU time), for scale.

const K_ROWS = 'k';

/** The fixed small tree and requests of the calibration row. */
let calibration: { store: Store; reqs: StoreRequest[] } | undefined;

function makeCalibration(): { store: Store; reqs: StoreRequest[] } {
  const r = rng(0xca1);
  const reqs: StoreRequest[] = Array.from({ length: KEYS }, () => {
    const d = 1 + Math.floor(r() * 8);
    return { op: 'read', path: `/local/domain/${d}/${DOMAIN_LEAVES[Math.floor(r() * DOMAIN_LEAVES.length)]}` };
  });
  return { store: buildStore(8), reqs };
}

function changeSizeTable(base: Store, domains: number, size: number, r: () => number): void {
  console.error(`\n== commit cost against the size of the change, ${size} nodes (load average ${loadavg()})`);
  const VALUES = Array.from({ length: 1024 }, (_, i) => `w${i}`);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const domOtherThan1 = () => 2 + Math.floor(r() * (domains - 1));
  const writesOf = (k: number, d: number): StoreRequest[] => {
    if (k === 1) return [writeReq(`/local/domain/${d}/${pick(DOMAIN_LEAVES)}`, pick(VALUES))];
    if (k === 10) {
      const dev = pick(VBDS);
      return VBD_LEAVES.map((l) => writeReq(`/local/domain/${d}/device/vbd/${dev}/${l}`, pick(VALUES)));
    }
    return DOMAIN_LEAVES.slice(0, k).map((l) => writeReq(`/local/domain/${d}/${l}`, pick(VALUES)));
  };
  const us = (name: string): Row => ({ name: `${K_ROWS}:${name}`, unit: 'µs' });
  for (const k of [1, 10, 100]) {
    const batch = k === 1 ? 2000 : k === 10 ? 400 : 100;
    // Preparing the transactions (k writes each) is the slow part: one batch per round.
    const plan: Plan = { ...PLAN, minMs: 20, minOps: batch, warmupMs: 100, capMs: 1500 };
    let firsts: string[] = [];
    const makeTxs = () => {
      const txs: Transaction[] = [];
      firsts = [];
      for (let i = 0; i < batch; i++) {
        const tx = new Transaction(base, DOM0, LIMITS);
        const reqs = writesOf(k, domOtherThan1());
        for (const req of reqs) tx.execute(req);
        txs.push(tx);
        firsts.push(reqs[0]!.path);
      }
      return txs;
    };
    const column = `k=${k}`;

    const prep = { cpuNs: 0, txs: 0 };
    let tally = new Map<string, number>();
    let m = measure(commitStep(() => ({ live: base, txs: makeTxs() }), tally, prep), plan);
    recordValue(us('start + k writes (building the tx)'), column, prep.cpuNs / prep.txs / 1e3);
    recordRate(us('commit fast'), column, m, pathNote(tally, 'fast'), true);

    tally = new Map();
    m = measure(
      commitStep(() => {
        const txs = makeTxs();
        const live = advance(execute(base, DOM0, LIMITS, writeReq('/local/domain/1/control/shutdown', 'reboot')).store, base);
        return { live, txs };
      }, tally),
      plan,
    );
    recordRate(us('commit merge'), column, m, pathNote(tally, 'merge'), true);

    tally = new Map();
    m = measure(
      commitStep(() => {
        const txs = makeTxs();
        // Concurrent commits changed the permissions of the first node of every transaction,
        // which its write observed: the merge declines and the log is replayed (dom0 may still
        // write there, so the replies are identical and it commits).
        let live = base;
        const perms: StoreRequest = { op: 'set-perms', path: '', perms: ['n0', 'r1'] };
        for (const first of firsts) live = advance(execute(live, DOM0, LIMITS, { ...perms, path: first }).store, live);
        return { live, txs };
      }, tally),
      plan,
    );
    recordRate(us('commit replay'), column, m, pathNote(tally, 'replay'), true);
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function label(size: number): string {
  const e = Math.log10(size);
  return Number.isInteger(e) ? `10^${e}` : String(size);
}

const noteOf = (ms: Iterable<Metric>) => [...new Set([...ms].map((m) => m.note).filter((n) => n !== ''))].join('; ');

function sizeTable(byRow: Map<string, Map<string, Metric>>, only: (name: string) => boolean): string {
  const first = String(SIZES[0]);
  const last = String(SIZES[SIZES.length - 1]);
  const head = ['operation', 'unit', ...SIZES.map(label), `${label(Number(last))}/${label(Number(first))}`, 'check'];
  const rows: string[][] = [];
  for (const [name, byCol] of byRow) {
    if (name.startsWith(`${K_ROWS}:`) || !only(name)) continue;
    const a = byCol.get(first)?.value;
    const b = byCol.get(last)?.value;
    const note = noteOf(byCol.values());
    rows.push([
      name,
      units.get(name)!,
      ...SIZES.map((s) => {
        const v = byCol.get(String(s))?.value;
        return v === undefined ? '—' : fmt(v);
      }),
      a !== undefined && b !== undefined && a !== 0 ? (b / a).toFixed(2) : '—',
      note !== '' ? note : /^(commit|transaction)/.test(name) ? 'path ok' : '',
    ]);
  }
  return markdownTable(head, rows);
}

function kTable(byRow: Map<string, Map<string, Metric>>): string {
  const rows: string[][] = [];
  for (const [name, byCol] of byRow) {
    if (!name.startsWith(`${K_ROWS}:`)) continue;
    const short = name.slice(K_ROWS.length + 1);
    const a = byCol.get('k=1')?.value;
    const b = byCol.get('k=100')?.value;
    const note = noteOf(byCol.values());
    rows.push([
      short,
      ...['k=1', 'k=10', 'k=100'].map((k) => {
        const v = byCol.get(k)?.value;
        return v === undefined ? '—' : fmt(v);
      }),
      a && b ? (b / a).toFixed(1) : '—',
      note !== '' ? note : short.startsWith('commit') ? 'path ok' : '',
    ]);
  }
  return markdownTable(['µs per transaction', 'k=1', 'k=10', 'k=100', 'k=100/k=1', 'check'], rows);
}

function main(): void {
  const ctx = runContext();
  console.log(
    [
      `# nxenstored store benchmark`,
      `date:    ${ctx.date}`,
      `node:    ${ctx.node} (V8 ${ctx.v8})`,
      `cpu:     ${ctx.cpu} x ${ctx.cores}, ${ctx.memoryGiB} GiB, ${ctx.platform}`,
      `command: ${ctx.command}`,
      `load:    ${loadavg()} (1, 5, 15 min) at start`,
      `plan:    ${ROUNDS} rounds of >= ${MIN_MS} ms and >= ${MIN_OPS} ops after ${WARMUP_MS} ms warm-up (commits: one batch per round); median round`,
    ].join('\n'),
  );
  if (!hasGc) console.log('WARNING: global.gc is not exposed (run with --expose-gc): heap figures are unreliable');
  const t0 = Date.now();

  // A throwaway build first, so that the first heap figure does not include compiled code and
  // inline caches of the builder.
  calibration = makeCalibration();
  const w0 = Date.now();
  discarding = true;
  benchSize(Math.min(...SIZES, 1000));
  discarding = false;
  console.error(`(warm-up pass on the smallest tree: ${((Date.now() - w0) / 1000).toFixed(1)} s, results discarded)`);
  for (const size of SIZES) benchSize(size);
  const loadEnd = loadavg();
  console.error(`\nload average at the end: ${loadEnd}`);

  const isRate = (name: string) => units.get(name) === 'ops/s' || units.get(name) === 'ms/op';
  console.log(`load:    ${loadEnd} at the end; run took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  console.log('\n## Store operations by tree size (ops per CPU-second; median of rounds)\n');
  console.log(sizeTable(results.cpu, () => true));
  console.log('\n(ratio column: figure at the largest size over the smallest; for ops/s below 1 is slower, target >= 0.5)');
  console.log('\n## The same, wall-clock ops/s\n');
  console.log(sizeTable(results.wall, isRate));
  if ([...results.cpu.keys()].some((n) => n.startsWith(`${K_ROWS}:`))) {
    console.log(`\n## Commit cost against the size of the change, ${label(Math.max(...SIZES))} nodes (CPU µs per commit)\n`);
    console.log(kTable(results.cpu));
    console.log('\n(wall-clock)\n');
    console.log(kTable(results.wall));
  }

  const lines = [...results.cpu.values(), ...results.wall.values()]
    .flatMap((m) => [...m.values()])
    .map((m) => JSON.stringify(m.toJSON(ctx)));
  console.log('\n## JSON lines\n');
  console.log(lines.join('\n'));
  if (JSON_OUT !== '') {
    mkdirSync(dirname(JSON_OUT), { recursive: true });
    writeFileSync(JSON_OUT, `${lines.join('\n')}\n`);
  }
  console.log(`\nchecksum ${checksum}${sink === undefined ? '' : ''}`);
}

main();
