import { HttpError } from './errors.js';
import { unauthorized, type Identity } from './identity.js';
import type { AnonymousAccess } from './settings.js';

/**
 * Who may call a route, declared on the route (`config: { access }`) and decided in the gateway's
 * `onRequest` hook, before fastify reads a byte of the body (issue 17: an unauthenticated client
 * must not make the daemon buffer and parse what it will refuse anyway).
 * - `public`: anyone; the route shows nothing of the store (health probes, the web view's files).
 * - `read`: a token, or no credentials when the gateway allows anonymous reads.
 * - `token`: any token, dom0's or a guest's (every request that changes the store, and batches:
 *   what a batch does is in its body, which is not read before this decision).
 * - `privileged`: dom0's token only (tokens, metrics of every domain).
 */
export const ACCESS = ['public', 'read', 'token', 'privileged'] as const;
export type Access = (typeof ACCESS)[number];

export { ANONYMOUS_ACCESS, type AnonymousAccess } from './settings.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route (access.ts); a route that does not say is privileged. */
    access?: Access;
  }
  interface FastifyRequest {
    /** Who the request acts as, set by the onRequest hook on every route but public ones. */
    identity: Identity;
  }
}

/** How a client without credentials gets some, in every refusal it sees. */
export const HOW_TO_AUTHENTICATE =
  'send "Authorization: Bearer <token>" (WebSocket: ?token=<token>); the privileged token is in ' +
  '<rundir>/http-token, readable by root only; `nxs token --domid N` prints a token acting as domain N';

/**
 * `authorize(identity, access, anonymous, what)` returns normally when `identity` may call a route
 * of `access`; else throws 401 (no credentials, and they are needed) or 403 (a guest asking for a
 * privileged route). `what` names the request in the message.
 */
export function authorize(identity: Identity, access: Exclude<Access, 'public'>, anonymous: AnonymousAccess, what: string): void {
  if (identity.kind === 'anonymous') {
    if (anonymous === 'none') throw unauthorized(`${what}: this gateway answers only clients with a token: ${HOW_TO_AUTHENTICATE}`);
    if (access !== 'read') throw unauthorized(`${what} needs a bearer token (without one, this gateway only reads): ${HOW_TO_AUTHENTICATE}`);
  }
  if (access === 'privileged' && identity.kind !== 'dom0') throw new HttpError(403, 'EACCES', `${what} needs the privileged token`);
}
