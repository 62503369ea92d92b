import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SocketTransport, socketTransport } from './socket-transport.js';

/** A connected pair: `served` is the server's end, wrapped; `peer` is the client. */
interface Pair {
  served: SocketTransport;
  peer: Socket;
}

let dir: string;
let server: Server;
let accepted: Socket[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nx-transport-'));
  accepted = [];
  server = createServer((s) => accepted.push(s));
  await new Promise<void>((ok) => server.listen(join(dir, 's'), ok));
});

afterEach(async () => {
  for (const s of accepted) s.destroy();
  await new Promise<void>((ok) => server.close(() => ok()));
  rmSync(dir, { recursive: true, force: true });
});

async function pair(): Promise<Pair> {
  const peer = createConnection(join(dir, 's'));
  await new Promise<void>((ok) => peer.once('connect', ok));
  while (accepted.length === 0) await new Promise((r) => setImmediate(r));
  const t = socketTransport(accepted[0]!, true);
  expect(t).toBeInstanceOf(SocketTransport);
  return { served: t as SocketTransport, peer };
}

function collect(t: SocketTransport): Buffer[] {
  const got: Buffer[] = [];
  t.on('data', (b: Buffer) => got.push(b));
  return got;
}

const settle = (ms = 50) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await settle(10);
  expect(cond()).toBe(true);
}

describe('SocketTransport', () => {
  it('delivers what the peer sends as chunks of its own (the read buffer is reused)', async () => {
    const { served, peer } = await pair();
    const got = collect(served);
    peer.write('first');
    await until(() => Buffer.concat(got).toString() === 'first');
    peer.write('second');
    await until(() => Buffer.concat(got).toString() === 'firstsecond');
    // The first chunk was not overwritten by the second read.
    expect(got[0]!.toString()).toBe('first');
  });

  it('writes reach the peer in order', async () => {
    const { served, peer } = await pair();
    const got: Buffer[] = [];
    peer.on('data', (b) => got.push(b));
    for (let i = 0; i < 100; i++) expect(served.write(Buffer.from(`${i},`))).toBe(true);
    const want = Array.from({ length: 100 }, (_, i) => `${i},`).join('');
    await until(() => Buffer.concat(got).toString() === want);
    expect(served.writableLength).toBe(0);
  });

  it('answers false past the high-water mark when the peer does not read, then drains in order', async () => {
    const { served, peer } = await pair();
    peer.pause();
    const block = Buffer.alloc(64 * 1024, 0x61);
    let writes = 0;
    while (served.write(block) && writes < 1000) writes++;
    expect(writes).toBeLessThan(1000); // the kernel's buffer filled up
    expect(served.writableNeedDrain).toBe(true);
    expect(served.writableLength).toBeGreaterThan(0);
    const total = (writes + 1) * block.length;
    let drained = false;
    served.once('drain', () => (drained = true));
    let received = 0;
    peer.on('data', (b: Buffer) => {
      expect(b.every((x) => x === 0x61)).toBe(true);
      received += b.length;
    });
    peer.resume();
    await until(() => drained && received === total);
    expect(served.writableLength).toBe(0);
    expect(served.writableNeedDrain).toBe(false);
  });

  it('pause stops reading until resume; nothing is lost', async () => {
    const { served, peer } = await pair();
    const got = collect(served);
    served.pause();
    peer.write('held');
    await settle();
    expect(got).toHaveLength(0);
    served.resume();
    await until(() => Buffer.concat(got).toString() === 'held');
  });

  it('suspend (live update) wins over resume, and unsuspend honours a pause', async () => {
    const { served, peer } = await pair();
    const got = collect(served);
    served.suspend();
    served.resume();
    peer.write('kept in the kernel');
    await settle();
    expect(got).toHaveLength(0);
    served.pause();
    served.unsuspend();
    await settle();
    expect(got).toHaveLength(0);
    served.resume();
    await until(() => Buffer.concat(got).toString() === 'kept in the kernel');
  });

  it('closes when the peer closes its end', async () => {
    const { served, peer } = await pair();
    let closed = false;
    served.on('close', () => (closed = true));
    peer.end();
    await until(() => closed);
    expect(served.socket.destroyed).toBe(true);
  });

  it('a client that shuts down its writing side still gets every reply, then the close', async () => {
    const { served, peer } = await pair();
    // More than the kernel's socket buffer: most of it is still in libuv when the EOF is read.
    const reply = Buffer.alloc(4 * 1024 * 1024, 0x62);
    served.on('data', () => setImmediate(() => served.write(reply)));
    let received = 0;
    peer.pause();
    const closed = new Promise<void>((ok) => peer.once('close', () => ok()));
    peer.end('question');
    await settle(100); // the EOF has been read by now, with the reply mostly unsent
    peer.on('data', (b: Buffer) => (received += b.length));
    peer.resume();
    await closed;
    expect(received).toBe(reply.length);
    expect(served.socket.destroyed).toBe(true);
  });

  it('a write after the socket is gone is refused, not thrown', async () => {
    const { served } = await pair();
    served.destroy();
    await settle();
    expect(served.write(Buffer.from('late'))).toBe(false);
  });

  it('delivers first what the stream of the socket had already buffered, then what follows', async () => {
    const peer = createConnection(join(dir, 's'));
    await new Promise<void>((ok) => peer.once('connect', ok));
    while (accepted.length === 0) await new Promise((r) => setImmediate(r));
    const socket = accepted[0]!;
    peer.write('early,');
    await until(() => socket.readableLength > 0);
    const served = socketTransport(socket, true) as SocketTransport;
    const got = collect(served);
    peer.write('late');
    await until(() => Buffer.concat(got).toString() === 'early,late');
    peer.destroy();
  });

  it('serves through the streams when direct I/O is not asked for', async () => {
    const peer = createConnection(join(dir, 's'));
    await new Promise<void>((ok) => peer.once('connect', ok));
    while (accepted.length === 0) await new Promise((r) => setImmediate(r));
    expect(socketTransport(accepted[0]!, false)).toBe(accepted[0]);
    peer.destroy();
  });
});
