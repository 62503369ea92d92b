import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Transport } from './transport.js';
import { pipeHandle, streamWrap, type PipeHandle, type StreamWrap } from './node-internals.js';

/**
 * A Unix-socket client served below Node's streams: requests are read straight from the libuv
 * handle into one reused buffer, and replies are written straight to it, one `write(2)` each.
 *
 * Why: a xenstore client usually waits for each reply before it sends the next request (every
 * transaction is START, a few requests, END), so the daemon pays a whole read and a whole write per
 * request. Through `net.Socket` each of them also runs the Readable/Writable machinery: a Buffer
 * and a `'data'` emit per read; a write request, a callback and a `process.nextTick` per write.
 * Measured on a sequential request/reply load (bench/RESULTS.md, "Socket I/O below the streams"),
 * that machinery was about a third of the daemon's CPU per request.
 *
 * This is the path `net.Socket` itself takes with its public `onread` option (user buffer,
 * callback per read), applied to a socket the server accepted, plus the handle's own write call.
 * Both use Node internals (`_handle`, `useUserBuffer`, `writeBuffer` with a `WriteWrap` from
 * `process.binding('stream_wrap')`), all reached through `transport/node-internals.ts`: `socketTransport()`
 * checks they are there and otherwise serves the socket through its streams, the public API
 * (`--socket-io stream` forces that path). The socket
 * object stays the owner of the descriptor: closing, the `'close'` event and handing the socket
 * to another process (live update) go through it unchanged.
 *
 * Flow control keeps `net.Socket`'s contract (what `Connection` relies on): `write` returns false
 * once more than `HIGH_WATER` bytes wait in the kernel's stead, and `'drain'` follows when they
 * have gone.
 */

export type SocketIo = 'direct' | 'stream';

export const SOCKET_IO: readonly SocketIo[] = ['direct', 'stream'];

/** Bytes queued in libuv beyond which `write` answers false (Node's default for sockets). */
const HIGH_WATER = 16 * 1024;

/** One read's worth: large enough for a pipelined batch of requests (a frame is ≤ 4 KiB + 16). */
const READ_BUFFER = 64 * 1024;


/** libuv's end-of-file code (UV_EOF): the client closed its end. */
const UV_EOF = -4095;


/**
 * `socketIoMode(requested)` is the mode sockets are served in: `direct` only when asked for and this
 * runtime has the internals it uses (the start-up line says which, so a fallback is never silent).
 */
export function socketIoMode(requested: SocketIo): SocketIo {
  return requested === 'direct' && streamWrap() !== undefined ? 'direct' : 'stream';
}

/** Every handle reads into this one buffer: reads are delivered one at a time, on one thread. */
let shared: Buffer | undefined;

/**
 * `socketTransport(socket, direct)` is the transport to serve `socket` with: a `SocketTransport`
 * when `direct` and the runtime offers what it needs, else the socket itself (its streams).
 */
export function socketTransport(socket: Socket, direct: boolean): Transport {
  if (!direct) return socket;
  const wrap = streamWrap();
  const handle = pipeHandle(socket);
  if (wrap === undefined || handle === undefined) return socket;
  return new SocketTransport(socket, handle, wrap);
}

export class SocketTransport extends EventEmitter implements Transport {
  /** Bytes handed to libuv that the kernel has not taken yet. */
  private pending = 0;
  private needDrain = false;
  private paused = false;
  /** Reading stopped by live update (`suspend`), whatever `pause`/`resume` say. */
  private suspended = false;
  /** The client closed its end: nothing more to read (`ended`). */
  private eof = false;
  /** Called once libuv has written everything handed to it (`ended` waits for it). */
  private written: (() => void) | undefined;

