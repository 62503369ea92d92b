import { XSD_ERRORS, type XsdErrorName } from './wire-error.js';

/**
 * The one error type of nxenstored. Its `code` is the Xen error name that goes on the wire
 * (xs_wire.h `xsd_errors[]`, spec §2.1); the table itself is the protocol's, so the names cannot
 * drift apart. Rule violations are thrown as `XsError`; expected misses (a node that is not there
 * when the caller only asks whether it is) are plain values.
 *
 * Where the two Xen daemons answer differently we use cxenstored's codes (spec §15): oxenstored's
 * EQUOTA is not in Xen's table, so libxenstore would turn it into EINVAL; we never send it.
 *
 * It lives in protocol/ beside the table, so that the store, the server and the client library
 * share it without loading each other: the store and the clients need the codes, not the engine.
 */
export const XS_ERROR_CODES = XSD_ERRORS;

export type XsErrorCode = XsdErrorName;

export class XsError extends Error {
  override readonly name = 'XsError';
  constructor(
    readonly code: XsErrorCode,
    message?: string,
  ) {
    super(message ?? code);
  }
}

/** `isXsErrorCode(s)` is true when `s` is one of the names above. */
export function isXsErrorCode(s: string): s is XsErrorCode {
  return (XS_ERROR_CODES as readonly string[]).includes(s);
}
