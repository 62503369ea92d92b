/**
 * `nxs live-update` (what `xenstore-control live-update` does) against the real daemon.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type NxsIo } from '../../clients/nxs.js';
import { DAEMON_JS, startDaemon, type RunningDaemon } from '../helpers/daemon.js';

let d: RunningDaemon;

beforeAll(async () => {
  d = await startDaemon();
});

afterAll(async () => {
  await d?.stop();
});

async function nxs(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: NxsIo = {
    stdout: { write: (c: string | Uint8Array) => (stdout += Buffer.from(c).toString()) },
    stderr: { write: (c: string) => (stderr += c) },
    env: { XENSTORED_RUNDIR: d.rundir },
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

describe('nxs live-update', () => {
  it('restarts the running program, or FILE with CMDLINE, and prints OK', async () => {
    const first = d.currentPid();
    expect(await nxs(['write', '/nxs-lu', 'kept'])).toMatchObject({ code: 0 });
    expect(await nxs(['live-update'])).toEqual({ code: 0, stdout: 'OK\n', stderr: '' });
    expect(d.currentPid()).not.toBe(first);
    const second = d.currentPid();
    expect(await nxs(['live-update', '-f', DAEMON_JS, `--cmdline=--rundir ${d.rundir}`, '-t', '5'])).toEqual({
      code: 0,
      stdout: 'OK\n',
      stderr: '',
    });
    expect(d.currentPid()).not.toBe(second);
    expect(await nxs(['read', '/nxs-lu'])).toEqual({ code: 0, stdout: 'kept\n', stderr: '' });
  });

  it('fails with the daemon\'s reason (exit 1), and leaves no session behind', async () => {
    expect(await nxs(['live-update', '-f', '/nonexistent.js'])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'nxs: live update failed: File not accessible.\n',
    });
    const c = await d.connect();
    const tx = await c.txStart();
    const r = await nxs(['live-update', '-f', DAEMON_JS, '-t', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^nxs: live update failed: Open transactions/);
    expect(await c.control('live-update', '-a')).toBe('No live-update session active.');
    const before = d.currentPid();
    expect(await nxs(['live-update', '-t', '1', '-F'])).toMatchObject({ code: 0, stdout: 'OK\n' });
    expect(d.currentPid()).not.toBe(before);
    expect(await c.txEnd(tx, true)).toBe('EAGAIN');
  });

  it('checks its own arguments', async () => {
    expect(await nxs(['live-update', '-c', 'x'])).toMatchObject({ code: 2 });
    expect(await nxs(['live-update', '-t', 'soon'])).toMatchObject({ code: 2 });
    expect(await nxs(['live-update', 'extra'])).toMatchObject({ code: 2 });
  });
});
