/**
 * The HTTP and WebSocket gateway: one fastify instance in the daemon, off unless `--http` is
 * given. It shares the store, the watch registry and the permission checks with the Unix sockets
 * by being a client of the same dispatch (see session.ts): no second code path for semantics.
 *
 * This surface loads nothing heavy: the application (app.ts, with fastify, ws and zod) is
 * imported by `startGateway` when a gateway is started, so that a daemon without `--http`, and
 * every daemon before its first reply, never loads them (issue 16).
 */
import type { GatewayHandle } from './app.js';
import type { GatewaySettings } from './settings.js';
import type { Daemon } from '../daemon.js';

export { parseListenAddress, formatUrl, DEFAULT_HTTP_HOST, type ListenAddress } from './listen-address.js';
export { ANONYMOUS_ACCESS, type AnonymousAccess, type GatewaySettings } from './settings.js';
export type { GatewayHandle } from './app.js';
export type { Identity } from './identity.js';

/**
 * `startGateway(daemon, settings, rundir, privileged?, guests?)`: app.ts `startGateway`, loaded
 * on first use.
 */
export async function startGateway(
  daemon: Daemon,
  settings: GatewaySettings,
  rundir: string,
  privileged?: string,
  guests?: Iterable<readonly [string, number]>,
): Promise<GatewayHandle> {
  const app = await import('./app.js');
  return app.startGateway(daemon, settings, rundir, privileged, guests);
}
