import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LoadResult } from '../loadgen/result.js';
import { cpuOf, REPO } from './daemons.js';

const run = promisify(execFile);
const LOADGEN = join(REPO, 'dist', 'bench', 'loadgen', 'main.js');

/**
 * `runLoadgen(socket, load, label, args)` runs the load generator in its own process against one
 * socket and returns its result line. A failed run is reported, not thrown, so one daemon's
 * trouble does not lose the others' figures.
 */
export async function runLoadgen(
  socket: string,
  load: string,
  label: string,
  args: readonly string[],
  pid?: number,
): Promise<(LoadResult & { cpuUsPerOp?: number }) | { load: string; label: string; failed: string }> {
  try {
    const cpu0 = pid === undefined ? 0 : cpuOf(pid);
    const { stdout } = await run(process.execPath, [LOADGEN, '--socket', socket, '--load', load, '--label', label, ...args], {
      maxBuffer: 1 << 20,
      timeout: 300_000,
    });
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as LoadResult;
    if (pid === undefined || r.ops === 0) return r;
    // The daemon's CPU over the whole run (warm-up and preparation included) per measured op:
    // steadier than throughput on a shared machine, and comparable between daemons.
    const wall = Number(args[args.indexOf('--duration') + 1] ?? 0) + Number(args[args.indexOf('--warmup') + 1] ?? 0);
    const opsInRun = wall > 0 ? (r.ops / r.seconds) * wall : r.ops;
    return { ...r, cpuUsPerOp: Math.round(((cpuOf(pid) - cpu0) * 1e6 * 10) / opsInRun) / 10 };
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    return { load, label, failed: (err.stderr || err.message).trim().split('\n')[0]! };
  }
}
