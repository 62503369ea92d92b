import { randomBytes, timingSafeEqual } from 'node:crypto';
import { DOM0, guest, type Caller } from '../../store/index.js';
import { HttpError } from './errors.js';

/**
 * Who a gateway request acts as. No credentials: a read-only client (socket_ro semantics:
 * privileged reads, no writes). The privileged token: dom0. A guest token: unprivileged domain N,
 * with its permissions and quotas.
 */
export type Identity =
  | { readonly kind: 'read-only' }
  | { readonly kind: 'dom0' }
  | { readonly kind: 'guest'; readonly domid: number };

export const READ_ONLY: Identity = Object.freeze({ kind: 'read-only' });
const DOM0_IDENTITY: Identity = Object.freeze({ kind: 'dom0' });
const RO_CALLER: Caller = Object.freeze({ domid: 0, privileged: true, readOnly: true });

/** `callerOf(identity, target)` is the store's Caller; `target` is a guest's SET_TARGET, if any. */
export function callerOf(identity: Identity, target?: number): Caller {
  if (identity.kind === 'read-only') return RO_CALLER;
  if (identity.kind === 'dom0') return DOM0;
  return guest(identity.domid, target);
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
   * WebSockets, which browsers cannot give headers, `?token=`). None: read-only. A malformed
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
    if (token === undefined) return READ_ONLY;
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

/** `requireToken(identity, what)` is 401 for the read-only identity: `what` needs a token. */
export function requireToken(identity: Identity, what: string): void {
  if (identity.kind === 'read-only') throw unauthorized(`${what} needs a bearer token`);
}

/** `requirePrivileged(identity, what)` is 401 without a token, 403 for a guest token. */
export function requirePrivileged(identity: Identity, what: string): void {
  requireToken(identity, what);
  if (identity.kind !== 'dom0') throw new HttpError(403, 'EACCES', `${what} needs the privileged token`);
}
