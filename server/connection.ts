import { Socket } from 'node:net';
import { FrameDecoder, type Frame } from '../protocol/index.js';
import type { Caller, Transaction, XsErrorCode } from '../store/index.js';
import type { DomainBudget } from './domain-budget.js';
import { restartStreamReading, stopStreamReading } from './node-internals.js';
import { lostReply } from './dispatch/frames.js';
import { SocketTransport } from './socket-transport.js';

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
 * Output is queued and flushed once every readable socket of this turn of the event loop has been
 * served (see `flushAll`), so that the replies to a batch of pipelined requests and the events
 * they cause leave in one write.
 */
/**
 * Persistence's output barrier (server/persistence/journal.ts): while commits are not yet durable,
 * `pending()` is the newest generation, and output sent now waits until `after` calls back.
 */
export interface OutputGate {
  pending(): number | undefined;
  readonly durable: number;
  /**
   * `release()` once `generation` is durable; `release(code)` when it never will be (the log
   * failed, and the store went back to `durable`): output held since is answered with `code`.
   */
  after(generation: number, release: (lost?: XsErrorCode) => void): void;
}

/** Replies and events held for the disk before a connection's input is paused (cf. `outstanding`). */
const HELD_MAX = 1024;

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
  readonly writableLength: number;
  /** The buffer is past its high-water mark: 'drain' will come. */
  readonly writableNeedDrain: boolean;
  destroy(error?: Error): unknown;
}

export type ConnectionState = 'open' | 'closed';

let nextId = 1;

/**
 * Connections with output queued since the last flush. They are flushed in the event loop's
 * check phase (setImmediate), after every socket that was readable in this poll has been read
 * and answered: the replies of all clients then leave together, and no reply's write (which
 * wakes its reader, and on a busy machine lets it take our CPU) comes before the next client's
 * request has been handled. Measured: see bench/RESULTS.md, "Wire protocol".
 */
const queued: Connection[] = [];

function flushAll(): void {
  for (let i = 0; i < queued.length; i++) queued[i]!.flush();
  queued.length = 0;
}

/** Queued output beyond which a connection flushes at once (and may pause, see `flush`). */
const FLUSH_BYTES = 16 * 1024;

export class Connection {
  readonly id = nextId++;
  state: ConnectionState = 'open';
  readonly transactions = new Map<number, Transaction>();
  /** Events dropped for this connection: it did not read them, or one was too large (logs). */
  droppedEvents = 0;
  /** Set when persistence is on: replies and events wait for the commits they may reflect. */
  gate: OutputGate | undefined;
  /** The budget of the unprivileged domain this connection acts as (domain-budget.ts). */
  budget: DomainBudget | undefined;
  private held: { gen: number; frame: Buffer; event: boolean }[] = [];
  private heldBytes = 0;
  private heldWaitingFor = -1;
  /** Input paused because too much output waits for the disk (see `holdBack`). */
  private heldPaused = false;
  private readonly decoder = new FrameDecoder();
  private nextTx = 1;
  /** Frames to send at the next flush, and their total size. */
  private out: Buffer[] = [];
  private outBytes = 0;
  private scheduled = false;
  private paused = false;
  private waiting = false;
  /** The last flush left bytes unsent: the client is not keeping up. Cleared on 'drain'. */
  private backlogged = false;
  private eventsWhileFull = 0;
  /** Live update stopped reading the socket (`suspendInput`). */
  private suspended = false;
  /** Not read until the domain's disk budget has tokens again (`throttle`). */
  private throttled = false;

  constructor(
    readonly socket: Transport,
    readonly kind: ConnectionKind,
    public caller: Caller,
    private readonly onFrame: (conn: Connection, frame: Frame) => void,
    private readonly onClose: (conn: Connection, error: Error | undefined) => void,
    private readonly maxEvents: () => number,
    /**
     * The predicate that may defer requests (live update), or undefined when every request is
     * taken: then the hot path reads no header twice.
     */
    private readonly admission: () => ((conn: Connection, type: number) => boolean) | undefined = () => undefined,
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
        if (!this.throttled) socket.resume();
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
    if (this.gate !== undefined && this.holdBack(frame, false)) return;
    this.queue(frame);
  }

  /** `sendEvent(frame)` queues a watch event, or drops it when the client is not reading. */
  sendEvent(frame: Buffer): boolean {
    if (this.state !== 'open') return false;
    if (this.gate !== undefined && this.holdBack(frame, true)) return true;
    if (this.backlogged && ++this.eventsWhileFull > this.maxEvents()) {
      this.droppedEvents++;
      return false;
    }
    this.queue(frame);
    return true;
  }

  /**
   * Output sent while a commit is not yet durable waits, in order, behind it; so does anything
   * sent after it, so that this connection's output never overtakes itself (spec §1.2).
   */
  private holdBack(frame: Buffer, event: boolean): boolean {
    const gate = this.gate!;
    const gen = gate.pending();
    if (gen === undefined && this.held.length === 0) return false;
    this.held.push({ gen: gen ?? gate.durable, frame, event });
    this.heldBytes += frame.length;
    if (gen !== undefined && gen > this.heldWaitingFor) {
      this.heldWaitingFor = gen;
      gate.after(gen, (lost) => this.releaseHeld(lost));
    }
    // A client pipelining faster than the disk syncs stops being read, as one whose socket is
    // full does (xb.ml `can_input`): held output cannot grow without bound.
    if (this.held.length >= HELD_MAX && !this.paused) {
      this.paused = this.heldPaused = true;
      this.socket.pause();
    }
    return true;
  }

