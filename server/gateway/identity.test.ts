import { describe, expect, it } from 'vitest';
import { HttpError } from './errors.js';
import { ANONYMOUS_DOMID, callerOf, Tokens } from './identity.js';

describe('Tokens', () => {
  const t = new Tokens();

  it('makes no header anonymous, the privileged token dom0, a guest token its domain', () => {
    expect(t.identify(undefined)).toEqual({ kind: 'anonymous' });
    expect(t.identify(`Bearer ${t.privileged}`)).toEqual({ kind: 'dom0' });
    const g = t.issue(7);
    expect(g).not.toBe(t.issue(7)); // every token is fresh
    expect(t.identify(`Bearer ${g}`)).toEqual({ kind: 'guest', domid: 7 });
    expect(t.identify(undefined, g)).toEqual({ kind: 'guest', domid: 7 }); // ?token= (WebSocket)
  });

  it('answers 401 for an unknown token or a malformed header, never a lesser identity', () => {
    for (const h of ['Bearer nope', 'Basic abc', 'Bearer', `bearer ${t.privileged}`, `Bearer ${t.privileged} x`]) {
      expect(() => t.identify(h), h).toThrow(HttpError);
      try {
        t.identify(h);
      } catch (e) {
        expect((e as HttpError).status).toBe(401);
      }
    }
    expect(() => t.identify(undefined, 'nope')).toThrow(HttpError);
  });

  it('hands its guest tokens to a successor (live update), which accepts them as the same guests', () => {
    const a = new Tokens();
    const g5 = a.issue(5);
    const g9 = a.issue(9);
    const b = new Tokens(a.privileged, a.guestTokens());
    expect(b.identify(`Bearer ${g5}`)).toEqual({ kind: 'guest', domid: 5 });
    expect(b.identify(`Bearer ${g9}`)).toEqual({ kind: 'guest', domid: 9 });
    expect(b.identify(`Bearer ${a.privileged}`)).toEqual({ kind: 'dom0' });
    expect(new Tokens().guestTokens()).toEqual([]);
  });

  it('forgets a revoked token, and only that one', () => {
    const a = t.issue(3);
    const b = t.issue(3);
    expect(t.revoke(a)).toBe(true);
    expect(t.revoke(a)).toBe(false);
    expect(() => t.identify(`Bearer ${a}`)).toThrow(HttpError);
    expect(t.identify(`Bearer ${b}`)).toEqual({ kind: 'guest', domid: 3 });
  });

  it('maps identities to store callers', () => {
    // Anonymous: an unprivileged, read-only domain that no permission entry can name (domids on
    // the wire are 0..65535), so that only nodes everyone may read are readable.
    expect(callerOf({ kind: 'anonymous' })).toEqual({ domid: ANONYMOUS_DOMID, privileged: false, readOnly: true });
    expect(ANONYMOUS_DOMID).toBeGreaterThan(0xffff);
    expect(callerOf({ kind: 'dom0' })).toMatchObject({ domid: 0, privileged: true });
    expect(callerOf({ kind: 'guest', domid: 4 }, { target: 2, features: 4 })).toMatchObject({ domid: 4, privileged: false, target: 2, features: 4 });
  });
});
