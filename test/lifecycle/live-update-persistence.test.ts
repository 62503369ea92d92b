/**
 * Live update with persistence on (`--data-dir`): the new process takes the store from the
 * previous one and goes on writing the same data directory (a new log segment after the store's
 * generation), so a restart, clean or after kill -9, finds writes from before and after the update.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startDaemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/poll.js';

const dataDir = mkdtempSync(join(tmpdir(), 'nxs-lu-data-'));

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

describe('live update with --data-dir', () => {
  it('keeps writing the data directory: writes before and after the update survive a restart and a kill -9', async () => {
    const d = await startDaemon({ args: ['--data-dir', dataDir] });
    try {
      const c = await d.connect();
      await c.write('/p/before', 'one');
      expect(await c.control('live-update', '-s')).toBe('OK');
      const pid = await eventually(() => d.currentPid(), (p) => p !== d.pid);
      expect(pid).not.toBe(d.pid);
      await c.write('/p/after', 'two');
      // Acknowledged under --sync always: durable. Kill the new process without warning.
      process.kill(pid, 'SIGKILL');
    } finally {
      await d.stop();
    }

    const e = await startDaemon({ args: ['--data-dir', dataDir] });
    try {
      const c = await e.connect();
      expect(await c.read('/p/before')).toBe('one');
      expect(await c.read('/p/after')).toBe('two');
      await c.write('/p/third', 'three');
      expect(await c.control('live-update', '-s')).toBe('OK');
      await eventually(() => e.currentPid(), (p) => p !== e.pid);
      await c.write('/p/fourth', 'four');
    } finally {
      await e.stop(); // SIGTERM to the new process: a clean stop, with its final snapshot
    }

    const f = await startDaemon({ args: ['--data-dir', dataDir] });
    try {
      const c = await f.connect();
      for (const [k, v] of [['before', 'one'], ['after', 'two'], ['third', 'three'], ['fourth', 'four']]) {
        expect(await c.read(`/p/${k}`)).toBe(v);
      }
      expect(await c.control('check')).toBe('OK');
    } finally {
      await f.stop();
    }
  });
});
