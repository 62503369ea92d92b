/**
 * `--data-dir`: what survives a restart, a `kill -9` and a damaged file. Every test runs the real
 * built daemon (`startDaemon`) on a data directory that outlives each process.
 */
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import type { Wire } from '../helpers/wire.js';

const dirs: string[] = [];
const daemons: RunningDaemon[] = [];

afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'nxs-data-'));
  dirs.push(d);
  return d;
}

async function start(dir: string, ...args: string[]): Promise<RunningDaemon> {
  const d = await startDaemon({ args: ['--data-dir', dir, ...args] });
  daemons.push(d);
  return d;
}

/** SIGKILL: no shutdown code runs, no final snapshot; only what the log holds survives. */
async function crash(d: RunningDaemon): Promise<void> {
  process.kill(d.pid, 'SIGKILL');
  const r = await d.stop();
  expect(r.signal).toBe('SIGKILL');
}

/** The daemon writes its log a moment after ready (server/logger.ts): lines are polled for. */
const LOGGED = { timeout: 5000 };

async function waitFor(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

/** The last log segment holding records (segments are named by their first generation). */
function lastSegment(dir: string): string {
  const segs = readdirSync(dir)
    .filter((n) => n.startsWith('wal-') && statSync(join(dir, n)).size > 0)
    .sort();
  return join(dir, segs[segs.length - 1]!);
}

describe('persistence (--data-dir)', () => {
  it('brings back values (any byte), permissions and the generation after a clean restart', async () => {
    const dir = dataDir();
    let d = await start(dir);
    let c = await d.connect();
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await c.write('/local/domain/7/data', bytes);
    await c.setPerms('/local/domain/7', ['n7', 'r0']);
    await c.write('/tool/x', 'y');
    await c.rm('/tool/x');
    await c.setPerms('@releaseDomain', ['n0', 'r7']);
    const stats = await c.control('stats');
    await d.stop();

    d = await start(dir);
    c = await d.connect();
    expect(Buffer.from(await c.read('/local/domain/7/data'), 'latin1')).toEqual(bytes);
    expect(await c.getPerms('/local/domain/7')).toEqual(['n7', 'r0']);
    expect(await c.getPerms('/local/domain/7/data')).toEqual(['n0']);
    expect(await c.getPerms('@releaseDomain')).toEqual(['n0', 'r7']);
    await expect(c.read('/tool/x')).rejects.toThrow(/ENOENT/);
    const generation = /generation \d+/.exec(stats)![0];
    expect(await c.control('stats')).toContain(generation);
    expect(await c.control('check')).toBe('OK');
  });

  it('after kill -9 at random moments under load, every acknowledged write is there and no transaction is half-applied', async () => {
    const dir = dataDir();
    const acked = new Map<string, string>();
    const txAttempted: string[] = [];
    const ROUNDS = 10;
    const CLIENTS = 4;
    for (let round = 0; round <= ROUNDS; round++) {
      const d = await start(dir);
      const check = await d.connect();
      // Everything acknowledged before any earlier crash is there, with its value.
      for (const [path, value] of acked) expect(await check.read(path), path).toBe(value);
      for (const t of txAttempted) {
        const present = await Promise.all(['a', 'b', 'c'].map((k) => check.read(`${t}/${k}`).then(() => 1, () => 0)));
        expect([0, 3], `${t} half-applied: ${present.join('')}`).toContain(present.reduce((x: number, y) => x + y, 0));
      }
      expect(await check.control('check')).toBe('OK');
      if (round === ROUNDS) break;

      const clients = await Promise.all(Array.from({ length: CLIENTS }, () => d.connect()));
      let stop = false;
      const load = clients.map(async (c: Wire, k: number) => {
        for (let seq = 0; !stop; seq++) {
          try {
            if (seq % 4 === 3) {
              const base = `/r${round}/c${k}/tx${seq}`;
              txAttempted.push(base);
              const tx = await c.txStart();
              for (const key of ['a', 'b', 'c']) await c.write(`${base}/${key}`, `${seq}`, tx);
              const r = await c.txEnd(tx, true);
              if (r === 'OK|') for (const key of ['a', 'b', 'c']) acked.set(`${base}/${key}`, `${seq}`);
            } else {
              const path = `/r${round}/c${k}/n${seq}`;
              await c.write(path, `v${round}.${seq}`);
              acked.set(path, `v${round}.${seq}`);
            }
          } catch {
            return; // the daemon died under us: this request was not acknowledged
          }
        }
      });
      await new Promise((r) => setTimeout(r, 30 + Math.random() * 250));
      await crash(d);
      stop = true;
      await Promise.all(load);
    }
    // The test means something only if writes and transactions were acknowledged before crashes.
    expect(acked.size).toBeGreaterThan(ROUNDS * CLIENTS);
    expect([...acked.keys()].some((p) => p.includes('/tx'))).toBe(true);
  });

  it('drops a torn or corrupt tail record with a warning and keeps everything before it', async () => {
    const dir = dataDir();
    let d = await start(dir);
    let c = await d.connect();
    for (let i = 0; i < 10; i++) await c.write(`/t/${i}`, `v${i}`);
    await crash(d);

    // A record header announcing more bytes than follow: a write cut short by the crash.
    const seg = lastSegment(dir);
    const torn = Buffer.alloc(12);
    torn.writeUInt32LE(500, 0);
    appendFileSync(seg, torn);
    d = await start(dir);
    c = await d.connect();
    for (let i = 0; i < 10; i++) expect(await c.read(`/t/${i}`)).toBe(`v${i}`);
    await expect.poll(() => d.output(), LOGGED).toMatch(/dropped the tail \(12 bytes\) as a torn write/);
    await c.write('/t/after', 'x');
    await crash(d);

    // A last record whose bytes were damaged: its checksum no longer matches.
    const seg2 = lastSegment(dir);
    const bytes = readFileSync(seg2);
    bytes[bytes.length - 2] ^= 0xff;
    writeFileSync(seg2, bytes);
    d = await start(dir);
    c = await d.connect();
    await expect.poll(() => d.output(), LOGGED).toMatch(/checksum mismatch/);
    await expect(c.read('/t/after')).rejects.toThrow(/ENOENT/); // the damaged record itself
    for (let i = 0; i < 10; i++) expect(await c.read(`/t/${i}`)).toBe(`v${i}`);
    expect(await c.control('check')).toBe('OK');
  });

  it('replays the log on top of a snapshot, and falls back to the previous snapshot when the newest is damaged', async () => {
    const dir = dataDir();
    let d = await start(dir);
    let c = await d.connect();
    await c.write('/s/before-first', '1');
    process.kill(d.pid, 'SIGHUP'); // reload = snapshot + log truncation
    await waitFor('first snapshot', () => d.output().includes('snapshot written'));
    await c.write('/s/between', '2');
    process.kill(d.pid, 'SIGHUP');
    await waitFor('second snapshot', () => d.output().split('snapshot written').length === 3);
    await c.write('/s/after-second', '3');
    await crash(d);
    expect(readdirSync(dir)).toEqual(expect.arrayContaining(['snapshot', 'snapshot.prev']));

    // snapshot + the log after it
    d = await start(dir);
    c = await d.connect();
    await expect.poll(() => d.output(), LOGGED).toMatch(/store recovered .*from=snapshot .*replayed=1/);
    for (const [p, v] of [['/s/before-first', '1'], ['/s/between', '2'], ['/s/after-second', '3']]) {
      expect(await c.read(p!)).toBe(v);
    }
    await crash(d);

    // A damaged newest snapshot: the previous one plus the (kept) log give the same store.
    const snap = readFileSync(join(dir, 'snapshot'));
    snap[snap.length >> 1] ^= 0x01;
    writeFileSync(join(dir, 'snapshot'), snap);
    d = await start(dir);
    c = await d.connect();
    await expect.poll(() => d.output(), LOGGED).toMatch(/from=snapshot\.prev/);
    expect(d.output()).toMatch(/snapshot: corrupt snapshot: checksum mismatch/);
    for (const [p, v] of [['/s/before-first', '1'], ['/s/between', '2'], ['/s/after-second', '3']]) {
      expect(await c.read(p!)).toBe(v);
    }
    expect(await c.control('check')).toBe('OK');
  });

  it('refuses to start, naming the file, when a record in the middle of the log is damaged', async () => {
    const dir = dataDir();
    let d = await start(dir);
    const c = await d.connect();
    await c.write('/m/1', 'a');
    await d.stop(); // clean stop: final snapshot, then a new segment on the next start
    d = await start(dir);
    await (await d.connect()).write('/m/2', 'b');
    await crash(d);
    // Damage the first record of the log while a later segment still holds records.
    rmSync(join(dir, 'snapshot'));
    const first = readdirSync(dir).filter((n) => n.startsWith('wal-')).sort()[0]!;
    const bytes = readFileSync(join(dir, first));
    bytes[9] ^= 0xff;
    writeFileSync(join(dir, first), bytes);
    await expect(start(dir)).rejects.toThrow(new RegExp(`${first}: checksum mismatch.*refusing to start`));
  });
});
