import { replyPayload, type Header } from '../../protocol/index.js';
import { XsError, type Limits, type Transaction, type XsErrorCode } from '../../store/index.js';
import type { Connection } from '../connection/index.js';
import type { ConnDelivery, Outcome } from './outcome.js';
import type { Ports } from './ports.js';

/** Everything a handler may use to answer one request: `port` is what it may ask of the daemon. */
export interface RequestContext<P = Ports> {
  readonly port: P;
  readonly conn: Connection;
  readonly header: Header;
  /** The transaction named by the header's tx_id, for handlers that run inside one. */
  readonly tx: Transaction | undefined;
  readonly limits: Limits;
}

/**
 * A successful answer: the reply payload (a byte string or bytes), after the watch events the
 * request caused (dispatch/outcome.ts). Failures are thrown XsErrors, or, for an expected one
 * a guest can ask for at will, `refused` (answered without an Error made).
 */
export type Reply = Outcome<{
  readonly payload: Buffer | string;
  /** The Xen error to answer instead of the payload. */
  readonly refused?: XsErrorCode;
  /** WATCH's initial event, which follows its OK (spec §8.1). */
  readonly initial?: ConnDelivery;
}>;

export type Handler<P = Ports> = (ctx: RequestContext<P>, payload: Buffer) => Reply | Promise<Reply>;

/**
 * How the dispatcher treats a message type before calling its handler:
 * - `privileged`: only privileged connections (spec §2 "priv only"), else EACCES;
 * - `writes`: refused with EACCES on `socket_ro` (Xen ≤ 4.14 read-only semantics, spec §1.1);
 * - `tx`: 'use' runs inside the header's transaction; 'ignore' never looks at tx_id (WATCH,
 *   UNWATCH, RESET_WATCHES: XSA-115, XSA-484); 'check' answers ENOENT for an unknown tx_id.
 */
export interface HandlerSpec {
  readonly handle: Handler;
  readonly privileged?: boolean;
  readonly writes?: boolean;
  readonly tx: 'use' | 'ignore' | 'check';
}

export const OK_REPLY: Reply = Object.freeze({ payload: replyPayload.ok() });

/** OK, after the watch events the request caused; the shared OK_REPLY when it caused none. */
export function ok(deliveries: readonly ConnDelivery[] | undefined): Reply {
  return deliveries === undefined || deliveries.length === 0 ? OK_REPLY : { payload: OK_REPLY.payload, deliveries };
}

/** `required(x)` is `x`, or EINVAL for a malformed payload (spec §5: "malformed payload"). */
export function required<T>(x: T | undefined, what = 'malformed payload'): T {
  if (x === undefined) throw new XsError('EINVAL', what);
  return x;
}
