import { EventEmitter } from 'node:events';
import { decodeErrorPayload, decodeHeader, HEADER_SIZE, Op, opName, PAYLOAD_MAX, type Header } from '../../protocol/index.js';
import { isXsErrorCode, XsError, type Caller } from '../../store/index.js';
import type { Connection, ConnectionKind } from '../connection/index.js';
import type { Transport } from '../transport/index.js';
import type { Daemon } from '../daemon.js';
import { process as processFrame } from '../dispatch/index.js';

/** A reply frame as the daemon sent it (type ERROR for a failure). */
export interface ReplyFrame {
  readonly header: Header;
  readonly payload: Buffer;
}

/**
 * An in-process client of the daemon: a real `Connection` (registered, with its own transactions
 * and watches) whose transport hands every frame the daemon writes back to us instead of a
 * socket. Requests are wire frames run through `process()`, the one dispatch of the Unix sockets,
 * so HTTP and JSON WebSocket requests get exactly the permission checks, quotas, transactions and
 * watch rules of the wire protocol: there is no second code path for semantics.
 *
 * `process()` runs a request at once, when it is sent, so requests sent one after another in the
 * same tick see one store version whatever happens later; the reply may come back at once or
 * later (if the connection's output is ever held back), so replies are awaited, by req_id.
 */
export class Session {
  readonly conn: Connection;
  private nextReq = 1;
  private readonly pending = new Map<number, { resolve: (r: ReplyFrame) => void; reject: (e: Error) => void }>();
  private readonly transport: LocalTransport;

  /**
   * `onFrame(header, payload)`, when given, sees every frame the daemon sends this session in
   * order: replies and watch events, as they would leave a socket. `onClose` runs when the
   * connection ends, whoever ended it (the daemon closes a released domain's connections).
   */
  constructor(
    private readonly daemon: Daemon,
    kind: ConnectionKind,
    caller: Caller,
    private readonly onFrame?: (header: Header, payload: Buffer) => void,
    onClose?: () => void,
  ) {
    this.transport = new LocalTransport(
      (frame) => this.receive(frame),
      () => {
        for (const p of this.pending.values()) p.reject(new XsError('EIO', 'connection closed'));
        this.pending.clear();
        onClose?.();
      },
    );
    this.conn = daemon.attach(this.transport, kind, caller);
  }

  /**
   * `send(type, payload, txId)` runs one request now and returns its req_id; the reply comes
   * through `onFrame`. Throws (and runs nothing) on a closed connection or an oversized payload.
   */
  send(type: number, payload: Buffer, txId = 0): number {
    // A closed connection's requests must not run: their replies would go nowhere.
    if (this.conn.state !== 'open') throw new XsError('EIO', 'connection closed');
    // What no wire client could send (spec §1.3: a frame carries at most 4096 bytes) the gateway
    // does not send either; there it would kill the connection, here it is the request's E2BIG.
    if (payload.length > PAYLOAD_MAX) throw new XsError('E2BIG', `${opName(type)} request over ${PAYLOAD_MAX} bytes`);
    const reqId = this.nextReq;
    this.nextReq = this.nextReq >= 0xffffffff ? 1 : this.nextReq + 1;
    processFrame(this.daemon, this.conn, { header: { type, reqId, txId, len: payload.length }, payload });
    return reqId;
  }

  /**
   * `request(type, payload, txId)` runs one request now (see `send`) and resolves with its reply
   * frame, which may be ERROR; rejects if the connection closes first.
   */
  request(type: number, payload: Buffer, txId = 0): Promise<ReplyFrame> {
    return new Promise((resolve, reject) => {
      // Registered under the id the request is about to get: its reply may come back at once.
      this.pending.set(this.nextReq, { resolve, reject });
      try {
        this.send(type, payload, txId);
      } catch (e) {
        this.pending.delete(this.nextReq);
        reject(e as Error);
      }
    });
  }

  /** `close()` ends the connection: its transactions and watches go, as for a closed socket. */
  close(): void {
    this.conn.close();
  }

  /**
   * One write of the connection carries every frame it queued in that turn of the event loop
   * (`ConnectionOutput.flush` joins them), so a write is split back into its frames here.
   */
  private receive(bytes: Buffer): void {
    for (let at = 0; at + HEADER_SIZE <= bytes.length; ) {
      const header = decodeHeader(bytes, at);
      const payload = bytes.subarray(at + HEADER_SIZE, at + HEADER_SIZE + header.len);
      at += HEADER_SIZE + header.len;
      if (header.type !== Op.WATCH_EVENT) {
        const p = this.pending.get(header.reqId);
        if (p !== undefined) {
          this.pending.delete(header.reqId);
          p.resolve({ header, payload });
        }
      }
      this.onFrame?.(header, payload);
    }
  }
}

/** Messages for the error codes a gateway client sees; the wire itself carries only the code. */
const MEANING: Partial<Record<string, string>> = {
  ENOENT: 'no such node',
  EACCES: 'permission denied',
  EEXIST: 'already exists',
  EINVAL: 'invalid argument',
  E2BIG: 'too big',
  ENOSPC: 'quota exceeded',
  EAGAIN: 'transaction conflicts with another commit',
  EBUSY: 'busy',
  ENOSYS: 'not supported',
  EIO: 'internal error',
  EPERM: 'not permitted',
};

/** `wireError(payload, what)` is the XsError an ERROR reply carries, with a readable message. */
export function wireError(payload: Buffer, what: string): XsError {
  const name = decodeErrorPayload(payload);
  const code = isXsErrorCode(name) ? name : 'EIO';
  return new XsError(code, `${what}: ${MEANING[code] ?? code}`);
}

/**
 * The transport of a Session: frames written by the connection are delivered synchronously;
 * there is no kernel buffer, so the connection never pauses and never counts as backlogged.
 */
class LocalTransport extends EventEmitter implements Transport {
  readonly writableLength = 0;
  readonly writableNeedDrain = false;
  private closed = false;

  constructor(
    private readonly deliver: (frames: Buffer) => void,
    private readonly onClosed?: () => void,
  ) {
    super();
  }

  write(frame: Buffer): boolean {
    if (!this.closed) this.deliver(frame);
    return true;
  }

  pause(): void {}
  resume(): void {}

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    // As a socket does: 'close' comes asynchronously, after the current request finished.
    process.nextTick(() => {
      this.emit('close');
      this.onClosed?.();
    });
  }
}
