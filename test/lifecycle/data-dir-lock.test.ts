/**
 * One daemon per data directory (server/persistence/data-dir-lock.ts): a second daemon on the same
 * `--data-dir` refuses to start and names the first, which serves on untouched; after a clean
 * stop or a `kill -9` the directory can be used again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startDaemon } from '../helpers/daemon.js';

const data = mkdtempSync(join(tmpdir(), 'nxs-lockdir-'));
afterAll(() => rmSync(data, { recursive: true, force: true }));

describe('--data-dir lock', () => {
  it('refuses a second daemon on the same directory; frees it on a clean stop and after kill -9', async () => {
    const first = await startDaemon({ args: ['--data-dir', data] });
    const c = await first.connect();
    await c.write('/kept', 'by the first');

    const second = startDaemon({ args: ['--data-dir', data] });
    await expect(second).rejects.toThrow(new RegExp(`in use by process ${first.pid}`));
    expect(await c.read('/kept')).toBe('by the first'); // the first serves on
    c.close();
    expect((await first.stop()).code).toBe(0);

    const third = await startDaemon({ args: ['--data-dir', data] });
    const c3 = await third.connect();
    expect(await c3.read('/kept')).toBe('by the first');
    c3.close();
    process.kill(third.pid, 'SIGKILL'); // leaves its lock behind, naming a dead pid
    await third.stop();

    const fourth = await startDaemon({ args: ['--data-dir', data] });
    const c4 = await fourth.connect();
    expect(await c4.read('/kept')).toBe('by the first');
    c4.close();
    await fourth.stop();
  });
});
