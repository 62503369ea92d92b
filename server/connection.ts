import { FrameDecoder, type Frame } from '../protocol/index.js';
import type { Caller, Transaction } from '../store/index.js';

/**
 * One client connection: a socket, its frame decoder, who it acts as, its open transactions.
 * Its watches live in the daemon's registry, keyed by this object.
 *
 * Flow control (XSA-326; oxenstored `xb.ml` `can_input`): when the socket's write buffer is full
 * (`write` returned false) we stop reading the client's requests until it drains, so a client that
 * does not read its replies only stalls itself. Watch events caused by *other* clients cannot be
 * refused that way. Once a flush leaves bytes the kernel would not take (the client is not
 * reading), further events are counted and dropped beyond `maxEvents`, so a watcher that never
 * reads cannot grow our memory either (cxenstored discards such events too). A healthy client is
 * never dropped from: one large commit's burst of events is queued whole and flushed in one go.
 *
 * Output is corked on the first write of a tick and uncorked on the next, so that the replies to a
 * batch of pipelined requests and the events they cause leave in one writev.
 */
export type ConnectionKind = 'socket' | 'socket_ro' | 'domain' | 'http' | 'ws' | 'ws-binary';

/**
 * What a connection reads requests from and writes frames to: the subset of `net.Socket` used
 * here, so that a Unix socket, a WebSocket or an in-process gateway session can each be a client
 * with the same dispatch, permissions, quotas, transactions and watches.
 */
export interface Transport {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'drain' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (e: Error) => void): unknown;
  write(frame: Buffer): boolean;
  pause(): unknown;
  resume(): unknown;
  cork(): void;
  uncork(): void;
  readonly writableLength: number;
  destroy(error?: Error): unknown;
}

export type ConnectionState = 'open' | 'closed';

let nextId = 1;

export class Connection {
  readonly id = nextId++;
  state: ConnectionState = 'open';
  readonly transactions = new Map<number, Transaction>();
  /** Events dropped because this connection did not read them (reported by CONTROL and logs). */
  droppedEvents = 0;
  private readonly decoder = new FrameDecoder();
  private nextTx = 1;
  private corked = false;
  private paused = false;
  private waiting = false;
  /** The last flush left bytes unsent: the client is not keeping up. Cleared on 'drain'. */
  private backlogged = false;
  private eventsWhileFull = 0;

  constructor(
    readonly socket: Transport,
    readonly kind: ConnectionKind,
    public caller: Caller,
    private readonly onFrame: (conn: Connection, frame: Frame) => void,
    private readonly onClose: (conn: Connection, error: Error | undefined) => void,
    private readonly maxEvents: () => number,
  ) {
    let failure: Error | undefined;
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      this.pump();
    });
    socket.on('drain', () => {
      this.backlogged = false;
      this.eventsWhileFull = 0;
      if (this.paused) {
        this.paused = false;
        socket.resume();
        this.pump();
      }
    });
    socket.on('error', (e) => (failure = e));
    socket.on('close', () => {
      if (this.state === 'closed') return;
      this.state = 'closed';
      this.onClose(this, failure);
    });
  }

  /** Bytes of a request received but not yet complete. */
  get partialBytes(): number {
    return this.decoder.buffered();
  }

  /** `allocTxId()` is the next free transaction id: from 1, skipping 0 and ids in use (spec §9.1). */
  allocTxId(): number {
    for (;;) {
      const id = this.nextTx;
      this.nextTx = this.nextTx >= 0xffffffff ? 1 : this.nextTx + 1;
      if (!this.transactions.has(id)) return id;
    }
  }

  /** `send(frame)` queues a reply; a full socket buffer pauses this client's input. */
  send(frame: Buffer): void {
    if (this.state !== 'open') return;
    this.cork();
    if (!this.socket.write(frame) && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /** `sendEvent(frame)` queues a watch event, or drops it when the client is not reading. */
  sendEvent(frame: Buffer): boolean {
    if (this.state !== 'open') return false;
    if (this.backlogged && ++this.eventsWhileFull > this.maxEvents()) {
      this.droppedEvents++;
      return false;
    }
    this.cork();
    this.socket.write(frame);
    return true;
  }

  /** `close()` ends the connection; teardown happens once, in the socket's 'close' handler. */
  close(): void {
    this.socket.destroy();
  }

  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(() => {
      this.corked = false;
      this.socket.uncork();
      if (this.socket.writableLength > 0) this.backlogged = true;
    });
  }

  /**
   * `hold(done)` stops taking requests until `done` settles: the few handlers that must wait
   * (opening a domain's socket) keep this connection's replies in request order (spec §1.2).
   */
  hold(done: Promise<void>): void {
    this.waiting = true;
    void done.finally(() => {
      this.waiting = false;
      this.pump();
    });
  }

  private pump(): void {
    while (!this.paused && !this.waiting && this.state === 'open') {
      const f = this.decoder.next();
      if (f === undefined) break;
      this.onFrame(this, f);
    }
    if (this.decoder.error !== undefined) {
      // Spec §1.3: a header announcing more than 4096 bytes kills the connection (cxenstored);
      // nothing after it can be trusted to be a header.
      this.socket.destroy(new Error(`oversized request (${this.decoder.error.len} bytes)`));
    }
  }
}
