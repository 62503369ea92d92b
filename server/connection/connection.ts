import type { Socket } from 'node:net';
import type { Frame } from '../../protocol/index.js';
import type { Caller, Transaction, XsErrorCode } from '../../store/index.js';
import type { DomainBudget } from '../quotas/index.js';
import { ConnectionInput, type Admission } from './connection-input.js';
import { ConnectionOutput } from './connection-output.js';
import type { ConnectionState } from './connection-state.js';
import { DurabilityHold, type OutputGate } from './durability-hold.js';
import type { FlushScheduler } from './flush-scheduler.js';
import { InputSuspension } from './input-suspension.js';
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
  /** What a held reply becomes when the commits it waited for are lost (server/dispatch/frames.ts `lostReply`). */
  readonly lostReply: (frame: Buffer, code: XsErrorCode) => Buffer;
}

let nextId = 1;

/**
 * One client connection: who it acts as and its open transactions, over a transport, with its
 * input (requests in, `ConnectionInput`), its output (frames out, `ConnectionOutput`), the output
 * held until durable (`DurabilityHold`) and live update's suspension (`InputSuspension`). Its
 * watches live in the daemon's registry, keyed by this object.
 */
export class Connection {
  readonly id = nextId++;
  state: ConnectionState = 'open';
  readonly transactions = new Map<number, Transaction>();
  /** The budget of the unprivileged domain this connection acts as (quotas/domain-budget.ts). */
  budget: DomainBudget<Connection> | undefined;
  private nextTx = 1;
  private readonly input: ConnectionInput<Connection>;
  private readonly output: ConnectionOutput;
  private readonly disk: DurabilityHold | undefined;
  private readonly suspension: InputSuspension;

  constructor(
    readonly socket: Transport,
    readonly kind: ConnectionKind,
    public caller: Caller,
    hooks: ConnectionHooks,
  ) {
    const input = (this.input = new ConnectionInput<Connection>(this, socket, hooks.onFrame, hooks.admission));
    const output = (this.output = new ConnectionOutput(this, socket, input, hooks.flushes, hooks.maxEvents));
    this.disk =
      hooks.gate === undefined
        ? undefined
        : new DurabilityHold(hooks.gate, input, socket, (frame, event) => {
            if (this.state !== 'open') return;
            if (event) output.queueEvent(frame);
            else output.queue(frame);
          }, hooks.lostReply);
    this.suspension = new InputSuspension(socket, input);
    let failure: Error | undefined;
    socket.on('drain', () => {
      output.drained();
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

  /** `send(frame)` queues a reply; a full socket buffer pauses this client's input. */
  send(frame: Buffer): void {
    if (this.state !== 'open') return;
    if (this.disk !== undefined && this.disk.holdForDisk(frame, false)) return;
    this.output.queue(frame);
  }

  /** `sendEvent(frame)` queues a watch event, or drops it when the client is not reading. */
  sendEvent(frame: Buffer): boolean {
    if (this.state !== 'open') return false;
    if (this.disk !== undefined && this.disk.holdForDisk(frame, true)) return true;
    return this.output.queueEvent(frame);
  }

  /** Sends the queued frames now (the flush scheduler does at the end of each turn). */
  flush(): void {
    this.output.flush();
  }

  /** Events dropped for this connection: it did not read them, or one was too large (logs). */
  get droppedEvents(): number {
    return this.output.droppedEvents;
  }

  set droppedEvents(n: number) {
    this.output.droppedEvents = n;
  }

  /** Output queued for the next flush (live update waits for it to reach the kernel). */
  get queuedBytes(): number {
    return this.output.queuedBytes;
  }

  /** Every byte of output we hold for this client: held for the disk, queued, not yet written. */
  get pendingBytes(): number {
    return (this.disk?.bytes ?? 0) + this.output.queuedBytes + this.socket.writableLength;
  }

  /** The last flush left bytes the client has not taken: it is not keeping up (see `sendEvent`). */
  get isBacklogged(): boolean {
    return this.output.isBacklogged;
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
