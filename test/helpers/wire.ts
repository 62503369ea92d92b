/**
 * A raw xenstore wire client for tests, on the protocol layer only (independent of `clients/`).
 *
 * Payloads are written in the notation of xenstore.txt and the spec, where `|` stands for one NUL
 * byte: `enc('/a|hello')` is `"/a\0hello"`. Replies are shown the same way by `show()`: a successful
 * reply is its payload with NULs as `|` (`OK|`, `a|b|`, a READ value as is); an ERROR reply is the
 * bare error name (`ENOENT`). Scenario tables compare against these strings.
 *
 * Replies are matched to requests in order (both Xen daemons answer strictly in request order per
 * connection, spec §1.2); `ask` also checks that req_id and tx_id are echoed. Watch events (type 15)
 * are collected separately: `nextEvent()`, `events()`, and `sync()`, a round trip after which every
 * event caused by requests that were already answered (on any connection) has arrived — the daemon
 * is single-threaded and each connection's output is FIFO (spec §8.8), so "no event" can be checked
 * without sleeping.
 */
import { connect, type Socket } from 'node:net';
import { encodeFrame, FrameDecoder, HEADER_SIZE, Op, opName, type Frame } from '../../protocol/index.js';

export interface Reply {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly payload: Buffer;
}

export interface WatchEvent {
  readonly path: string;
  readonly token: string;
  readonly raw: Buffer;
}

export interface RequestOptions {
  readonly txId?: number;
  readonly reqId?: number;
}

/** A failed reply, thrown by the convenience methods (`read`, `write`, ...). */
export class WireError extends Error {
  constructor(
    readonly code: string,
    what: string,
  ) {
    super(`${what}: ${code}`);
  }
}

/** `enc(notation)` turns `|` into NUL and returns the bytes (latin1: one char per byte). */
export function enc(notation: string): Buffer {
  return Buffer.from(notation.replaceAll('|', '\0'), 'latin1');
}

/** `show(reply)`: the error name for ERROR, else the payload with NUL shown as `|`. */
export function show(reply: Reply): string {
  if (reply.type === Op.ERROR) return reply.payload.toString('latin1').replace(/\0$/, '');
  return reply.payload.toString('latin1').replaceAll('\0', '|');
}

/** `frame(type, payload, reqId, txId)`: one raw message, header + payload (payload in notation if a string). */
export function frame(type: number, payload: Buffer | string = '', reqId = 0, txId = 0): Buffer {
  return encodeFrame(type, reqId, txId, typeof payload === 'string' ? enc(payload) : payload);
}

/** `header(type, reqId, txId, len)`: 16 raw header bytes announcing any length (for malformed input). */
export function header(type: number, reqId: number, txId: number, len: number): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  b.writeUInt32LE(type >>> 0, 0);
  b.writeUInt32LE(reqId >>> 0, 4);
  b.writeUInt32LE(txId >>> 0, 8);
  b.writeUInt32LE(len >>> 0, 12);
  return b;
}

interface Waiter {
  resolve(r: Reply): void;
  reject(e: Error): void;
}

let nextReqId = 0x1000;

export class Wire {
  /** Resolves when the daemon closes the connection (or we do). */
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder();
  private readonly waiting: Waiter[] = [];
  private readonly queue: WatchEvent[] = [];
  private eventWaiter: ((e: WatchEvent) => void) | undefined;
  private isClosed = false;
  /** Every frame received, in order (replies and events), for tests about interleaving. */
  readonly received: Frame[] = [];

