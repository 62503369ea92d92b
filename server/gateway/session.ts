import { EventEmitter } from 'node:events';
import { opName, PAYLOAD_MAX } from '../../protocol/index.js';
import { XsError, type Caller, type XsErrorCode } from '../../store/index.js';
import type { Answer, Connection, ConnectionKind } from '../connection/index.js';
import type { Transport } from '../transport/index.js';
import type { Daemon } from '../daemon.js';

/** The answer to one request: its reply payload, or the Xen error it failed with. */
export type RequestAnswer = Extract<Answer, { kind: 'reply' | 'error' }>;

/**
 * An in-process client of the daemon: a real `Connection` (registered, with its own transactions
 * and watches) that hands its requests in whole and takes its answers as they are, not as frames.
 * Its requests pass the connection's pump like a socket client's, so HTTP and JSON WebSocket
 * requests get exactly its admission (live update), ordering, permission checks, quotas,
 * transactions and watch rules: there is no second code path for semantics.
 *
 * A request runs when it is sent unless something holds the connection's input (a reply awaited,
 * a live update), so requests sent one after another in the same tick see one store version; its
 * answer may come back at once or later (held for the disk), so answers are awaited, by req_id.
 */
export class Session {
  readonly conn: Connection;
  private nextReq = 1;
  private readonly pending = new Map<number, { resolve: (a: RequestAnswer) => void; reject: (e: Error) => void }>();

  /**
   * `onAnswer(answer)`, when given, sees every answer the daemon sends this session in order:
   * replies, errors and watch events. `onClose` runs when the connection ends, whoever ended it
   * (the daemon closes a released domain's connections).
   */
  constructor(
    daemon: Daemon,
    kind: ConnectionKind,
    caller: Caller,
    private readonly onAnswer?: (answer: Answer) => void,
    onClose?: () => void,
  ) {
    const transport = new SessionTransport(() => {
      for (const p of this.pending.values()) p.reject(new XsError('EIO', 'connection closed'));
      this.pending.clear();
      onClose?.();
    });
    this.conn = daemon.attach(transport, kind, caller, (a) => this.receive(a));
  }

  /**
   * `send(type, payload, txId)` submits one request and returns its req_id; the answer comes
   * through `onAnswer`. Throws (and submits nothing) on a closed connection or an oversized payload.
   */
  send(type: number, payload: Buffer, txId = 0): number {
    // A closed connection's requests must not run: their replies would go nowhere.
    if (this.conn.state !== 'open') throw new XsError('EIO', 'connection closed');
    // What no wire client could send (spec §1.3: a frame carries at most 4096 bytes) the gateway
    // does not send either; there it would kill the connection, here it is the request's E2BIG.
    if (payload.length > PAYLOAD_MAX) throw new XsError('E2BIG', `${opName(type)} request over ${PAYLOAD_MAX} bytes`);
    const reqId = this.nextReq;
    this.nextReq = this.nextReq >= 0xffffffff ? 1 : this.nextReq + 1;
    this.conn.submit({ header: { type, reqId, txId, len: payload.length }, payload });
    return reqId;
  }

  /**
   * `request(type, payload, txId)` submits one request (see `send`) and resolves with its answer,
   * which may be an error; rejects if the connection closes first.
   */
  request(type: number, payload: Buffer, txId = 0): Promise<RequestAnswer> {
    return new Promise((resolve, reject) => {
      // Registered under the id the request is about to get: its answer may come back at once.
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

  private receive(answer: Answer): void {
    if (answer.kind !== 'event') {
      const reqId = answer.request.reqId;
      const p = this.pending.get(reqId);
      if (p !== undefined) {
        this.pending.delete(reqId);
        p.resolve(answer);
      }
    }
    this.onAnswer?.(answer);
  }
}

/** `payloadOf(reply)` is a reply's payload as bytes (a handler may make it a byte string). */
export function payloadOf(reply: Extract<Answer, { kind: 'reply' }>): Buffer {
  return typeof reply.payload === 'string' ? Buffer.from(reply.payload, 'latin1') : reply.payload;
}

/** Messages for the error codes a gateway client sees; the wire itself carries only the code. */
const MEANING: Partial<Record<XsErrorCode, string>> = {
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

/** `answerError(code, what)` is the XsError an error answer stands for, with a readable message. */
export function answerError(code: XsErrorCode, what: string): XsError {
  return new XsError(code, `${what}: ${MEANING[code] ?? code}`);
}

/**
 * The transport under a Session: no bytes pass it (requests come whole, answers go as they are),
 * so it never pauses and never counts as backlogged; it carries only the connection's end.
 */
class SessionTransport extends EventEmitter implements Transport {
  readonly writableLength = 0;
  readonly writableNeedDrain = false;
  private closed = false;

  constructor(private readonly onClosed: () => void) {
    super();
  }

  /** Never called: a session's connection has an answer outlet, not a frame one. */
  write(): boolean {
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
      this.onClosed();
    });
  }
}
