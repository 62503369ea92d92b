import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameDecoder, Op, encodeErrorPayload, encodeFrame, replyPayload, type Header } from '../../protocol/index.js';

/**
 * A scripted stand-in for a xenstore daemon, for the client's unit tests: a Unix socket in a
 * temporary directory whose connections decode requests with protocol/ and hand each to the
 * test's `handler`, which answers however the test needs (out of order, with errors, with
 * events, or not at all). Test support only; no production code imports it.
 */

export class FakeRequest {
  constructor(
    readonly conn: FakeConnection,
    readonly header: Header,
    /** A copy: the decoder's chunk may be reused. */
    readonly payload: Buffer,
  ) {}

  /** The payload's NUL-terminated strings (latin1), for assertions. */
  get args(): string[] {
    const s = this.payload.toString('latin1');
    return s.endsWith('\0') ? s.slice(0, -1).split('\0') : s.split('\0');
  }

  /** Answers with the request's own type, req_id and tx_id. */
  reply(payload: Buffer | string = replyPayload.ok()): void {
    this.conn.send(encodeFrame(this.header.type, this.header.reqId, this.header.txId, payload));
  }

  /** Answers with ERROR `code`. */
  error(code: string): void {
    this.conn.send(encodeFrame(Op.ERROR, this.header.reqId, this.header.txId, encodeErrorPayload(code)));
  }

  /** Answers with an arbitrary type (to test protocol violations). */
  replyAs(type: number, payload: Buffer | string): void {
    this.conn.send(encodeFrame(type, this.header.reqId, this.header.txId, payload));
  }
}

export class FakeConnection {
  private readonly decoder = new FrameDecoder();

  constructor(
    readonly socket: Socket,
    onRequest: (req: FakeRequest) => void,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (let f = this.decoder.next(); f !== undefined; f = this.decoder.next()) {
        onRequest(new FakeRequest(this, f.header, Buffer.from(f.payload)));
      }
    });
    socket.on('error', () => {});
  }

  send(frame: Buffer): void {
    this.socket.write(frame);
  }

  /** Sends WATCH_EVENT `path|token|` (type 15, req_id 0, spec §8.3). */
  event(path: string, token: string): void {
    this.send(encodeFrame(Op.WATCH_EVENT, 0, 0, replyPayload.watchEvent(path, token)));
  }
}

export type Handler = (req: FakeRequest) => void;

export class FakeXenstored {
  /** Every request received, in arrival order. */
  readonly requests: FakeRequest[] = [];
  readonly connections: FakeConnection[] = [];
  /** Answers each request; by default OK to everything. */
  handler: Handler = (req) => req.reply();
  private waiters: { count: number; resolve(): void }[] = [];

  private constructor(
    private readonly server: Server,
    private readonly dir: string,
    readonly path: string,
  ) {}

  static async start(handler?: Handler): Promise<FakeXenstored> {
    const dir = mkdtempSync(join(tmpdir(), 'nxs-fake-'));
    const path = join(dir, 'socket');
    let fake: FakeXenstored | undefined;
    const server = createServer((socket) => {
      fake!.connections.push(new FakeConnection(socket, (req) => fake!.onRequest(req)));
    });
    fake = new FakeXenstored(server, dir, path);
    if (handler !== undefined) fake.handler = handler;
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return fake;
  }

  /** Resolves once `count` requests in all have arrived. */
  received(count: number): Promise<void> {
    if (this.requests.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /** Requests of one type, in arrival order. */
  ofType(type: number): FakeRequest[] {
    return this.requests.filter((r) => r.header.type === type);
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private onRequest(req: FakeRequest): void {
    this.requests.push(req);
    this.handler(req);
    this.waiters = this.waiters.filter((w) => {
      if (this.requests.length < w.count) return true;
      w.resolve();
      return false;
    });
  }
}
