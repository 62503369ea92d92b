import { randomBytes, timingSafeEqual } from 'node:crypto';
import { DOM0, guest, type Caller } from '../../store/index.js';
import { HttpError } from './errors.js';

/**
 * Who a gateway request acts as. No credentials: anonymous, refused unless the gateway allows
 * anonymous reads (access.ts), and then an unprivileged domain that may only read. The
 * privileged token: dom0. A guest token: unprivileged domain N, with its permissions and quotas.
 */
export type Identity =
  | { readonly kind: 'anonymous' }
  | { readonly kind: 'dom0' }
  | { readonly kind: 'guest'; readonly domid: number };

export const ANONYMOUS: Identity = Object.freeze({ kind: 'anonymous' });
const DOM0_IDENTITY: Identity = Object.freeze({ kind: 'dom0' });

/**
 * The domain an anonymous client acts as: 0x10000, one past the largest domid (Xen's domid_t is
 * 16 bits). No permission entry can name it (the wire's domids are 0..65535, store/perms.ts), so
 * it owns nothing and no ACL grants it anything: it reads exactly the nodes whose entry 0 grants
 * read to every domain. No INTRODUCE can name it either (guests are below 0x7FF0), so it never has
 * a domain socket, quota overrides, a SET_TARGET or a RELEASE that could change what it may do.
 * A reserved id such as DOMID_INVALID (0x7FF4) would not do: a permission list may name it.
 */
export const ANONYMOUS_DOMID = 0x10000;

/**
 * Unprivileged (the permission checks and the XSA-115 watch filter apply) and read-only (every
 * request that writes is EACCES before it runs, server/dispatch/process.ts), whatever the route.
 */
const ANONYMOUS_CALLER: Caller = Object.freeze({ domid: ANONYMOUS_DOMID, privileged: false, readOnly: true });

/**
 * `callerOf(identity, domain)` is the store's Caller; `domain` is the guest's introduced domain, if
 * any: its SET_TARGET and its Xen 4.22 features apply to its HTTP clients as to its socket ones.
 */
export function callerOf(identity: Identity, domain?: { readonly target: number | undefined; readonly features: number }): Caller {
  if (identity.kind === 'anonymous') return ANONYMOUS_CALLER;
  if (identity.kind === 'dom0') return DOM0;
  return guest(identity.domid, domain?.target, domain?.features);
}

/** A stable key per identity, for pooling one session per identity. */
export function identityKey(identity: Identity): string {
  return identity.kind === 'guest' ? `guest:${identity.domid}` : identity.kind;
}

const BEARER = /^Bearer ([A-Za-z0-9_-]{1,128})$/;

/**
 * The tokens the gateway accepts: one privileged token, made at start and written to
 * `<rundir>/http-token` by the caller, and guest tokens issued at run time (in memory only: they
 * die with the daemon, but a live update hands them to the next process). Tokens are 32 random
 * bytes, base64url.
 */
export class Tokens {
  readonly privileged: string;
  private readonly privilegedBytes: Buffer;
  private readonly guests = new Map<string, number>();

  /** `guests`: tokens a live update's previous process had issued, as `guestTokens()` gave them. */
  constructor(privileged = newToken(), guests: Iterable<readonly [string, number]> = []) {
    this.privileged = privileged;
    this.privilegedBytes = Buffer.from(privileged);
    for (const [token, domid] of guests) this.guests.set(token, domid);
  }

  /** Every guest token with its domain, for the next process of a live update. */
  guestTokens(): [string, number][] {
    return [...this.guests];
  }

  /** `issue(domid)` returns a fresh token acting as guest `domid`. */
  issue(domid: number): string {
    const token = newToken();
    this.guests.set(token, domid);
    return token;
  }

  /** `revoke(token)` forgets a guest token; true if it was known. */
  revoke(token: string): boolean {
    return this.guests.delete(token);
  }

  /** `revokeDomain(domid)` forgets every guest token of a domain (it was released). */
  revokeDomain(domid: number): number {
    let n = 0;
    for (const [token, d] of this.guests) if (d === domid && this.guests.delete(token)) n++;
    return n;
  }

  /**
   * `identify(authorization, queryToken)` reads `Authorization: Bearer <token>` (or, for
   * WebSockets, which browsers cannot give headers, `?token=`). None: anonymous. A malformed
   * header or an unknown token is 401: a client that tried to authenticate must learn it failed,
   * not silently get fewer rights.
   */
  identify(authorization: string | undefined, queryToken?: string): Identity {
    let token: string | undefined;
    if (authorization !== undefined) {
      const m = BEARER.exec(authorization);
      if (m === null) throw unauthorized('malformed Authorization header (expected "Bearer <token>")');
      token = m[1]!;
    } else if (queryToken !== undefined) {
      token = queryToken;
    }
    if (token === undefined) return ANONYMOUS;
    const b = Buffer.from(token);
    if (b.length === this.privilegedBytes.length && timingSafeEqual(b, this.privilegedBytes)) return DOM0_IDENTITY;
    const domid = this.guests.get(token);
    if (domid === undefined) throw unauthorized('unknown token');
    return { kind: 'guest', domid };
  }
}

function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export function unauthorized(message: string): HttpError {
  return new HttpError(401, 'EACCES', message, { 'www-authenticate': 'Bearer realm="nxenstored"' });
}
