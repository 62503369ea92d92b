/**
 * Live update's pre-copy (issue 16): the next process loads the version being served while the
 * old one serves on, then the pause passes only what changed since. What must hold while the two
 * processes overlap: writes acknowledged during the pre-copy are in the next process's store;
 * `kill -9` of the old process during the pre-copy loses nothing acknowledged (the next process,
 * holding an older version, exits instead of serving, and a restart recovers the data
 * directory); a next process that dies during the pre-copy leaves the old one serving.
 * A store of 10⁵ nodes makes the pre-copy last long enough to act in it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Map as ImmMap } from 'immutable';
import { afterEach, describe, expect, it } from 'vitest';
import { writeSnapshotFileSync } from '../../server/persistence/index.js';
import { DOM0_ONLY, XsNode, encodeSnapshot, fromRoot } from '../../store/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/poll.js';

const NODES = 100_000;
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function bigDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nxs-precopy-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const kids: [string, XsNode][] = [];
  for (let i = 0; i < NODES; i++) kids.push([`k${i}`, XsNode.leaf(`value ${i}`, DOM0_ONLY)]);
  const root = new XsNode('', DOM0_ONLY, ImmMap([['big', new XsNode('', DOM0_ONLY, ImmMap(kids))]]));
  writeSnapshotFileSync(dir, encodeSnapshot(fromRoot(root, 7)));
  return dir;
}

async function started(args: string[]): Promise<RunningDaemon> {
  const d = await startDaemon({ args });
  cleanup.push(() => d.stop());
  return d;
}

/** The next process's pid, from the old process's log line once it has spawned it. */
async function spawnedPid(d: RunningDaemon): Promise<number> {
  const out = await eventually(() => d.output(), (o) => /new process spawned \(pre-copy\) next=\d+/.test(o));
  const m = /new process spawned \(pre-copy\) next=(\d+)/.exec(out);
  if (m === null) throw new Error(`no pre-copy spawn in the log:\n${out}`);
  return Number(m[1]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('live update pre-copy', () => {
  it('carries the writes acknowledged during the pre-copy over to the next process', async () => {
    const d = await started(['--data-dir', bigDataDir()]);
    const control = await d.connect();
    const w = await d.connect();
    const update = control.control('live-update', '-s');
    await spawnedPid(d);
    const written: string[] = [];
    for (let i = 0; !d.output().includes('the new process holds the pre-copied version') && i < 10_000; i++) {
      await w.write(`/during/k${i}`, `v${i}`);
      written.push(`k${i}`);
    }
    expect(written.length).toBeGreaterThan(0);
    expect(await update).toBe('OK');
    const next = await eventually(() => d.currentPid(), (p) => p !== d.pid);
    expect(next).not.toBe(d.pid);
    for (const k of written) expect(await w.read(`/during/${k}`)).toBe(`v${k.slice(1)}`);
    expect(await w.read(`/big/k${NODES - 1}`)).toBe(`value ${NODES - 1}`);
    expect(await control.control('check')).toBe('OK');
  });

  it('loses nothing acknowledged when the old process is killed (-9) during the pre-copy', async () => {
    const data = bigDataDir();
    const d = await started(['--data-dir', data]);
    const control = await d.connect();
    const w = await d.connect();
    void control.control('live-update', '-s').catch(() => undefined);
    const child = await spawnedPid(d);
    const written: string[] = [];
    for (let i = 0; i < 20; i++) {
      await w.write(`/during/k${i}`, `v${i}`);
      written.push(`k${i}`);
    }
    // Still the pre-copy (or at the latest the pause): the old process has not handed over.
    expect(d.output()).not.toContain('the new process serves');
    process.kill(d.pid, 'SIGKILL');
    // The next process holds an older version than what was acknowledged: it must not serve.
    await eventually(() => alive(child), (a) => !a);
    expect(alive(child)).toBe(false);
    expect(d.output()).toContain('went away during the pre-copy');
    await d.stop();

    const e = await started(['--data-dir', data]);
    const c = await e.connect();
    for (const k of written) expect(await c.read(`/during/${k}`)).toBe(`v${k.slice(1)}`);
    expect(await c.read('/big/k0')).toBe('value 0');
    expect(await c.control('check')).toBe('OK');
  });

  it('serves on when the next process dies during the pre-copy, and a later update goes through', async () => {
    const d = await started(['--data-dir', bigDataDir()]);
    const control = await d.connect();
    const w = await d.connect();
    const update = control.control('live-update', '-s');
    const child = await spawnedPid(d);
    process.kill(child, 'SIGKILL');
    expect(await update).toMatch(/the new process failed: exited/);
    expect(d.currentPid()).toBe(d.pid);
    await w.write('/after/failed', 'yes');
    expect(await w.read('/after/failed')).toBe('yes');
    // The old process took the data directory's lock back: a second update hands it on.
    expect(await control.control('live-update', '-s')).toBe('OK');
    const next = await eventually(() => d.currentPid(), (p) => p !== d.pid);
    expect(next).not.toBe(d.pid);
    expect(await w.read('/after/failed')).toBe('yes');
  });
});
