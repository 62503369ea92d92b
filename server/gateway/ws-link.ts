import { WebSocket } from 'ws';

/** Bytes queued in a WebSocket above which a sender should stop taking the client's requests. */
export const HIGH_WATER = 64 * 1024;

/** Close code for a client that does not read (RFC 6455 §7.4.1 1013: "try again later"). */
export const CLOSE_SLOW = 1013;

/**
 * Sending to one WebSocket client, bounded like a socket client (XSA-326): while the kernel takes
 * what we send, nothing is counted; once it does not (`bufferedAmount > 0` before a send: the
 * client is not reading), each further message is counted, and past `limit()` of them (the
 * `watch-events` quota) the client is closed with 1013 and a reason, rather than let a watcher
 * that never reads grow our memory. A Unix socket client drops such events instead; a WebSocket
 * client is told, and can reconnect and resynchronise. `onDrain` runs when everything was sent.
 */
export class WsLink {
  private queuedWhileFull = 0;
  private slow = false;

  constructor(
    readonly ws: WebSocket,
    private readonly limit: () => number,
    private readonly onDrain: () => void,
    private readonly onSlow: () => void,
  ) {}

  /** `send(data)` queues one message; false when the client should be paused (or is gone). */
  send(data: string | Buffer): boolean {
    const ws = this.ws;
    if (ws.readyState !== WebSocket.OPEN || this.slow) return false;
    if (ws.bufferedAmount > 0 && ++this.queuedWhileFull > this.limit()) {
      this.slow = true;
      this.onSlow();
      ws.close(CLOSE_SLOW, `slow consumer: more than ${this.limit()} messages queued unread`);
      // Read again (the sender may have paused us) so the client's answer to the close arrives.
      ws.resume();
      return false;
    }
    ws.send(data, this.sent);
    return ws.bufferedAmount < HIGH_WATER;
  }

  private readonly sent = (err?: Error): void => {
    if (err === undefined && this.ws.bufferedAmount === 0) {
      this.queuedWhileFull = 0;
      this.onDrain();
    }
  };
}
