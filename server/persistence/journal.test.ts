import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { advance, DEFAULT_LIMITS, DOM0, execute, type Store } from '../../store/index.js';
import { Journal, recover, type SyncMode } from './journal.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'nxs-journal-'));
  dirs.push(d);
  return d;
}

const write = (s: Store, path: string, value: string): Store =>
  advance(execute(s, DOM0, DEFAULT_LIMITS, { op: 'write', path, value }).store, s);

async function opened(d: string, sync: SyncMode, snapshotEvery?: number): Promise<{ j: Journal; s: Store }> {
  const s = recover(d).store;
  return { j: await Journal.open({ dir: d, sync, log, snapshotEvery }, s), s };
}

describe('Journal', () => {
  it('holds output until the commit is synced, and syncs a whole tick of commits at once (group commit)', async () => {
    const d = dir();
    let { j, s } = await opened(d, 'always');
    expect(j.pending()).toBeUndefined();
    for (let i = 0; i < 50; i++) {
      const next = write(s, `/g/${i}`, `${i}`);
      j.record(s, next);
      s = next;
    }
    expect(j.pending()).toBe(s.generation);
    let released = false;
    j.after(s.generation, () => (released = true));
    expect(released).toBe(false);
    await j.idle();
    expect(released).toBe(true);
    expect(j.durable).toBe(s.generation);
    expect(j.pending()).toBeUndefined();
    expect(j.stats).toMatchObject({ records: 50, batches: 1, syncs: 1 });
    await j.close(s);
    expect(recover(d).store).toEqual(s);
  });

  it('never holds output with --sync none', async () => {
    const { j, s } = await opened(dir(), 'none');
    const next = write(s, '/n', 'x');
    j.record(s, next);
    expect(j.pending()).toBeUndefined();
    await j.close(next);
  });

  it('snapshots every N records, rotating the log and dropping segments older than the previous snapshot', async () => {
    const d = dir();
    let { j, s } = await opened(d, 'batch', 10);
    for (let i = 0; i < 35; i++) {
      const next = write(s, `/p/${i % 7}`, `${i}`);
      j.record(s, next);
      s = next;
      await j.idle(); // one batch per commit, so that snapshots fall between them
    }
    expect(j.stats.snapshots).toBe(3);
    const files = readdirSync(d).sort();
    expect(files).toContain('snapshot');
    expect(files).toContain('snapshot.prev');
    // Segments before the previous snapshot (generation 20) are gone; the newer ones stay.
    expect(files.filter((f) => f.startsWith('wal-'))).toEqual(['wal-0000000000000021', 'wal-0000000000000031']);
    const r = recover(d);
    expect(r.snapshot).toBe('snapshot');
    expect(r.store).toEqual(s);
    await j.close(s);
  });
});
