/**
 * Error replies (spec §2.1): type ERROR (16), payload = errno name + NUL, e.g. `ENOENT\0`.
 */

/**
 * The names a client can decode, in xs_wire.h `xsd_errors[]` order (new ones are appended
 * upstream, so the order is stable). oxenstored also sends `EQUOTA`, which is NOT here:
 * libxenstore turns it into EINVAL, so the server should use the cxenstored codes
 * (ENOSPC, E2BIG) instead (spec §2.1, §15).
 */
export const XSD_ERRORS = [
  'EINVAL',
  'EACCES',
  'EEXIST',
  'EISDIR',
  'ENOENT',
  'ENOMEM',
  'ENOSPC',
  'EIO',
  'ENOTEMPTY',
  'ENOSYS',
  'EROFS',
  'EBUSY',
  'EAGAIN',
  'EISCONN',
  'E2BIG',
  'EPERM',
] as const;

export type XsdErrorName = (typeof XSD_ERRORS)[number];

const known: ReadonlySet<string> = new Set(XSD_ERRORS);

/** `isXsdError(s)` is true iff `s` is in the official table (so false for `EQUOTA`). */
export function isXsdError(s: string): s is XsdErrorName {
  return known.has(s);
}

/**
 * `encodeErrorPayload(name)` returns `name\0`. Any name is encoded as given (an oxenstored
 * compatibility mode may want `EQUOTA`); only server/connection/frames.ts should call this.
 */
export function encodeErrorPayload(name: string): Buffer {
  return Buffer.from(`${name}\0`, 'latin1');
}

/**
 * `decodeErrorPayload(payload)` returns the name up to the first NUL (or the whole payload
 * if there is none). Unknown names come back as-is: the client decides how to map them
 * (libxenstore `get_error` maps unknown to EINVAL).
 */
export function decodeErrorPayload(payload: Buffer): string {
  const end = payload.indexOf(0);
  return payload.toString('latin1', 0, end < 0 ? payload.length : end);
}
