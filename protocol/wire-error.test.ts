import { describe, expect, it } from 'vitest';
import { decodeErrorPayload, encodeErrorPayload, isXsdError, XSD_ERRORS } from './wire-error.js';

describe('XSD_ERRORS', () => {
  it('is the xs_wire.h table, in order', () => {
    expect(XSD_ERRORS.indexOf('EINVAL')).toBe(0);
    expect(XSD_ERRORS.indexOf('ENOENT')).toBe(4);
    expect(XSD_ERRORS.indexOf('ENOSYS')).toBe(9);
    expect(XSD_ERRORS.indexOf('EAGAIN')).toBe(12);
    expect(XSD_ERRORS.indexOf('E2BIG')).toBe(14);
    expect(XSD_ERRORS.indexOf('EPERM')).toBe(15);
    expect(XSD_ERRORS).toHaveLength(16);
  });

  it('does not contain oxenstored EQUOTA', () => {
    expect(isXsdError('EQUOTA')).toBe(false);
    expect(isXsdError('ENOSPC')).toBe(true);
  });
});

describe('error payloads', () => {
  it('encodes the name with a trailing NUL', () => {
    expect([...encodeErrorPayload('ENOENT')]).toEqual([...Buffer.from('ENOENT'), 0]);
  });

  it('round-trips every table name', () => {
    for (const name of XSD_ERRORS) expect(decodeErrorPayload(encodeErrorPayload(name))).toBe(name);
  });

  it('decodes up to the first NUL, or the whole payload without one', () => {
    expect(decodeErrorPayload(Buffer.from('EACCES\0junk'))).toBe('EACCES');
    expect(decodeErrorPayload(Buffer.from('EACCES'))).toBe('EACCES');
    expect(decodeErrorPayload(Buffer.alloc(0))).toBe('');
  });

  it('passes unknown names through for the client to map', () => {
    expect(decodeErrorPayload(Buffer.from('EQUOTA\0'))).toBe('EQUOTA');
  });
});