  constructor(
    readonly socket: Socket,
    private readonly handle: PipeHandle,
    private readonly wrap: StreamWrap,
  ) {
    super();
    shared ??= Buffer.allocUnsafe(READ_BUFFER);
    handle.useUserBuffer(shared);
    const state = wrap.streamBaseState;
    const index = wrap.kReadBytesOrError;
    handle.onread = () => {
      const n = state[index]!;
      if (n > 0) {
        // A copy: the decoder may keep a partial frame (or frames a paused connection has not
        // taken) past this call, and the shared buffer is overwritten by the next read.
        const chunk = Buffer.allocUnsafe(n);
        shared!.copy(chunk, 0, 0, n);
        this.emit('data', chunk);
      } else if (n === UV_EOF) {
        this.ended();
      } else if (n < 0) {
        socket.destroy(Object.assign(new Error(`read failed (${n})`), { errno: n }));
      }
      return undefined;
    };
    socket.on('error', (e) => this.emit('error', e));
    socket.on('close', () => this.emit('close'));
    // Anything the socket's stream already buffered comes first, once the connection listens (it
    // subscribes right after this constructor; the next read is a later task, so order holds).
    const early = socket.readableLength > 0 ? (socket.read() as Buffer | null) : null;
    if (early !== null) queueMicrotask(() => this.emit('data', early));
    // An accepted socket may already be reading (into Node's buffer, not ours): make sure the
    // handle reads, with our callback, from now on.
    this.startReading();
  }

  write(frame: Buffer): boolean {
    if (this.socket.destroyed) return false;
    const req = new this.wrap.WriteWrap();
    req.handle = this.handle;
    req.async = false;
    req.bytes = 0;
    req.buffer = null;
    const err = this.handle.writeBuffer(req, frame);
    if (err !== 0) {
      this.socket.destroy(Object.assign(new Error(`write failed (${err})`), { errno: err }));
      return false;
    }
    if (this.wrap.streamBaseState[this.wrap.kLastWriteWasAsync] !== 0) {
      // The kernel took part or none of it: libuv keeps the rest and writes it in order.
      req.buffer = frame; // alive until written
      const size = frame.length;
      this.pending += size;
      req.oncomplete = (status: number) => {
        this.pending -= size;
        if (status < 0) {
          this.socket.destroy(Object.assign(new Error(`write failed (${status})`), { errno: status }));
          return;
        }
        if (this.pending !== 0) return;
        if (this.needDrain) {
          this.needDrain = false;
          this.emit('drain');
        }
        this.written?.();
      };
      if (this.pending >= HIGH_WATER) this.needDrain = true;
    }
    return !this.needDrain;
  }

  get writableLength(): number {
    return this.pending;
  }

  get writableNeedDrain(): boolean {
    return this.needDrain;
  }

  pause(): this {
    this.paused = true;
    this.stopReading();
    return this;
  }

  resume(): this {
    this.paused = false;
    if (!this.suspended) this.startReading();
    return this;
  }

  /** Live update: stop reading until `unsuspend`; unread bytes stay in the kernel for the next process. */
  suspend(): void {
    this.suspended = true;
    this.stopReading();
  }

  unsuspend(): void {
    this.suspended = false;
    if (!this.paused) this.startReading();
  }

  destroy(error?: Error): this {
    this.socket.destroy(error);
    return this;
  }

  /**
   * The client closed its end (EOF). It may still read: a client that sends its requests and then
   * shuts down its writing side (`nc -N`, a script's `shutdown(SHUT_WR)`) waits for the replies.
   * They are flushed at the end of this turn of the event loop (server/connection/flush-scheduler.ts,
   * scheduled before this callback ran), so close once that is done and libuv has written them, as a
   * `net.Socket` without `allowHalfOpen` does.
   */
  private ended(): void {
    this.eof = true;
    this.stopReading();
    setImmediate(() => {
      if (this.pending === 0) this.socket.destroy();
      else this.written = () => this.socket.destroy();
    });
  }

  private startReading(): void {
    if (this.socket.destroyed || this.eof || this.handle.reading) return;
    this.handle.reading = true;
    const err = this.handle.readStart();
    if (err !== 0) this.socket.destroy(Object.assign(new Error(`read failed (${err})`), { errno: err }));
  }

  private stopReading(): void {
    if (this.socket.destroyed || !this.handle.reading) return;
    this.handle.reading = false;
    this.handle.readStop();
  }
}
