import { HEADER_SIZE, Op, type Header } from '../../protocol/index.js';
import type { XsErrorCode } from '../../store/index.js';

/** The request an answer goes back to: a reply echoes its type, req_id and tx_id (spec §1.2). */
export type RequestId = Pick<Header, 'type' | 'reqId' | 'txId'>;

/**
 * What a connection is sent, before it is bytes: the reply to one of its requests (the payload its
 * handler made), an error naming a Xen error code, or a watch event. A socket client gets each as
 * one frame (frames.ts); a gateway session gets the answers themselves, so that it answers in
 * JSON without decoding frames of our own making.
 */
export type Answer =
  | { readonly kind: 'reply'; readonly request: RequestId; readonly payload: Buffer | string }
  | { readonly kind: 'error'; readonly request: RequestId; readonly code: XsErrorCode }
  | { readonly kind: 'event'; readonly path: string; readonly token: string };

/** Takes a connection's answers in the order the daemon sends them (gateway/session.ts). */
export type AnswerReceiver = (answer: Answer) => void;

/**
 * `eventBytes(path, token)` is the size of a watch event as a frame: header, path, token and their
 * NULs (every string here is a byte string: its length is its size). The dispatch decides on it
 * whether an event fits a message (XSA-324) and a domain's memory, before anything is built.
 */
export function eventBytes(path: string, token: string): number {
  return HEADER_SIZE + path.length + token.length + 2;
}

/** `answerBytes(answer)` is its size as a frame: what holding it costs, whoever receives it. */
export function answerBytes(a: Answer): number {
  switch (a.kind) {
    case 'reply':
      return HEADER_SIZE + a.payload.length;
    case 'error':
      return HEADER_SIZE + a.code.length + 1;
    case 'event':
      return eventBytes(a.path, a.token);
  }
}

/**
 * Replies whose content does not depend on the store: they stay true when the store is rolled
 * back (the watch was registered, or removed, all the same).
 */
export const UNAFFECTED_BY_ROLLBACK: ReadonlySet<number> = new Set([Op.WATCH, Op.UNWATCH, Op.RESET_WATCHES]);

/**
 * `lostAnswer(answer, code)` is what a held reply becomes when the commits it waited for are lost
 * (a log write failed; server/persistence/journal.ts): the request's error `code` (ENOSPC on a
 * full disk). It was computed from a version of the store that is gone: a write's OK would
 * acknowledge what was undone, a read's data (or ENOENT) would show it. Watch replies are kept,
 * and events (they are never held back as replies). The request is not run again: a client
 * retries on its error, against the durable store.
 */
export function lostAnswer(a: Answer, code: XsErrorCode): Answer {
  return a.kind === 'event' || UNAFFECTED_BY_ROLLBACK.has(a.request.type) ? a : { kind: 'error', request: a.request, code };
}
