import type { XsErrorCode } from '../../store/index.js';
import type { RequestId } from './answer.js';

/**
 * Where a connection's answers go, in the order they are sent: made into frames for a byte stream
 * (`FrameOutlet`: a Unix socket, a binary WebSocket), or handed over as they are (`AnswerOutlet`:
 * a gateway session). Either way they may first wait for the disk (durability-hold.ts).
 */
export interface Outlet {
  reply(request: RequestId, payload: Buffer | string): void;
  fail(request: RequestId, code: XsErrorCode): void;
  /** A watch event; false when it was dropped because the client is not reading. */
  event(path: string, token: string): boolean;
  /**
   * Bytes another daemon had left to send on this connection (Xen's migration stream): sent as
   * they are, before any answer of ours. Only a byte stream has them.
   */
  raw(bytes: Buffer): void;
  /** Sends what was queued this turn (the flush scheduler calls it). */
  flush(): void;
  /** The transport took everything: the client is reading again. */
  drained(): void;
  /** Events dropped: the client did not read them, or one was too large (the dispatch counts those). */
  droppedEvents: number;
  /** Queued for the next flush. */
  readonly queuedBytes: number;
  /** Held until the commits they may reflect are durable. */
  readonly heldBytes: number;
  /** The last flush left bytes the client has not taken. */
  readonly isBacklogged: boolean;
}
