import { decodeHeader, encodeErrorPayload, encodeFrame, Op, PAYLOAD_MAX, replyPayload, type Header } from '../../protocol/index.js';
import type { XsErrorCode } from '../../store/index.js';

/**
 * The one place where the server's answers become bytes: a reply payload, an error, a watch event,
 * each into one frame (spec §1.2). A reply echoes its request's type, req_id and tx_id.
 */
type RequestId = Pick<Header, 'type' | 'reqId' | 'txId'>;

/** `replyFrame(request, payload)`: the reply; the caller has checked that it fits a message. */
export function replyFrame(request: RequestId, payload: Buffer | string): Buffer {
  return encodeFrame(request.type, request.reqId, request.txId, payload);
}

/** `errorFrame(request, code)`: an ERROR frame naming `code` (`ENOENT\0`). */
export function errorFrame(request: RequestId, code: XsErrorCode): Buffer {
  return encodeFrame(Op.ERROR, request.reqId, request.txId, encodeErrorPayload(code));
}

/** `eventFrame(path, token)`: a WATCH_EVENT, or undefined when it would not fit a message (XSA-324). */
export function eventFrame(path: string, token: string): Buffer | undefined {
  const payload = replyPayload.watchEvent(path, token);
  return payload.length > PAYLOAD_MAX ? undefined : encodeFrame(Op.WATCH_EVENT, 0, 0, payload);
}

/**
 * Replies whose content does not depend on the store: they stay true when the store is rolled
 * back (the watch was registered, or removed, all the same).
 */
const UNAFFECTED_BY_ROLLBACK: ReadonlySet<number> = new Set([Op.WATCH, Op.UNWATCH, Op.RESET_WATCHES]);

/**
 * `lostReply(frame, code)` is what a held reply becomes when the commits it waited for are lost
 * (a log write failed; server/persistence/journal.ts): the request's error `code` (ENOSPC on a
 * full disk), with its req_id and tx_id. It was computed from a version of the store that is gone:
 * a write's OK would acknowledge what was undone, a read's data would show it. Watch replies are
 * kept. The request is not run again: a client retries on its error, against the durable store.
 */
export function lostReply(frame: Buffer, code: XsErrorCode): Buffer {
  const h = decodeHeader(frame, 0);
  return UNAFFECTED_BY_ROLLBACK.has(h.type) ? frame : errorFrame(h, code);
}