  private releaseHeld(lost?: XsErrorCode): void {
    const durable = this.gate!.durable;
    let n = 0;
    // After a loss nothing is pending any more: everything held goes, the lost part as errors.
    if (lost !== undefined) {
      n = this.held.length;
      this.heldWaitingFor = -1;
    }
    while (n < this.held.length && this.held[n]!.gen <= durable) n++;
    const ready = this.held.splice(0, n);
    for (const h of ready) this.heldBytes -= h.frame.length;
    const gate = this.gate;
    this.gate = undefined; // write them now, in order
    for (const h of ready) {
      if (h.event) this.sendEvent(h.frame);
      else this.send(lost !== undefined && h.gen > durable ? lostReply(h.frame, lost) : h.frame);
    }
    this.gate = gate;
    if (this.heldPaused && this.held.length < HELD_MAX) {
      this.heldPaused = false;
      // Still paused if the socket itself is full: its 'drain' resumes input then.
      if (this.paused && !this.socket.writableNeedDrain) {
        this.paused = false;
        if (!this.throttled) this.socket.resume();
        this.pump();
      }
    }
  }

  private queue(frame: Buffer): void {
    this.out.push(frame);
    this.outBytes += frame.length;
    if (this.outBytes >= FLUSH_BYTES) {
      this.flush();
    } else if (!this.scheduled) {
      this.scheduled = true;
      queued.push(this);
      if (queued.length === 1) setImmediate(flushAll);
    }
  }

  /**
   * Sends the queued frames in ONE write (joined: frames are small, and one buffer is cheaper
   * for Node's stream than a writev of many). When the socket's buffer is over its high-water
   * mark the client is not reading: stop reading its requests until 'drain' (`xb.ml` `can_input`).
   */
  flush(): void {
    this.scheduled = false;
    if (this.outBytes === 0 || this.state !== 'open') return;
    const out = this.out;
    const bytes = out.length === 1 ? out[0]! : Buffer.concat(out, this.outBytes);
    out.length = 0;
    this.outBytes = 0;
    if (!this.socket.write(bytes) && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    if (this.socket.writableLength > 0) this.backlogged = true;
  }

  /** Output queued for the next flush (live update waits for it to reach the kernel). */
  get queuedBytes(): number {
    return this.outBytes;
  }

  /** Every byte of output we hold for this client: held for the disk, queued, not yet written. */
  get pendingBytes(): number {
    return this.heldBytes + this.outBytes + this.socket.writableLength;
  }

  /** The last flush left bytes the client has not taken: it is not keeping up (see `sendEvent`). */
  get isBacklogged(): boolean {
    return this.backlogged;
  }

  /** `close()` ends the connection; teardown happens once, in the socket's 'close' handler. */
  close(): void {
    this.socket.destroy();
  }

  /**
   * The Unix socket under this connection, or undefined for a gateway client (HTTP, WebSocket):
   * only a socket has a descriptor that live update can hand to the next process.
   */
  get netSocket(): Socket | undefined {
    const t = this.socket;
    return t instanceof SocketTransport ? t.socket : t instanceof Socket ? t : undefined;
  }

  /** True while a request's reply is awaited (`hold`): this connection takes no request meanwhile. */
  get holding(): boolean {
    return this.waiting;
  }

  /**
   * Live update: stops reading the socket. What Node already read moves into the decoder; what
   * the client sends from now on stays in the kernel's socket buffer, where the next process,
   * which inherits the descriptor, reads it. `resumeInput()` undoes this (the update failed).
   */
  suspendInput(): void {
    const socket = this.netSocket;
    if (this.suspended || socket === undefined) return;
    this.suspended = true;
    if (this.socket instanceof SocketTransport) {
      // Nothing is buffered above the handle on this path: stopping the handle is all.
      this.socket.suspend();
      return;
    }
    stopStreamReading(socket);
  }

  resumeInput(): void {
    const socket = this.netSocket;
    if (!this.suspended || socket === undefined) return;
    this.suspended = false;
    if (this.socket instanceof SocketTransport) {
      this.socket.unsuspend(); // still paused if the connection is (its own flag)
      return;
    }
    restartStreamReading(socket);
    if (!this.paused) this.socket.resume();
  }

  /** Live update: every byte received and not yet answered (whole requests, then a partial one). */
  unread(): Buffer {
    return this.decoder.unconsumed();
  }

  /** Live update, in the next process: bytes the previous process had received, before any new one. */
  inject(bytes: Buffer): void {
    this.decoder.push(bytes);
    this.pump();
  }

  /** Takes the requests waiting in the decoder, now that `admission` may let them in. */
  poll(): void {
    this.pump();
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

  /**
   * `throttle(ms)` takes no request from this client for `ms`: its domain spent its disk budget
   * (server/disk-budget.ts). What it sends meanwhile waits in the kernel's socket buffer, and then
   * in the client; its replies and watch events still go out.
   */
  throttle(ms: number): void {
    if (this.throttled || this.state !== 'open') return;
    this.throttled = true;
    this.socket.pause();
    setTimeout(() => {
      this.throttled = false;
      if (this.state !== 'open') return;
      if (!this.paused && !this.suspended) this.socket.resume();
      this.pump();
    }, ms).unref();
  }

  private pump(): void {
    while (!this.paused && !this.throttled && !this.waiting && this.state === 'open') {
      const admit = this.admission();
      if (admit !== undefined) {
        const type = this.decoder.peekType();
        if (type === undefined || !admit(this, type)) break;
      }
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
