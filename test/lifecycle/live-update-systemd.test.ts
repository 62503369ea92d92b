/**
 * Live update under systemd's notification protocol (NotifyAccess=main): the old process names
 * the new one `MAINPID=` before it exits, and the new one, now main, says `READY=1` itself.
 * A datagram socket bound as NOTIFY_SOCKET stands in for the manager.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/poll.js';

const dir = mkdtempSync(join(tmpdir(), 'nxs-lu-notify-'));
let d: RunningDaemon | undefined;
let close = () => {};

afterAll(async () => {
  await d?.stop();
  close();
  rmSync(dir, { recursive: true, force: true });
});

describe('live update and sd_notify', () => {
  it('sends MAINPID=<new pid>, then the new process sends READY=1', async () => {
    const require = createRequire(import.meta.url);
    const unix = require('unix-dgram') as {
      createSocket(type: 'unix_dgram', fn: (b: Buffer) => void): { bind(p: string): void; close(): void };
    };
    const messages: string[] = [];
    const server = unix.createSocket('unix_dgram', (b) => messages.push(b.toString()));
    const notifyPath = join(dir, 'notify');
    server.bind(notifyPath);
    close = () => server.close();

    // startDaemon passes our environment on.
    process.env['NOTIFY_SOCKET'] = notifyPath;
    try {
      d = await startDaemon();
    } finally {
      delete process.env['NOTIFY_SOCKET'];
    }
    await eventually(() => messages.length, (n) => n >= 1);
    expect(messages[0]).toContain(`MAINPID=${d.pid}`);
    expect(messages[0]).toContain('READY=1');

    const c = await d.connect();
    expect(await c.control('live-update', '-s')).toBe('OK');
    const pid = d.currentPid();
    expect(pid).not.toBe(d.pid);
    await eventually(() => messages.length, (n) => n >= 3);
    expect(messages.slice(1)).toEqual([`MAINPID=${pid}`, expect.stringMatching(new RegExp(`^READY=1\\n.*\\nMAINPID=${pid}$`, 's'))]);
  });
});
