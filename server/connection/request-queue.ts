import type { Frame } from '../../protocol/index.js';

/**
 * Requests handed to a connection whole (a gateway session's: no byte stream below it), read as
 * the frame decoder is read, so that they pass the same pump, admission and ordering as a socket
 * client's (connection-input.ts).
 */
export class RequestQueue {
  private readonly frames: Frame[] = [];

  /** `add(frame)` queues one request behind those not taken yet. */
  add(frame: Frame): void {
    this.frames.push(frame);
  }

  next(): Frame | undefined {
    return this.frames.shift();
  }

  peekType(): number | undefined {
    return this.frames[0]?.header.type;
  }

  /** Whole requests only: never a partial one. */
  buffered(): number {
    return 0;
  }

  /** Nothing to hand to a live update's next process: only Unix sockets go over (live-updater.ts). */
  unconsumed(): Buffer {
    return Buffer.alloc(0);
  }

  /** Requests arrive whole and checked (gateway/session.ts): there is no stream to desynchronise. */
  readonly error = undefined;
}
