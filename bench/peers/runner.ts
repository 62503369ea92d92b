import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LoadResult } from '../loadgen/result.js';
import { REPO } from './daemons.js';

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
): Promise<LoadResult | { load: string; label: string; failed: string }> {
  try {
    const { stdout } = await run(process.execPath, [LOADGEN, '--socket', socket, '--load', load, '--label', label, ...args], {
      maxBuffer: 1 << 20,
      timeout: 300_000,
    });
    return JSON.parse(stdout.trim().split('\n').pop()!) as LoadResult;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    return { load, label, failed: (err.stderr || err.message).trim().split('\n')[0]! };
  }
}
