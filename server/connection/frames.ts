import { decodeHeader, encodeErrorPayload, encodeFrame, Op, replyPayload } from '../../protocol/index.js';
import type { XsErrorCode } from '../../store/index.js';
import { UNAFFECTED_BY_ROLLBACK, type RequestId } from './answer.js';

/**
 * The one place where the server's answers become bytes: a reply payload, an error, a watch event,
 * each into one frame (spec §1.2). A reply echoes its request's type, req_id and tx_id. The
 * dispatch has checked that each fits a message (spec §1.4, XSA-324).
 */

/** `replyFrame(request, payload)`: the reply. */
export function replyFrame(request: RequestId, payload: Buffer | string): Buffer {
  return encodeFrame(request.type, request.reqId, request.txId, payload);
}

/** `errorFrame(request, code)`: an ERROR frame naming `code` (`ENOENT\0`). */
export function errorFrame(request: RequestId, code: XsErrorCode): Buffer {
  return encodeFrame(Op.ERROR, request.reqId, request.txId, encodeErrorPayload(code));
}

/** `eventFrame(path, token)`: a WATCH_EVENT. */
export function eventFrame(path: string, token: string): Buffer {
  return encodeFrame(Op.WATCH_EVENT, 0, 0, replyPayload.watchEvent(path, token));
}

/** `lostReply(frame, code)`: answer.ts `lostAnswer` for a reply (or error) already made into a frame. */
export function lostReply(frame: Buffer, code: XsErrorCode): Buffer {
  const h = decodeHeader(frame, 0);
  return UNAFFECTED_BY_ROLLBACK.has(h.type) ? frame : errorFrame(h, code);
}
