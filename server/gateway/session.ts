import { EventEmitter } from 'node:events';
import { decodeErrorPayload, decodeHeader, HEADER_SIZE, Op, opName, PAYLOAD_MAX, type Header } from '../../protocol/index.js';
import { isXsErrorCode, XsError, type Caller } from '../../store/index.js';
import type { Connection, ConnectionKind, Transport } from '../connection.js';
import type { Daemon } from '../daemon.js';
import { process as processFrame } from '../process.js';

/**
 * An in-process client of the daemon: a real `Connection` (registered, with its own transactions
 * and watches) whose transport hands every frame the daemon writes back to us instead of a
 * socket. Requests are wire frames run through `process()`, the one dispatch of the Unix sockets,
 * so HTTP and JSON WebSocket requests get exactly the permission checks, quotas, transactions and
 * watch rules of the wire protocol: there is no second code path for semantics.
 *
 * Every handler the gateway can reach answers synchronously (only INTRODUCE waits, and it is not
 * offered), so `call()` returns the reply of its own request, and a batch of calls made in one
 * tick sees one store version: nothing else runs in between.
 */
export class Session {
  readonly conn: Connection;
  private nextReq = 1;
  /** The req_id of the request being answered, 0 between calls. */
  private expecting = 0;
  private reply: { header: Header; payload: Buffer } | undefined;
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
    this.transport = new LocalTransport((frame) => this.receive(frame), onClose);
    this.conn = daemon.attach(this.transport, kind, caller);
  }

  /**
   * `call(type, payload, txId)` runs one request and returns its reply frame (which may be ERROR).
   * Throws EIO only if the daemon gave no reply, which no synchronous handler does.
   */
  call(type: number, payload: Buffer, txId = 0): { header: Header; payload: Buffer } {
    // A closed connection's requests must not run: their replies would go nowhere.
    if (this.conn.state !== 'open') throw new XsError('EIO', 'connection closed');
    // What no wire client could send (spec §1.3: a frame carries at most 4096 bytes) the gateway
    // does not send either; there it would kill the connection, here it is the request's E2BIG.
    if (payload.length > PAYLOAD_MAX) throw new XsError('E2BIG', `${opName(type)} request over ${PAYLOAD_MAX} bytes`);
    const reqId = this.nextReq;
    this.nextReq = this.nextReq >= 0xffffffff ? 1 : this.nextReq + 1;
    this.reply = undefined;
    this.expecting = reqId;
    processFrame(this.daemon, this.conn, { header: { type, reqId, txId, len: payload.length }, payload });
    const r = this.reply;
    this.reply = undefined;
    this.expecting = 0;
    if (r === undefined) throw new XsError('EIO', `no reply to ${opName(type)}`);
    return r;
  }

  /** `close()` ends the connection: its transactions and watches go, as for a closed socket. */
  close(): void {
    this.conn.close();
  }

  private receive(frame: Buffer): void {
    const header = decodeHeader(frame, 0);
    const payload = frame.subarray(HEADER_SIZE);
    if (header.type !== Op.WATCH_EVENT && header.reqId === this.expecting) this.reply = { header, payload };
    this.onFrame?.(header, payload);
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
  private closed = false;

  constructor(
    private readonly deliver: (frame: Buffer) => void,
    private readonly onClose?: () => void,
  ) {
    super();
  }

  write(frame: Buffer): boolean {
    if (!this.closed) this.deliver(frame);
    return true;
  }

  pause(): void {}
  resume(): void {}
  cork(): void {}
  uncork(): void {}

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    // As a socket does: 'close' comes asynchronously, after the current request finished.
    process.nextTick(() => {
      this.emit('close');
      this.onClose?.();
    });
  }
}
