import type { IncomingHttpHeaders } from 'node:http';
import { HttpError } from './errors.js';
import type { ListenAddress } from './listen-address.js';

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The host name of a `Host` header or an origin's host (`name:port`, `[v6]:port`), lower case. */
function hostName(hostPort: string): string {
  const h = hostPort.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

/**
 * Browser-borne attacks on a loopback service. With --http-anonymous read a request needs no
 * token, and the web view keeps one in its tab, so a web page must not be able to make the
 * victim's browser read the store for it:
 * - DNS rebinding: a page on `evil.example` whose name now resolves to 127.0.0.1 sends requests
 *   with `Host: evil.example`. On a loopback listen, only loopback host names are answered.
 * - Cross-site WebSocket hijacking: WebSockets are not bound by the same-origin policy, so an
 *   upgrade whose `Origin` is not this server's own is refused (non-browser clients send none).
 */
export class OriginGuard {
  private readonly loopbackOnly: boolean;
  /**
   * The last Host header found to be loopback: clients send the same one on every request, so
   * the check on each request's path is one string comparison.
   */
  private lastGoodHost: string | null = null;

  constructor(addr: ListenAddress) {
    this.loopbackOnly = addr.kind === 'tcp' && isLoopback(addr.host);
  }

  /** `checkHost(headers)` throws 403 for a foreign Host on a loopback listen. */
  checkHost(headers: IncomingHttpHeaders): void {
    if (!this.loopbackOnly) return;
    const host = headers.host;
    if (host === this.lastGoodHost) return;
    if (host === undefined || !isLoopback(hostName(host))) {
      throw new HttpError(403, 'EACCES', `Host ${JSON.stringify(host ?? '')} is not this loopback server`);
    }
    this.lastGoodHost = host;
  }

  /** `checkOrigin(headers)` throws 403 when a browser's Origin is not this server. */
  checkOrigin(headers: IncomingHttpHeaders): void {
    const origin = headers.origin;
    if (origin === undefined) return;
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      throw new HttpError(403, 'EACCES', 'malformed Origin');
    }
    if (host.toLowerCase() !== (headers.host ?? '').toLowerCase()) {
      throw new HttpError(403, 'EACCES', `cross-origin WebSocket from ${origin} refused`);
    }
  }
}