  private constructor(
    readonly socket: Socket,
    readonly name: string,
  ) {
    this.closed = new Promise((res) => {
      socket.on('close', () => {
        this.isClosed = true;
        for (const w of this.waiting.splice(0)) w.reject(new Error(`${this.name}: connection closed before the reply`));
        res();
      });
    });
    socket.on('error', () => {
      /* reported through 'close' */
    });
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (let f = this.decoder.next(); f !== undefined; f = this.decoder.next()) this.onFrame(f);
      if (this.decoder.error !== undefined) {
        socket.destroy(new Error(`${this.name}: daemon sent an oversized frame (${this.decoder.error.len} bytes)`));
      }
    });
  }

  /** `Wire.connect(path)` opens a client connection to a Unix socket. */
  static connect(path: string): Promise<Wire> {
    return new Promise((res, rej) => {
      const s = connect(path);
      s.once('error', rej);
      s.once('connect', () => {
        s.off('error', rej);
        res(new Wire(s, path));
      });
    });
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  private onFrame(f: Frame): void {
    const copy: Frame = { header: f.header, payload: Buffer.from(f.payload) };
    this.received.push(copy);
    if (this.received.length > 20_000) this.received.splice(0, 10_000);
    if (f.header.type === Op.WATCH_EVENT) {
      const parts = copy.payload.toString('latin1').split('\0');
      const ev = { path: parts[0] ?? '', token: parts[1] ?? '', raw: copy.payload };
      if (this.eventWaiter !== undefined) {
        const w = this.eventWaiter;
        this.eventWaiter = undefined;
        w(ev);
      } else {
        this.queue.push(ev);
      }
      return;
    }
    const w = this.waiting.shift();
    if (w === undefined) {
      this.socket.destroy(new Error(`${this.name}: unexpected ${opName(f.header.type)} reply`));
      return;
    }
    w.resolve({ ...copy.header, payload: copy.payload });
  }

  /** Registers interest in the next reply (for replies to bytes sent with `sendRaw`). */
  awaitReply(): Promise<Reply> {
    if (this.isClosed) return Promise.reject(new Error(`${this.name}: connection closed`));
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /** `sendRaw(bytes)` writes bytes as they are; resolves once handed to the kernel. */
  sendRaw(bytes: Buffer): Promise<void> {
    return new Promise((res, rej) => this.socket.write(bytes, (e) => (e ? rej(e) : res())));
  }

  /**
   * `request(type, payload, opts)` sends one message (a string payload is in `|` notation) and
   * resolves with the reply; req_id defaults to a fresh non-zero number, tx_id to 0.
   */
  request(type: number, payload: Buffer | string = '', opts: RequestOptions = {}): Promise<Reply> {
    const reqId = opts.reqId ?? nextReqId++;
    const reply = this.awaitReply();
    this.socket.write(frame(type, payload, reqId, opts.txId ?? 0));
    return reply;
  }

  /**
   * `ask(type, payload, opts)` is `request` shown as a string (see `show`); throws when the reply's
   * req_id or tx_id is not the request's, or its type is neither the request's nor ERROR (spec §1.2).
   */
  async ask(type: number, payload: Buffer | string = '', opts: RequestOptions = {}): Promise<string> {
    const reqId = opts.reqId ?? nextReqId++;
    const txId = opts.txId ?? 0;
    const r = await this.request(type, payload, { reqId, txId });
    const what = `${opName(type)} ${JSON.stringify(typeof payload === 'string' ? payload : show({ ...r, type: 0, payload }))}`;
    if (r.reqId !== reqId) throw new Error(`${what}: reply req_id ${r.reqId}, sent ${reqId}`);
    if (r.txId !== txId) throw new Error(`${what}: reply tx_id ${r.txId}, sent ${txId}`);
    if (r.type !== type && r.type !== Op.ERROR) throw new Error(`${what}: reply of type ${opName(r.type)}`);
    return show(r);
  }

  /** Like `ask`, but an ERROR reply throws `WireError`; returns the payload bytes. */
  async ok(type: number, payload: Buffer | string = '', opts: RequestOptions = {}): Promise<Buffer> {
    const reqId = opts.reqId ?? nextReqId++;
    const r = await this.request(type, payload, { reqId, txId: opts.txId ?? 0 });
    if (r.type === Op.ERROR) throw new WireError(show(r), `${opName(type)} ${String(payload)}`);
    if (r.type !== type) throw new Error(`${opName(type)}: reply of type ${opName(r.type)}`);
    return r.payload;
  }

  // ---- convenience: each throws WireError on an ERROR reply ----

  async read(path: string, tx = 0): Promise<string> {
    return (await this.ok(Op.READ, Buffer.from(`${path}\0`, 'latin1'), { txId: tx })).toString('latin1');
  }

  async write(path: string, value: string | Buffer, tx = 0): Promise<void> {
    const v = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
    await this.ok(Op.WRITE, Buffer.concat([Buffer.from(`${path}\0`, 'latin1'), v]), { txId: tx });
  }

  async mkdir(path: string, tx = 0): Promise<void> {
    await this.ok(Op.MKDIR, Buffer.from(`${path}\0`, 'latin1'), { txId: tx });
  }

  async rm(path: string, tx = 0): Promise<void> {
    await this.ok(Op.RM, Buffer.from(`${path}\0`, 'latin1'), { txId: tx });
  }

  /** DIRECTORY: the child names (order as the daemon gives it). */
  async dir(path: string, tx = 0): Promise<string[]> {
    const p = (await this.ok(Op.DIRECTORY, Buffer.from(`${path}\0`, 'latin1'), { txId: tx })).toString('latin1');
    return p === '' ? [] : p.replace(/\0$/, '').split('\0');
  }

  async getPerms(path: string, tx = 0): Promise<string[]> {
    const p = (await this.ok(Op.GET_PERMS, Buffer.from(`${path}\0`, 'latin1'), { txId: tx })).toString('latin1');
    return p.replace(/\0$/, '').split('\0');
  }

  async setPerms(path: string, perms: readonly string[], tx = 0): Promise<void> {
    await this.ok(Op.SET_PERMS, Buffer.from([path, ...perms].map((s) => `${s}\0`).join(''), 'latin1'), { txId: tx });
  }

  async watch(path: string, token: string): Promise<void> {
    await this.ok(Op.WATCH, Buffer.from(`${path}\0${token}\0`, 'latin1'));
  }

  async unwatch(path: string, token: string): Promise<void> {
    await this.ok(Op.UNWATCH, Buffer.from(`${path}\0${token}\0`, 'latin1'));
  }

  /** TRANSACTION_START: the new id. */
  async txStart(): Promise<number> {
    const p = (await this.ok(Op.TRANSACTION_START, enc('|'))).toString('latin1');
    const m = /^(\d+)\0$/.exec(p);
    if (m === null) throw new Error(`TRANSACTION_START answered ${JSON.stringify(p)}`);
    return Number(m[1]);
  }

  /** TRANSACTION_END: `OK|` or the error name (EAGAIN, ...). */
  txEnd(tx: number, commit: boolean): Promise<string> {
    return this.ask(Op.TRANSACTION_END, commit ? 'T|' : 'F|', { txId: tx });
  }

  /** CONTROL `cmd|args…|`: the reply text without its trailing NUL; throws WireError on error. */
  async control(...args: string[]): Promise<string> {
    const p = await this.ok(Op.CONTROL, Buffer.from(args.map((a) => `${a}\0`).join(''), 'latin1'));
    return p.toString('latin1').replace(/\0$/, '');
  }

  // ---- watch events ----

  /** The next watch event (queued or future); rejects after `timeoutMs`. */
  nextEvent(timeoutMs = 10_000): Promise<WatchEvent> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.eventWaiter !== undefined) return Promise.reject(new Error('nextEvent already pending'));
    return new Promise((res, rej) => {
      const t = setTimeout(() => {
        this.eventWaiter = undefined;
        rej(new Error(`${this.name}: no watch event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.eventWaiter = (e) => {
        clearTimeout(t);
        res(e);
      };
    });
  }

  /** Takes every event received so far (and not yet taken). */
  events(): WatchEvent[] {
    return this.queue.splice(0);
  }

  /** A round trip: afterwards every event caused by already-answered requests has arrived. */
  async sync(): Promise<void> {
    await this.ok(Op.GET_DOMAIN_PATH, enc('0|'));
  }

  /** `sync()` then `events()`, shown as `path token` strings (handy in `toEqual`). */
  async drain(): Promise<string[]> {
    await this.sync();
    return this.events().map((e) => `${e.path} ${e.token}`);
  }

  /** Stops reading from the socket (a client that does not read its replies / events). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** `openAll(n, open)` opens n connections in parallel. */
export function openAll(n: number, open: () => Promise<Wire>): Promise<Wire[]> {
  return Promise.all(Array.from({ length: n }, open));
}
