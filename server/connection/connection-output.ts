import type { PausableInput } from './connection-input.js';
import type { Lifecycle } from './connection-state.js';
import type { Flushable, FlushScheduler } from './flush-scheduler.js';
import type { Transport } from '../transport/index.js';

/** Queued output beyond which a connection flushes at once (and may pause, see `flush`). */
const FLUSH_BYTES = 16 * 1024;

/**
 * A connection's frames on their way out: queued, then written in one go when the scheduler
 * flushes this turn's output (`FlushScheduler`), so that the replies to a batch of pipelined
 * requests and the events they cause leave in one write.
 *
 * Flow control (XSA-326; oxenstored `xb.ml` `can_input`): when the transport's buffer is full
 * (`write` returned false) the connection's input pauses until 'drain', so a client that does not
 * read its replies only stalls itself. Watch events caused by *other* clients cannot be refused
 * that way. Once a flush leaves bytes the kernel would not take (the client is not reading),
 * further events are counted and dropped beyond `maxEvents`, so a watcher that never reads cannot
 * grow our memory either (cxenstored discards such events too). A healthy client is never dropped
 * from: one large commit's burst of events is queued whole and flushed in one go.
 */
export class ConnectionOutput implements Flushable {
  /** Events dropped for this connection: it did not read them, or one was too large (logs). */
  droppedEvents = 0;
  /** Frames to send at the next flush, and their total size. */
  private readonly frames: Buffer[] = [];
  private bytes = 0;
  private scheduled = false;
  /** The last flush left bytes unsent: the client is not keeping up. Cleared on 'drain'. */
  private backlogged = false;
  private eventsWhileFull = 0;

  constructor(
    private readonly owner: Lifecycle,
    private readonly transport: Transport,
    private readonly input: PausableInput,
    private readonly flushes: FlushScheduler,
    private readonly maxEvents: () => number,
  ) {}

  /** `queue(frame)` sends a reply at the next flush. */
  queue(frame: Buffer): void {
    this.frames.push(frame);
    this.bytes += frame.length;
    if (this.bytes >= FLUSH_BYTES) {
      this.flush();
    } else if (!this.scheduled) {
      this.scheduled = true;
      this.flushes.schedule(this);
    }
  }

  /** `queueEvent(frame)` sends a watch event at the next flush, or drops it (false) when the client is not reading. */
  queueEvent(frame: Buffer): boolean {
    if (!this.admitEvent()) return false;
    this.queue(frame);
    return true;
  }

  /**
   * `admitEvent()` says whether one more event may be queued; false (counted as dropped) once the
   * client is not reading and `maxEvents` wait already. Asked before the event is made, so that a
   * dropped event costs no frame.
   */
  admitEvent(): boolean {
    if (this.backlogged && ++this.eventsWhileFull > this.maxEvents()) {
      this.droppedEvents++;
      return false;
    }
    return true;
  }

  /**
   * Sends the queued frames in ONE write (joined: frames are small, and one buffer is cheaper
   * for Node's stream than a writev of many). When the transport's buffer is over its high-water
   * mark the client is not reading: stop reading its requests until 'drain' (`xb.ml` `can_input`).
   */
  flush(): void {
    this.scheduled = false;
    if (this.bytes === 0 || this.owner.state !== 'open') return;
    const frames = this.frames;
    const bytes = frames.length === 1 ? frames[0]! : Buffer.concat(frames, this.bytes);
    frames.length = 0;
    this.bytes = 0;
    if (!this.transport.write(bytes) && !this.input.paused) this.input.pause();
    if (this.transport.writableLength > 0) this.backlogged = true;
  }

  /** The transport took everything: the client is reading again. */
  drained(): void {
    this.backlogged = false;
    this.eventsWhileFull = 0;
  }

  /** Output queued for the next flush. */
  get queuedBytes(): number {
    return this.bytes;
  }

  /** The last flush left bytes the client has not taken: it is not keeping up (see `queueEvent`). */
  get isBacklogged(): boolean {
    return this.backlogged;
  }
}
