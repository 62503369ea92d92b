/**
 * Issue 17 item 4, an attacker's trial: on a full disk nxenstored answered writes OK that it had
 * not written whole (writev's short count was ignored), then died on ENOSPC; after a restart those
 * writes were gone, and a restart on the still-full disk failed. Here the data directory lives on a
 * 2 MiB tmpfs of our own that the test fills; the real built daemon runs on it.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { fill, useTmpfs } from '../helpers/tmpfs.js';
import type { Wire } from '../helpers/wire.js';

const disk = useTmpfs('2m');
const daemons: RunningDaemon[] = [];

afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  rmSync(join(disk().dir, 'filler'), { force: true });
});

async function start(dir: string): Promise<RunningDaemon> {
  const d = await startDaemon({ args: ['--data-dir', dir] });
  daemons.push(d);
  return d;
}

async function crash(d: RunningDaemon): Promise<void> {
  process.kill(d.pid, 'SIGKILL');
  expect((await d.stop()).signal).toBe('SIGKILL');
}

/** Retries `write` until the daemon takes it (it probes the disk with backoff), for up to 5 s. */
async function writeOnceSpaceReturns(c: Wire, path: string, value: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      return await c.write(path, value);
    } catch (e) {
      if (!/ENOSPC/.test(String(e)) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Values larger than a page's tail, so that a full tmpfs cannot take one in the segment's last page. */
const value = (tag: string) => tag.padEnd(3000, '.');

describe('a full disk (issue 17 item 4)', () => {
  it('refuses writes with ENOSPC and never acknowledges them; reads go on; writes resume without a restart; a restart finds exactly the acknowledged writes', async () => {
    const data = join(disk().dir, 'data');
    let d = await start(data);
    const c = await d.connect();
    const acked = new Map<string, string>();
    const refused = new Set<string>();
    /** Writes `value(path)` and files the path as acknowledged or refused (ENOSPC, nothing else). */
    const attempt = (path: string): Promise<void> =>
      c.write(path, value(path)).then(
        () => void acked.set(path, value(path)),
        (e: unknown) => {
          expect(String(e)).toMatch(/ENOSPC/);
          refused.add(path);
        },
      );
    for (let i = 0; i < 10; i++) {
      await c.write(`/before/${i}`, value(`b${i}`));
      acked.set(`/before/${i}`, value(`b${i}`));
    }
    const tx = await c.txStart();
    await c.write('/tx/x', 'in a transaction', tx);

    fill(join(disk().dir, 'filler'));
    // Pipelined writes (many per batch: the short-write case), until the disk refuses some.
    for (let round = 0; refused.size === 0 && round < 20; round++) {
      await Promise.all(Array.from({ length: 8 }, (_, k) => attempt(`/full/${round}/${k}`)));
    }
    expect(refused.size).toBeGreaterThan(0);
    // A read pipelined behind a refused commit never shows its value. The commit's record (two
    // 3000-byte values) is larger than a page, so no tail of the log's last page can take it.
    const seen = await c.txStart();
    await c.write('/seen/a', value('a'), seen);
    await c.write('/seen/b', value('b'), seen);
    const [end, read] = await Promise.allSettled([c.txEnd(seen, true), c.read('/seen/a')]);
    expect(end).toMatchObject({ status: 'fulfilled', value: 'ENOSPC' });
    expect(read.status).toBe('rejected');
    refused.add('/seen/a').add('/seen/b');
    // A transaction open across the failure is abandoned (EAGAIN: its client retries it whole),
    // or its commit is refused; either way nothing of it is applied.
    expect(await c.txEnd(tx, true)).toMatch(/^(EAGAIN|ENOSPC)$/);
    // A client retrying as fast as it can: one write at most fits the tail of the log's last
    // page (and ends the outage); the rest are refused, with no log line each.
    for (let i = 0; i < 50; i++) await attempt(`/retry/${i}`);
    expect(refused.size).toBeGreaterThan(50);
    expect(d.output().split('write-ahead log write failed').length - 1).toBeLessThanOrEqual(2);

    // The daemon is up and serves reads, of what was acknowledged only.
    expect(d.exited()).toBeUndefined();
    for (const [path, v] of acked) expect(await c.read(path)).toBe(v);
    for (const path of refused) await expect(c.read(path)).rejects.toThrow(/ENOENT/);
    await expect(c.read('/tx/x')).rejects.toThrow(/ENOENT/);
    const other = await d.connect();
    expect(await other.read('/before/0')).toBe(value('b0'));

    // Space returns: the same process takes writes again.
    rmSync(join(disk().dir, 'filler'));
    await writeOnceSpaceReturns(c, '/resumed', 'yes');
    acked.set('/resumed', 'yes');
    for (let i = 0; i < 5; i++) {
      await c.write(`/after/${i}`, value(`a${i}`));
      acked.set(`/after/${i}`, value(`a${i}`));
    }
    expect(d.exited()).toBeUndefined();

    // A crash, and a restart: every acknowledged write, and nothing refused.
    await crash(d);
    d = await start(data);
    const c2 = await d.connect();
    for (const [path, v] of acked) expect(await c2.read(path)).toBe(v);
    for (const path of refused) await expect(c2.read(path)).rejects.toThrow(/ENOENT/);
    await expect(c2.read('/tx/x')).rejects.toThrow(/ENOENT/);
    expect(d.output()).not.toMatch(/dropped the tail/);
    expect(await c2.control('check')).toBe('OK');
  });

  it('starts on a full disk: serves reads, answers writes ENOSPC, and takes them once space returns', async () => {
    const data = join(disk().dir, 'start-full');
    let d = await start(data);
    let c = await d.connect();
    await c.write('/kept', value('kept'));
    await d.stop(); // a clean stop: it removes its lock file, so the next start must write a new one

    fill(join(disk().dir, 'filler'));
    d = await start(data);
    c = await d.connect();
    expect(await c.read('/kept')).toBe(value('kept'));
    await expect(c.write('/new', value('new'))).rejects.toThrow(/ENOSPC/);
    await expect(c.read('/new')).rejects.toThrow(/ENOENT/);
    expect(d.exited()).toBeUndefined();

    rmSync(join(disk().dir, 'filler'));
    await writeOnceSpaceReturns(c, '/new', value('new'));
    await crash(d);
    d = await start(data);
    c = await d.connect();
    expect(await c.read('/kept')).toBe(value('kept'));
    expect(await c.read('/new')).toBe(value('new'));
  });
});
