import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { XS_ERROR_CODES, XsError } from '../../store/index.js';
import { HttpError, STATUS, toHttpError } from './errors.js';

describe('toHttpError', () => {
  it('has a status for every Xen error code, as the API contract says', () => {
    for (const code of XS_ERROR_CODES) expect(STATUS[code], code).toBeGreaterThanOrEqual(400);
    expect(STATUS).toMatchObject({ ENOENT: 404, EACCES: 403, EPERM: 403, EAGAIN: 409, E2BIG: 413, EINVAL: 400, ENOSPC: 429, EBUSY: 503 });
  });

  it('maps store errors, validation errors, auth errors and fastify client errors', () => {
    expect(toHttpError(new XsError('EAGAIN', 'conflict'))).toMatchObject({ status: 409, body: { error: 'EAGAIN', message: 'conflict' } });
    const zod = z.strictObject({ value: z.string() }).safeParse({ value: 1 }).error!;
    expect(toHttpError(zod)).toMatchObject({ status: 400, body: { error: 'EINVAL', message: expect.stringMatching(/^value: /) } });
    expect(toHttpError(new HttpError(401, 'EACCES', 'who?', { 'www-authenticate': 'Bearer' }))).toMatchObject({
      status: 401,
      headers: { 'www-authenticate': 'Bearer' },
    });
    expect(toHttpError(Object.assign(new Error('too large'), { statusCode: 413 }))).toMatchObject({ status: 413, body: { error: 'E2BIG' } });
    expect(toHttpError(Object.assign(new Error('bad json'), { statusCode: 400 }))).toMatchObject({ status: 400, body: { error: 'EINVAL' } });
  });

  it('answers anything else EIO 500 without detail, flagged for the log', () => {
    const r = toHttpError(new TypeError('x is undefined'));
    expect(r).toEqual({ status: 500, body: { error: 'EIO', message: 'internal error' }, headers: {}, unexpected: true });
  });
});
