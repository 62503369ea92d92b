import { FrameDecoder, type Frame } from '../../protocol/index.js';
import type { Lifecycle } from './connection-state.js';
import type { IdleCloses } from './idle-closes.js';
import { RequestQueue } from './request-queue.js';
import type { Transport } from '../transport/index.js';

/**
 * `admit(owner, type)` says whether a connection may take its next request, of message type
 * `type`; `false` leaves it, and what follows, unread until `pump()` is called again.
 */
export type Admission<C> = (owner: C, type: number) => boolean;

/** Default for `--request-idle-ms`: how long a half-received request may wait for its next byte. */
export const REQUEST_IDLE_MS = 30_000;

/**
 * The most a connection's pipelined requests may hold the event loop in one go before the others
 * get their turn (issue 18: 16 guests listing a huge directory pushed others to p99 272 ms).
 */
export const SLICE_MS = 2;

/** What the output and the disk hold see of the input: they pause it while output is backed up. */
export interface PausableInput {
  readonly paused: boolean;
  pause(): void;
  resume(): void;
}

/**
 * A connection's requests: the frame decoder fed by the transport (or, for a gateway session,
 * the queue of requests it hands in whole, `submit`), and the pump that hands each whole request
 * to `onFrame`, one at a time, in order, while nothing stops it:
 * - `paused`: the client's output is backed up (its socket is full, or too much waits for the
 *   disk), so its requests are not read until it drains (XSA-326; oxenstored `xb.ml` `can_input`);
 * - `awaitReply(done)`: a request's handler has not finished, and its reply must come first;
 * - `admission`: live update defers requests while it hands over; while one waits, the transport
 *   is not read either (`deferred`), or a client pipelining behind it would make us hold all it
 *   sends: a guest pushed 1.3 GB in 8 s while an update waited for transactions to end;
 * - `throttle(ms)`: its domain spent its disk budget (server/quotas/disk-budget.ts).
 *
 * A request left half-sent (a partial header or payload) with no byte for `idleMs` closes the
 * connection (issue 18, slow loris: 1,000 connections holding half a header each were kept
 * forever). Only silence counts: a client sending slowly, or one whose requests wait because we
 * stopped reading it, is never timed out. cxenstored and oxenstored have no such timer (a
 * guest's ring costs them nothing while idle; a socket costs us a descriptor and a buffer).
 */
export class ConnectionInput<C extends Lifecycle> implements PausableInput {
  private readonly decoder: FrameDecoder | RequestQueue;
  /** Not reading: the client's output is backed up (`pause`, `resume`). */
  private stopped = false;
  private awaiting = false;
  /** Not read until the domain's disk budget has tokens again (`throttle`). */
  private throttled = false;
  /** Armed while a request is half-received (`idleMs`); refreshed by every byte. */
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly idleMs: number;
  /** Its slice was used up (`SLICE_MS`): the rest waits for the next turn of the loop. */
  private sliced = false;
  /** In `resumeSlice`, which runs in the loop's check phase. */
  private resuming = false;
  /** A whole request waits for `admission`: nothing more is read until it is taken. */
  private deferred = false;

