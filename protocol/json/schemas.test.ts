import { describe, expect, it } from 'vitest';
import { eventSchema, replySchema, requestSchema, serverMessageSchema, VALUE_TEXT_MAX } from './schemas.js';

const ok = (v: unknown): boolean => requestSchema.safeParse(v).success;

describe('requestSchema', () => {
  it('accepts well-formed requests', () => {
    const valid: unknown[] = [
      { id: 1, op: 'read', path: '/a' },
      { id: 'r1', op: 'read', path: 'rel', tx: 3, encoding: 'base64' },
      { id: 2, op: 'write', path: '/a', value: '' },
      { id: 3, op: 'write', path: '/a', value: 'AP8=', encoding: 'base64', tx: 1 },
      { id: 4, op: 'mkdir', path: '/a' },
      { id: 5, op: 'rm', path: '/a', tx: 0 },
      { id: 6, op: 'directory', path: '/' },
      { id: 7, op: 'get-perms', path: '/a' },
      { id: 8, op: 'set-perms', path: '/a', perms: ['n0', 'r5', 'b65535'] },
      { id: 9, op: 'watch', path: '@introduceDomain', token: 't' },
      { id: 10, op: 'unwatch', path: '/a', token: '' },
      { id: 11, op: 'reset-watches' },
      { id: 12, op: 'transaction-start' },
      { id: 13, op: 'transaction-end', tx: 4, commit: false },
      { id: 14, op: 'get-domain-path', domid: 7 },
    ];
    for (const v of valid) expect(requestSchema.safeParse(v).error).toBeUndefined();
  });

  it('infers a type narrowed by op', () => {
    const r = requestSchema.parse({ id: 1, op: 'transaction-end', tx: 2, commit: true });
    expect(r.op === 'transaction-end' && r.commit).toBe(true);
  });

  it('rejects unknown ops and missing or misspelt fields', () => {
    expect(ok({ id: 1, op: 'introduce', domid: 1 })).toBe(false);
    expect(ok({ op: 'read', path: '/a' })).toBe(false);
    expect(ok({ id: 1, op: 'read' })).toBe(false);
    expect(ok({ id: 1, op: 'read', path: '' })).toBe(false);
    expect(ok({ id: 1, op: 'write', path: '/a' })).toBe(false);
    expect(ok({ id: 1, op: 'transaction-end', tx: 2, comit: true })).toBe(false);
    expect(ok({ id: 1, op: 'transaction-end', tx: 2 })).toBe(false);
    expect(ok({ id: 1.5, op: 'read', path: '/a' })).toBe(false);
  });

  it('accepts tx only where the wire honours it (spec §9.1)', () => {
    expect(ok({ id: 1, op: 'watch', path: '/a', token: 't', tx: 2 })).toBe(false);
    expect(ok({ id: 1, op: 'transaction-start', tx: 2 })).toBe(false);
    expect(ok({ id: 1, op: 'transaction-end', tx: 0, commit: true })).toBe(false);
    expect(ok({ id: 1, op: 'read', path: '/a', tx: -1 })).toBe(false);
    expect(ok({ id: 1, op: 'read', path: '/a', tx: 2 ** 32 })).toBe(false);
  });

  it('checks values, perms and domids', () => {
    expect(ok({ id: 1, op: 'write', path: '/a', value: 'not base64!', encoding: 'base64' })).toBe(false);
    expect(ok({ id: 1, op: 'write', path: '/a', value: 'x', encoding: 'latin1' })).toBe(false);
    expect(ok({ id: 1, op: 'write', path: '/a', value: 'x'.repeat(VALUE_TEXT_MAX + 1) })).toBe(false);
    expect(ok({ id: 1, op: 'set-perms', path: '/a', perms: [] })).toBe(false);
    expect(ok({ id: 1, op: 'set-perms', path: '/a', perms: ['x0'] })).toBe(false);
    expect(ok({ id: 1, op: 'set-perms', path: '/a', perms: ['r'] })).toBe(false);
    expect(ok({ id: 1, op: 'get-domain-path', domid: 65536 })).toBe(false);
  });
});

describe('replySchema', () => {
  it('accepts success and error replies', () => {
    for (const v of [
      { id: 1, ok: true },
      { id: 1, ok: true, result: { value: 'v', encoding: 'utf8' } },
      { id: 1, ok: true, result: ['a', 'b'] },
      { id: 'x', ok: true, result: { tx: 7 } },
      { id: 'x', ok: true, result: '/local/domain/7' },
      { id: 1, ok: false, error: 'ENOENT', message: 'no such node' },
      { id: null, ok: false, error: 'EINVAL', message: 'not JSON' },
    ]) {
      expect(replySchema.safeParse(v).error).toBeUndefined();
    }
  });

  it('rejects error names outside the Xen table and mixed shapes', () => {
    expect(replySchema.safeParse({ id: 1, ok: false, error: 'EQUOTA' }).success).toBe(false);
    expect(replySchema.safeParse({ id: 1, ok: false }).success).toBe(false);
    expect(replySchema.safeParse({ id: 1, ok: false, error: 'ENOENT' }).success).toBe(false);
    expect(replySchema.safeParse({ id: null, ok: true }).success).toBe(false);
    expect(replySchema.safeParse({ id: 1, ok: true, result: { value: 'v' } }).success).toBe(false);
    expect(replySchema.safeParse({ id: 1, ok: true, error: 'ENOENT' }).success).toBe(false);
  });
});

describe('eventSchema', () => {
  it('accepts watch events only', () => {
    expect(eventSchema.safeParse({ event: 'watch', path: '/a', token: 't' }).success).toBe(true);
    expect(eventSchema.safeParse({ event: 'watch', path: '/a' }).success).toBe(false);
    expect(eventSchema.safeParse({ event: 'other', path: '/a', token: 't' }).success).toBe(false);
  });

  it('is one of the server messages, beside replies', () => {
    expect(serverMessageSchema.safeParse({ event: 'watch', path: '/a', token: 't' }).success).toBe(true);
    expect(serverMessageSchema.safeParse({ id: 1, ok: true }).success).toBe(true);
    expect(serverMessageSchema.safeParse({ id: 1 }).success).toBe(false);
  });
});
