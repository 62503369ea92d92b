import type { Socket } from 'node:net';
import type { Frame } from '../../protocol/index.js';
import type { Caller, Transaction, XsErrorCode } from '../../store/index.js';
import type { DomainBudget } from '../quotas/index.js';
import type { AnswerReceiver, RequestId } from './answer.js';
import { AnswerOutlet } from './answer-outlet.js';
import { ConnectionInput, type Admission } from './connection-input.js';
import type { ConnectionState } from './connection-state.js';
import type { OutputGate } from './durability-hold.js';
import type { FlushScheduler } from './flush-scheduler.js';
import { FrameOutlet } from './frame-outlet.js';
import type { IdleCloses } from './idle-closes.js';
import { InputSuspension } from './input-suspension.js';
import type { Outlet } from './outlet.js';
import { netSocketOf, type Transport } from '../transport/index.js';

export type ConnectionKind = 'socket' | 'socket_ro' | 'domain' | 'http' | 'ws' | 'ws-binary';

/** What a connection is served with, from the daemon. */
export interface ConnectionHooks {
  /** Answers one request (dispatch/process.ts). */
  readonly onFrame: (conn: Connection, frame: Frame) => void;
  /** The connection's teardown, once, when its transport has closed. */
  readonly onClose: (conn: Connection, error: Error | undefined) => void;
  /** Events kept for a client that is not reading, beyond which they are dropped. */
  readonly maxEvents: () => number;
  /** The predicate that may defer requests (live update), or undefined: every request is taken. */
  readonly admission: () => Admission<Connection> | undefined;
  /** Flushes every connection's output once per turn of the event loop. */
  readonly flushes: FlushScheduler;
  /** Set when persistence is on: replies and events wait for the commits they may reflect. */
  readonly gate: OutputGate | undefined;
  /** How long a half-received request may wait for its next byte (connection-input.ts); 0: forever. */
  readonly requestIdleMs?: number | undefined;
  /** Closes the connections idle for `requestIdleMs`, a few per turn, with one log line per interval. */
  readonly idleCloses?: IdleCloses;
}

let nextId = 1;

/**
 * One client connection: who it acts as and its open transactions, over a transport, with its
 * input (requests in, `ConnectionInput`), its outlet (answers out, held until durable: frames for
 * a byte stream, `FrameOutlet`; the answers themselves for a gateway session, `AnswerOutlet`) and
 * live update's suspension (`InputSuspension`). Its watches live in the daemon's registry, keyed
 * by this object.
 */
export class Connection {
  readonly id = nextId++;
  state: ConnectionState = 'open';
  readonly transactions = new Map<number, Transaction>();
  /** The budget of the unprivileged domain this connection acts as (quotas/domain-budget.ts). */
  budget: DomainBudget<Connection> | undefined;
  private nextTx = 1;
  private readonly input: ConnectionInput<Connection>;
  private readonly outlet: Outlet;
  private readonly suspension: InputSuspension;

  /**
   * `receiver`, when given, takes this connection's answers as they are (a gateway session, whose
   * requests come whole through `submit`); without it, requests are read from the transport's
   * bytes and answers written to it as frames.
   */
  constructor(
    readonly socket: Transport,
    readonly kind: ConnectionKind,
    public caller: Caller,
    hooks: ConnectionHooks,
    receiver?: AnswerReceiver,
  ) {
    const input = (this.input = new ConnectionInput<Connection>(this, socket, hooks.onFrame, hooks.admission, receiver !== undefined, hooks.requestIdleMs, hooks.idleCloses));
    const outlet = (this.outlet =
      receiver === undefined
        ? new FrameOutlet(this, socket, input, hooks.flushes, hooks.maxEvents, hooks.gate)
        : new AnswerOutlet(this, socket, input, hooks.gate, receiver));
    this.suspension = new InputSuspension(socket, input);
    let failure: Error | undefined;
    socket.on('drain', () => {
      outlet.drained();
      if (input.paused) input.resume();
    });
    socket.on('error', (e) => (failure = e));
    socket.on('close', () => {
      if (this.state === 'closed') return;
      this.state = 'closed';
      hooks.onClose(this, failure);
    });
  }

