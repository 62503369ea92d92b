import { ZodError } from 'zod';
import { XsError, type XsErrorCode } from '../../store/index.js';

/**
 * HTTP statuses of the Xen error codes (the gateway API contract), in one table as fastify keeps
 * its errors in `lib/errors.js`: every error a route throws becomes `{ error, message }` here and
 * nowhere else, never with a stack trace.
 */
export const STATUS = {
  EINVAL: 400,
  EACCES: 403,
  EPERM: 403,
  ENOENT: 404,
  EEXIST: 409,
  EISDIR: 409,
  ENOTEMPTY: 409,
  EISCONN: 409,
  EAGAIN: 409,
  E2BIG: 413,
  ENOSPC: 429,
  ENOMEM: 503,
  EBUSY: 503,
  EROFS: 403,
  ENOSYS: 501,
  EIO: 500,
} as const satisfies Record<XsErrorCode, number>;

/** A refusal decided by the gateway itself (authentication), with its own status. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: XsErrorCode,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

export interface ErrorBody {
  readonly error: XsErrorCode;
  readonly message: string;
}

/**
 * `toHttpError(e)` is the status and body for anything a route threw; `unexpected` is true for
 * errors that are bugs (logged by the caller, answered EIO without detail).
 */
export function toHttpError(e: unknown): { status: number; body: ErrorBody; headers: Record<string, string>; unexpected: boolean } {
  if (e instanceof HttpError) return { status: e.status, body: { error: e.code, message: e.message }, headers: { ...e.headers }, unexpected: false };
  if (e instanceof XsError) return { status: STATUS[e.code], body: { error: e.code, message: e.message }, headers: {}, unexpected: false };
  if (e instanceof ZodError) return { status: 400, body: { error: 'EINVAL', message: describeZod(e) }, headers: {}, unexpected: false };
  // fastify's own client errors (bad JSON, body too large, wrong content type) carry a status.
  const status = (e as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const message = e instanceof Error ? e.message : 'bad request';
    return { status, body: { error: status === 413 ? 'E2BIG' : 'EINVAL', message }, headers: {}, unexpected: false };
  }
  return { status: 500, body: { error: 'EIO', message: 'internal error' }, headers: {}, unexpected: true };
}

/** `describeZod(e)` is one line naming each bad field, e.g. `value: expected string`. */
export function describeZod(e: ZodError): string {
  return e.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}
