#!/usr/bin/env node
/**
 * The wire load generator, in its own process so it never shares a CPU queue with the daemon it
 * measures:
 *
 *     node dist/bench/loadgen/main.js --socket /tmp/refd-o/socket --load read [--duration 5]
 *
 * Loads: read, write, mixed (70/20/10 read/write/directory), tx (2 reads + 2 writes in the
 * client's own subtree), vm (VM start transactions), vm-dir (the same, listing dom0's backend
 * directory), watch (fan-out), fill (writes --nodes keys of the store-size series), scale-read and
 * scale-write (random keys of those). Prints one JSON line (`LoadResult`) on stdout.
 */
import { parseArgs } from 'node:util';
import { LOAD_NAMES, runLoad, type LoadName } from './loads.js';

const { values } = parseArgs({
  options: {
    socket: { type: 'string' },
    load: { type: 'string' },
    label: { type: 'string', default: '' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '8' },
    depth: { type: 'string', default: '16' },
    clients: { type: 'string', default: '16' },
    nodes: { type: 'string', default: '1000' },
    watches: { type: 'string', default: '1000' },
    'watch-conns': { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
    'no-prepare': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

const usage = `usage: main.js --socket PATH --load (${LOAD_NAMES.join('|')}) [--label L] [--duration S] [--warmup S]
  [--connections 8] [--depth 16] [--clients 16] [--nodes 1000] [--watches 1000] [--watch-conns 20] [--seed 1] [--no-prepare]\n`;

function num(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) {
    process.stderr.write(`loadgen: --${name} must be a number ≥ ${min}\n${usage}`);
    process.exit(2);
  }
  return n;
}

if (values.help) {
  process.stdout.write(usage);
  process.exit(0);
}
if (values.socket === undefined || !LOAD_NAMES.includes(values.load as LoadName)) {
  process.stderr.write(usage);
  process.exit(2);
}

try {
  const result = await runLoad(values.load as LoadName, {
    socket: values.socket,
    label: values.label!,
    duration: num('duration', values.duration, 0.1),
    warmup: num('warmup', values.warmup, 0),
    connections: num('connections', values.connections, 1),
    depth: num('depth', values.depth, 1),
    clients: num('clients', values.clients, 1),
    nodes: num('nodes', values.nodes, 1),
    watches: num('watches', values.watches, 1),
    watchConns: num('watch-conns', values['watch-conns'], 1),
    seed: num('seed', values.seed, 0),
    noPrepare: values['no-prepare']!,
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} catch (e) {
  process.stderr.write(`loadgen: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