  /** Bytes of a request received but not yet complete. */
  get partialBytes(): number {
    return this.input.partialBytes;
  }

  /** `allocTxId()` is the next free transaction id: from 1, skipping 0 and ids in use (spec §9.1). */
  allocTxId(): number {
    for (;;) {
      const id = this.nextTx;
      this.nextTx = this.nextTx >= 0xffffffff ? 1 : this.nextTx + 1;
      if (!this.transactions.has(id)) return id;
    }
  }

  /** `submit(frame)` takes one whole request of a gateway session, through the same pump as a socket's. */
  submit(frame: Frame): void {
    this.input.submit(frame);
  }

  /** `reply(request, payload)` answers a request; a full socket buffer pauses this client's input. */
  reply(request: RequestId, payload: Buffer | string): void {
    if (this.state === 'open') this.outlet.reply(request, payload);
  }

  /** `fail(request, code)` answers a request with a Xen error. */
  fail(request: RequestId, code: XsErrorCode): void {
    if (this.state === 'open') this.outlet.fail(request, code);
  }

  /** `event(path, token)` sends a watch event; false when it was dropped (the client is not reading). */
  event(path: string, token: string): boolean {
    return this.state === 'open' && this.outlet.event(path, token);
  }

  /** `resend(bytes)` queues bytes another daemon had left to send here (Xen's migration stream), as they are. */
  resend(bytes: Buffer): void {
    if (this.state === 'open') this.outlet.raw(bytes);
  }

  /** Sends the queued frames now (the flush scheduler does at the end of each turn). */
  flush(): void {
    this.outlet.flush();
  }

  /** Events dropped for this connection: it did not read them, or one was too large (logs). */
  get droppedEvents(): number {
    return this.outlet.droppedEvents;
  }

  set droppedEvents(n: number) {
    this.outlet.droppedEvents = n;
  }

  /** Output queued for the next flush (live update waits for it to reach the kernel). */
  get queuedBytes(): number {
    return this.outlet.queuedBytes;
  }

  /** Every byte of output we hold for this client: held for the disk, queued, not yet written. */
  get pendingBytes(): number {
    return this.outlet.heldBytes + this.outlet.queuedBytes + this.socket.writableLength;
  }

  /** The last flush left bytes the client has not taken: it is not keeping up (see `event`). */
  get isBacklogged(): boolean {
    return this.outlet.isBacklogged;
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
    return netSocketOf(this.socket);
  }

  /** True while a request's reply is awaited (`awaitReply`): this connection takes no request meanwhile. */
  get awaitingReply(): boolean {
    return this.input.awaitingReply;
  }

  /**
   * `awaitReply(done)` stops taking requests until `done` settles: the few handlers that must wait
   * (opening a domain's socket) keep this connection's replies in request order (spec §1.2).
   */
  awaitReply(done: Promise<void>): void {
    this.input.awaitReply(done);
  }

  /** Live update: stops reading the socket; unread requests stay in the kernel for the next process. */
  suspend(): void {
    this.suspension.suspend();
  }

  /** Undoes `suspend()` (the update failed, or this is the next process taking over). */
  unsuspend(): void {
    this.suspension.unsuspend();
  }

  /**
   * `throttle(ms)` takes no request from this client for `ms`: its domain spent its disk budget
   * (server/quotas/disk-budget.ts).
   */
  throttle(ms: number): void {
    this.input.throttle(ms, this.suspension);
  }

  /** Live update: every byte received and not yet answered (whole requests, then a partial one). */
  unread(): Buffer {
    return this.input.unread();
  }

  /** Live update, in the next process: bytes the previous process had received, before any new one. */
  inject(bytes: Buffer): void {
    this.input.inject(bytes);
  }

  /** Takes the requests waiting in the decoder, now that `admission` may let them in. */
  poll(): void {
    this.input.pump();
  }
}
