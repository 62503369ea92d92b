/**
 * Xen's own `xenstore-control live-update` (xen-utils 4.17, see test/helpers/xen-tools.ts) drives
 * our live update: `-f FILE`, then `-s -t TIMEOUT [-F]`, expecting `OK`; exit 3 and the daemon's
 * reason on stderr otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_JS, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { runTool } from '../helpers/xen-tools.js';

let d: RunningDaemon;

beforeAll(async () => {
  d = await startDaemon();
});

afterAll(async () => {
  await d?.stop();
});

describe('xenstore-control live-update', () => {
  it('updates: exit 0, a new process, the store kept', async () => {
    const c = await d.connect();
    await c.write('/xc/kept', 'yes');
    const before = d.currentPid();
    const r = await runTool('xenstore-control', ['live-update', DAEMON_JS], d.socket);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(d.currentPid()).not.toBe(before);
    expect(await c.read('/xc/kept')).toBe('yes');
  });

  it('reports an open transaction after -t, and forces with -F', async () => {
    const c = await d.connect();
    const tx = await c.txStart();
    const refused = await runTool('xenstore-control', ['live-update', '-t', '1', DAEMON_JS], d.socket);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/^Starting live update failed:\nOpen transactions/);
    const before = d.currentPid();
    const forced = await runTool('xenstore-control', ['live-update', '-t', '1', '-F', DAEMON_JS], d.socket);
    expect(forced.code).toBe(0);
    expect(d.currentPid()).not.toBe(before);
    expect(await c.txEnd(tx, true)).toBe('EAGAIN');
  });
});
