/**
 * Issue 15: a take-over from a Xen 4.22-style stream (version 2), which no binary here writes: the
 * records 4.17 lacks (GLOBAL_QUOTA, DOMAIN with features, WATCH_DATA_EXTENDED with a depth) are
 * written by our codec, and nxenstored is started with `-U` and a client connection at the
 * descriptor the stream names (as cxenstored's exec would leave it), with pending output and a
 * half-received request.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { encodeStream, type StateRecord } from '../../protocol/xen-state/index.js';
import { DAEMON_JS } from '../helpers/daemon.js';
import { header, Wire } from '../helpers/wire.js';

const rd = mkdtempSync(join(tmpdir(), 'nxs-xenv2-'));
let child: ChildProcess | undefined;

afterAll(() => {
  child?.kill('SIGKILL');
  rmSync(rd, { recursive: true, force: true });
});

const n0 = [{ access: 'n', ignore: false, domid: 0 }] as const;
const node = (path: string, value = '', perms: readonly { access: 'n' | 'r' | 'w' | 'b'; ignore: boolean; domid: number }[] = n0): StateRecord => ({
  type: 'node',
  connId: 0,
  txId: 0,
  txAccess: 0,
  path,
  value: Buffer.from(value, 'latin1'),
  perms,
});

describe('take-over from a version 2 stream', () => {
  it('loads quotas, domain features and quotas, a depth watch, pending output and input', async () => {
    // The client's connection, accepted here and handed to the daemon at descriptor 5.
    const server = createServer();
    await new Promise<void>((r) => server.listen(join(rd, 'handoff.sock'), r));
    const accepted = new Promise<Socket>((r) => server.once('connection', r));
    const client = await Wire.connect(join(rd, 'handoff.sock'));
    const serverSide = await accepted;

    const pending = Buffer.concat([header(Op.CONTROL, 42, 0, 3), Buffer.from('OK\0')]);
    const write = Buffer.from('/d/split\0value', 'latin1');
    const writeFrame = Buffer.concat([header(Op.WRITE, 43, 0, write.length), write]);
    const records: StateRecord[] = [
      { type: 'global', socketFd: -1, evtchnFd: -1 },
      { type: 'global-quota', perDomain: [['nodes', 500], ['watches', 50]], global: [['no-such-quota', 1]] },
      { type: 'connection', connId: 1, end: { kind: 'ring', domid: 0, target: undefined, evtchn: 1 }, input: Buffer.alloc(0), output: Buffer.alloc(0), partial: 0 },
      { type: 'connection', connId: 2, end: { kind: 'ring', domid: 5, target: undefined, evtchn: 3 }, input: Buffer.alloc(0), output: Buffer.alloc(0), partial: 0, uniqueId: 77n },
      { type: 'connection', connId: 3, end: { kind: 'socket', fd: 5 }, input: writeFrame.subarray(0, 22), output: pending, partial: 0 },
      { type: 'watch', connId: 3, path: '/d', token: 'dd', depth: 1 },
      node('/'),
      node('/d', 'top'),
      node('/local'),
      node('/local/domain'),
      node('/local/domain/5', '', [{ access: 'n', ignore: false, domid: 5 }, { access: 'r', ignore: true, domid: 9 }]),
      node('@releaseDomain', '', [...n0, { access: 'r', ignore: false, domid: 5 }]),
      { type: 'domain', domid: 5, features: 4, quotas: [['nodes', 7]] },
    ];
    writeFileSync(join(rd, 'state_dump'), encodeStream({ version: 2, records }), { mode: 0o600 });
    let out = '';
    child = spawn(process.execPath, [DAEMON_JS, '-N', '-U', '--rundir', rd, '--log-format', 'json'], {
      stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', serverSide],
    });
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    // Our copy goes: the daemon holds the connection now.
    serverSide.destroy();
    server.close();

    // What "cxenstored" had not sent arrives first.
    const first = await client.awaitReply();
    expect({ type: first.type, reqId: first.reqId, payload: first.payload.toString('latin1') }).toEqual({ type: Op.CONTROL, reqId: 42, payload: 'OK\0' });
    // The half-received WRITE completes with the rest.
    const second = client.awaitReply();
    await client.sendRaw(writeFrame.subarray(22));
    expect((await second).payload.toString('latin1')).toBe('OK\0');
    expect(await client.nextEvent()).toMatchObject({ path: '/d/split', token: 'dd' });

    // Adopted connections are read once the listening sockets are up (serve()): the socket is there.
    const c = await Wire.connect(join(rd, 'socket'));
    try {
      expect(await c.ask(Op.GET_QUOTA, 'nodes|')).toBe('500|');
      expect(await c.ask(Op.GET_QUOTA, 'watches|')).toBe('50|');
      expect(await c.ask(Op.GET_QUOTA, '5|nodes|')).toBe('7|');
      expect(await c.ask(Op.GET_QUOTA, '5|watches|')).toBe('50|');
      expect(await c.ask(Op.GET_FEATURE, '5|')).toBe('4|');
      expect(await c.ask(Op.IS_DOMAIN_INTRODUCED, '5|')).toBe('T|');
      expect(await c.ask(Op.GET_PERMS, '@releaseDomain|')).toBe('n0|r5|');
      // The stale entry (flag 0x01) grants nothing: it is gone.
      expect(await c.getPerms('/local/domain/5')).toEqual(['n5']);
      expect(await c.read('/d')).toBe('top');
      // Depth 1: a child fires, a grandchild does not.
      await c.write('/d/split/deeper', 'v');
      await c.write('/d/other', 'v');
      expect(await client.drain()).toEqual(['/d/other dd']);
    } finally {
      c.close();
      client.close();
    }
    // Logged at start, written a moment after ready (server/logger.ts).
    await expect.poll(() => out, { timeout: 5000 }).toMatch(/xen take-over: quota ignored.*no-such-quota|no-such-quota.*xen take-over: quota ignored/);
    expect(out).toContain('xen take-over: serving');
  });
});