  constructor(
    private readonly owner: C,
    private readonly transport: Transport,
    private readonly onFrame: (owner: C, frame: Frame) => void,
    /** The predicate that may defer requests, or undefined when every request is taken: then the hot path reads no header twice. */
    private readonly admission: () => Admission<C> | undefined,
    /** Requests come whole (`submit`), not as bytes from the transport. */
    whole = false,
    /** How long a half-received request may wait for its next byte; 0: forever. */
    idleMs: number | undefined = REQUEST_IDLE_MS,
    /** Who closes a connection idle for `idleMs` (a few per turn, counted); without it, closed at once. */
    private readonly idleCloses?: Pick<IdleCloses, 'close'>,
  ) {
    this.idleMs = idleMs ?? REQUEST_IDLE_MS;
    if (whole) {
      this.decoder = new RequestQueue();
      return;
    }
    const decoder = (this.decoder = new FrameDecoder());
    transport.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      this.pump();
      this.watchPartial();
    });
    transport.on('close', () => clearTimeout(this.idleTimer));
  }

  private yieldSlice(): void {
    this.sliced = true;
    this.transport.pause();
    // Taken from a read (the poll phase), a slice resumed at the next `setImmediate` would run in
    // this same turn's check phase, before any other client's input is read: two slices in a row
    // (measured: 8-13 ms of one connection's requests and their events per turn). So it resumes
    // after the next poll: one hop from our own resumption (already in the check phase), two else.
    if (this.resuming) setImmediate(this.resumeSlice);
    else setImmediate(() => setImmediate(this.resumeSlice));
  }

  /** The rest of a connection's requests, one slice per turn, after the other clients' input. */
  private readonly resumeSlice = (): void => {
    this.sliced = false;
    if (this.owner.state !== 'open') return;
    if (this.readable()) this.transport.resume();
    this.resuming = true;
    try {
      this.pump();
    } finally {
      this.resuming = false;
    }
  };

  /** Nothing but live update's suspension (its own flag, input-suspension.ts) keeps the transport unread. */
  private readable(): boolean {
    return !this.stopped && !this.throttled && !this.sliced && !this.deferred;
  }

  /** Arms (or pushes back) the idle timer while bytes of an unfinished request are held. */
  private watchPartial(): void {
    if (this.idleMs <= 0 || this.owner.state !== 'open') return;
    if (this.decoder.buffered() === 0) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    } else if (this.idleTimer === undefined) {
      // Up to a quarter later, at random: 1,000 connections stalled at once are closed over a
      // spread of time, not all in one turn of the loop while others wait.
      this.idleTimer = setTimeout(() => this.idleExpired(), this.idleMs + Math.floor(Math.random() * (this.idleMs / 4)));
      this.idleTimer.unref();
    } else {
      this.idleTimer.refresh();
    }
  }

  private idleExpired(): void {
    this.idleTimer = undefined;
    if (this.owner.state !== 'open' || this.decoder.buffered() === 0) return;
    // What we hold waits for us, not for the client: whole requests we have not taken yet.
    if (this.stopped || this.throttled || this.awaiting || this.sliced || this.decoder.peekType() !== undefined && this.wholeRequestHeld()) {
      this.watchPartial();
      return;
    }
    // No Error (its stack trace) and no log line per connection: idle-closes.ts counts them.
    if (this.idleCloses !== undefined) this.idleCloses.close(this.transport);
    else this.transport.destroy();
  }

  /** A whole request is waiting in the decoder (deferred by live update's admission). */
  private wholeRequestHeld(): boolean {
    return this.admission() !== undefined;
  }

  /** `submit(frame)` takes one whole request (a gateway session's) as if it had just arrived. */
  submit(frame: Frame): void {
    if (!(this.decoder instanceof RequestQueue)) throw new Error('this connection reads its requests from a byte stream');
    this.decoder.add(frame);
    this.pump();
  }

  /** Bytes of a request received but not yet complete. */
  get partialBytes(): number {
    return this.decoder.buffered();
  }

  get paused(): boolean {
    return this.stopped;
  }

  /** True while a request's reply is awaited (`awaitReply`): no request is taken meanwhile. */
  get awaitingReply(): boolean {
    return this.awaiting;
  }

  /** Stops reading the transport (its output is backed up); the caller checks `paused` first. */
  pause(): void {
    this.stopped = true;
    this.transport.pause();
  }

  /** Reads again, and takes the requests that waited. */
  resume(): void {
    this.stopped = false;
    if (this.readable()) this.transport.resume();
    this.pump();
  }

  /**
   * `throttle(ms, suspension)` takes no request from this client for `ms`. What it sends meanwhile
   * waits in the kernel's socket buffer, and then in the client; its replies and events still go
   * out. Reading restarts after it unless something else stopped it meanwhile.
   */
  throttle(ms: number, suspension: { readonly suspended: boolean }): void {
    if (this.throttled || this.owner.state !== 'open') return;
    this.throttled = true;
    this.transport.pause();
    setTimeout(() => {
      this.throttled = false;
      if (this.owner.state !== 'open') return;
      if (this.readable() && !suspension.suspended) this.transport.resume();
      this.pump();
    }, ms).unref();
  }

  /**
   * `awaitReply(done)` stops taking requests until `done` settles: the few handlers that must wait
   * (opening a domain's socket) keep this connection's replies in request order (spec §1.2).
   */
  awaitReply(done: Promise<void>): void {
    this.awaiting = true;
    void done.finally(() => {
      this.awaiting = false;
      this.pump();
    });
  }

  /** Every byte received and not yet taken (whole requests, then a partial one). */
  unread(): Buffer {
    return this.decoder.unconsumed();
  }

  /** Bytes received some other way (live update: the previous process's), before any new one. */
  inject(bytes: Buffer): void {
    if (!(this.decoder instanceof FrameDecoder)) throw new Error('only a byte stream takes bytes');
    this.decoder.push(bytes);
    this.pump();
  }

  /**
   * Takes the requests waiting in the decoder, as long as nothing stops it, for at most
   * `SLICE_MS`: then it stops reading and goes on at the next turn of the loop (`setImmediate`,
   * after every other client's pending I/O), so that no client holds the loop while others wait.
   */
  pump(): void {
    // The clock is read only while more is waiting behind a request: a lone request (a sequential
    // client's, most of them) costs no clock read, a pipeline one per request.
    let start = -1;
    while (!this.stopped && !this.throttled && !this.awaiting && !this.sliced && this.owner.state === 'open') {
      const admit = this.admission();
      if (admit !== undefined) {
        const type = this.decoder.peekType();
        if (type === undefined) break;
        if (!admit(this.owner, type)) {
          if (!this.deferred) {
            this.deferred = true;
            this.transport.pause();
          }
          break;
        }
      }
      if (this.deferred) {
        this.deferred = false;
        if (this.readable()) this.transport.resume();
      }
      const f = this.decoder.next();
      if (f === undefined) break;
      if (start < 0 && this.decoder.buffered() > 0) start = performance.now();
      this.onFrame(this.owner, f);
      if (start >= 0 && this.decoder.buffered() > 0 && performance.now() - start > SLICE_MS) this.yieldSlice();
    }
    if (this.decoder.error !== undefined) {
      // Spec §1.3: a header announcing more than 4096 bytes kills the connection (cxenstored);
      // nothing after it can be trusted to be a header.
      this.transport.destroy(new Error(`oversized request (${this.decoder.error.len} bytes)`));
    }
  }
}
