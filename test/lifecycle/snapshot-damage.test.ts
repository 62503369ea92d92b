/**
 * A snapshot damaged where a start does not read it (issue 16): a version 3 snapshot is opened
 * from its head, each block checked when first read, the rest in the background after the first
 * reply. Damage found then ends the daemon as damage found at start would have stopped it: the
 * file is set aside (`snapshot.damaged`), no write is acknowledged on top of it, and the next start
 * recovers from `snapshot.prev` and the log, with everything acknowledged before.
 */
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { frameRecord, segmentName, writeSnapshotFileSync } from '../../server/persistence/index.js';
import { DEFAULT_LIMITS, DOM0, advance, createStore, deltaOf, encodeDelta, encodeSnapshot, execute, type Store } from '../../store/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function started(data: string): Promise<RunningDaemon> {
  const d = await startDaemon({ args: ['--data-dir', data] });
  cleanup.push(() => d.stop());
  return d;
}

function write(s: Store, path: string, value: string): Store {
  return advance(execute(s, DOM0, DEFAULT_LIMITS, { op: 'write', path, value }).store, s);
}

/**
 * A data directory as a compaction leaves it: `snapshot.prev` at an earlier generation, the log
 * from there, and `snapshot` at the newest generation, with one byte of /b's block flipped.
 */
function damagedDataDir(): string {
  const data = mkdtempSync(join(tmpdir(), 'nxs-damage-'));
  cleanup.push(() => rmSync(data, { recursive: true, force: true }));
  let s = createStore();
  for (let i = 0; i < 200; i++) s = write(write(s, `/a/k${i}`, `a${i}`), `/b/k${i}`, `b${i}`);
  writeSnapshotFileSync(data, encodeSnapshot(s));
  const records: Buffer[] = [];
  const first = s.generation + 1;
  for (let i = 0; i < 50; i++) {
    const next = write(s, `/b/k${i}`, `b${i} rewritten`);
    records.push(frameRecord(encodeDelta(deltaOf(s, next))));
    s = next;
  }
  writeFileSync(join(data, segmentName(first)), Buffer.concat(records));
  const bytes = encodeSnapshot(s);
  const at = bytes.indexOf('b150');
  expect(at).toBeGreaterThan(bytes.readUInt32LE(24)); // past the head: found only when read
  bytes[at + 1] ^= 0x01;
  // The older snapshot becomes snapshot.prev, as writeSnapshotFile leaves it.
  renameSync(join(data, 'snapshot'), join(data, 'snapshot.prev'));
  writeFileSync(join(data, 'snapshot'), bytes);
  return data;
}

async function exitOf(d: RunningDaemon): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  for (let i = 0; i < 400 && d.exited() === undefined; i++) await new Promise((r) => setTimeout(r, 25));
  return d.exited() ?? { code: null, signal: null };
}

async function recoversEverything(data: string): Promise<void> {
  expect(existsSync(join(data, 'snapshot.damaged'))).toBe(true);
  const d = await started(data);
  const c = await d.connect();
  for (const i of [0, 49]) expect(await c.read(`/b/k${i}`)).toBe(`b${i} rewritten`);
  for (const i of [50, 150, 199]) expect(await c.read(`/b/k${i}`)).toBe(`b${i}`);
  expect(await c.read('/a/k150')).toBe('a150');
  expect(await c.control('check')).toBe('OK');
  // Logged at start, written a moment after ready (server/logger.ts).
  await expect.poll(() => d.output(), { timeout: 5000 }).toMatch(/snapshot\.prev|from":"snapshot\.prev/);
}

describe('a snapshot damaged past its head', () => {
  it('serves reads, holds write acknowledgements, and exits when the background check finds the damage; the next start has every acknowledged write', async () => {
    const data = damagedDataDir();
    const d = await started(data);
    const c = await d.connect();
    expect(await c.read('/a/k1')).toBe('a1'); // /'s and /a's blocks: not the damaged one (/b's)
    let acked = false;
    void c.write('/c', 'not acknowledged').then(
      () => (acked = true),
      () => undefined,
    );
    const exit = await exitOf(d);
    expect(exit.code).toBe(1);
    expect(acked).toBe(false);
    expect(d.output()).toMatch(/snapshot damaged/);
    expect(existsSync(join(data, 'snapshot'))).toBe(false);
    await recoversEverything(data);
  });

  it('exits when a request is the first to read the damaged block, without answering it', async () => {
    const data = damagedDataDir();
    const d = await started(data);
    const c = await d.connect();
    let answered = false;
    void c.read('/b/k3').then(
      () => (answered = true),
      () => undefined,
    );
    const exit = await exitOf(d);
    expect(exit.code).toBe(1);
    expect(answered).toBe(false);
    expect(d.output()).toMatch(/snapshot damaged/);
    await recoversEverything(data);
  });
});
