/**
 * `kill -9` during a start (issue 16): a daemon killed while it loads a data directory of 10⁵
 * nodes (reading the snapshot, replaying the log, opening the next log segment) must leave that
 * directory as it found it, so that every write acknowledged before, by an earlier process, is
 * still there for the next start. Nothing is acknowledged during the load itself (no socket
 * accepts before it ends), so the one way to lose data here is a start that damages the files.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Map as ImmMap } from 'immutable';
import { afterEach, describe, expect, it } from 'vitest';
import { writeSnapshotFileSync } from '../../server/persistence/index.js';
import { DOM0_ONLY, XsNode, encodeSnapshot, fromRoot } from '../../store/index.js';
import { DAEMON_JS, REPO, startDaemon, type RunningDaemon } from '../helpers/daemon.js';

const NODES = 100_000;
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function tmp(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function started(data: string): Promise<RunningDaemon> {
  const d = await startDaemon({ args: ['--data-dir', data] });
  cleanup.push(() => d.stop());
  return d;
}

/**
 * Starts the daemon on `data`, kills it (-9) `afterMs` later and says whether it was still
 * loading then: its socket is created only once the store is loaded.
 */
async function killDuringStart(data: string, afterMs: number): Promise<{ loading: boolean; output: string }> {
  const rundir = tmp('nxs-startkill-');
  const child = spawn(process.execPath, [DAEMON_JS, '--rundir', rundir, '--data-dir', data], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  cleanup.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await new Promise((r) => setTimeout(r, afterMs));
  const loading = !existsSync(join(rundir, 'socket'));
  child.kill('SIGKILL');
  await exited;
  return { loading, output };
}

describe('kill -9 during a start', () => {
  it('leaves the data directory whole at every moment of loading 10⁵ nodes and replaying the log', async () => {
    const data = tmp('nxs-startkill-data-');
    const kids: [string, XsNode][] = [];
    for (let i = 0; i < NODES; i++) kids.push([`k${i}`, XsNode.leaf(`value ${i}`, DOM0_ONLY)]);
    const root = new XsNode('', DOM0_ONLY, ImmMap([['big', new XsNode('', DOM0_ONLY, ImmMap(kids))]]));
    writeSnapshotFileSync(data, encodeSnapshot(fromRoot(root, 11)));

    // Acknowledged writes on top of the snapshot, so that a start replays a log too; then a crash.
    const t0 = Date.now();
    const first = await started(data);
    // How long a start took here, to spread the kills over one (a busy machine stretches it).
    const startMs = Math.max(300, Date.now() - t0);
    const c = await first.connect();
    const written: string[] = [];
    for (let i = 0; i < 300; i++) {
      await c.write(`/acked/k${i}`, `v${i}`);
      written.push(`k${i}`);
    }
    const tx = await c.txStart();
    await c.write('/acked/tx-a', 'a', tx);
    await c.write('/acked/tx-b', 'b', tx);
    expect(await c.txEnd(tx, true)).toBe('OK|');
    await c.rm(`/big/k${NODES - 1}`);
    process.kill(first.pid, 'SIGKILL');
    await first.stop();

    // From Node's own start-up to past the end of a load (a replay makes these starts longer).
    const moments = Array.from({ length: 10 }, (_, i) => Math.round((0.05 + 0.16 * i) * startMs));
    let duringLoad = 0;
    for (const ms of moments) {
      const k = await killDuringStart(data, ms);
      if (k.loading) duringLoad++;
    }
    // The kills must have hit the load, or this test would show nothing about it.
    expect(duringLoad).toBeGreaterThanOrEqual(3);

    const after = await started(data);
    const r = await after.connect();
    for (const k of written) expect(await r.read(`/acked/${k}`)).toBe(`v${k.slice(1)}`);
    expect(await r.read('/acked/tx-a')).toBe('a');
    expect(await r.read('/acked/tx-b')).toBe('b');
    expect(await r.read(`/big/k${NODES - 2}`)).toBe(`value ${NODES - 2}`);
    await expect(r.read(`/big/k${NODES - 1}`)).rejects.toThrow(/ENOENT/);
    expect(await r.control('check')).toBe('OK');
  });

  it('loses no acknowledged write when killed while the snapshot is read and checked in the background', async () => {
    const data = tmp('nxs-startkill-check-');
    const kids: [string, XsNode][] = [];
    for (let i = 0; i < NODES; i++) kids.push([`k${i}`, XsNode.leaf(`value ${i}`, DOM0_ONLY)]);
    const root = new XsNode('', DOM0_ONLY, ImmMap([['big', new XsNode('', DOM0_ONLY, ImmMap(kids))]]));
    writeSnapshotFileSync(data, encodeSnapshot(fromRoot(root, 11)));
    // Each round: a start, a first reply (which lets the check begin), writes sent back to back
    // while it runs, and a kill at a moment spread over the check and past it.
    const acked: [string, string][] = [];
    let beforeChecked = 0;
    for (let round = 0; round < 6; round++) {
      const d = await started(data);
      const c = await d.connect();
      expect(await c.read('/big/k7')).toBe('value 7');
      let stop = false;
      const writer = (async () => {
        for (let i = 0; !stop; i++) {
          const path = `/acked/r${round}/k${i}`;
          try {
            await c.write(path, `v${i}`);
          } catch {
            return;
          }
          if (!stop) acked.push([path, `v${i}`]);
        }
      })();
      await new Promise((r) => setTimeout(r, round * 40));
      if (!d.output().includes('snapshot checked')) beforeChecked++;
      stop = true;
      process.kill(d.pid, 'SIGKILL');
      await writer;
      await d.stop();
    }
    // Some kills must have come before the check ended, or this shows nothing about it.
    expect(beforeChecked).toBeGreaterThanOrEqual(1);
    const after = await started(data);
    const r = await after.connect();
    for (const [path, value] of acked) expect(await r.read(path)).toBe(value);
    expect(await r.read(`/big/k${NODES - 1}`)).toBe(`value ${NODES - 1}`);
    expect(await r.control('check')).toBe('OK');
  });
});
