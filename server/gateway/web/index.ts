/**
 * The live web view, as a fastify plugin: `app.register(webView)` serves the page at `/` and its
 * script and stylesheet under `/ui/`. The page itself is plain HTML/CSS/JS in `ui/` (no framework,
 * no build step); it talks to the gateway's public API only (`/v1/node`, `/v1/ws`), so it can do
 * nothing a curl user could not. The three files are public (they hold nothing of the store): a
 * browser opening the page has no token yet, and the page tells the user how to get one.
 *
 * The assets are read once at registration. tsc copies no non-TS files into dist/, so from the
 * build (`dist/server/gateway/web/index.js`) they are found in the source tree beside dist/, and
 * from the bundled daemon (a chunk in `dist/src/chunks/`, package.json `bundle`) likewise; run
 * from source (vitest) they sit next to this file.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Access } from '../access.js';

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

/** URL -> file in `ui/`, with its content type. Nothing else is served: no directory walking. */
const FILES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/ui/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/ui/style.css': ['style.css', 'text/css; charset=utf-8'],
} as const satisfies Record<string, readonly [string, string]>;

/**
 * Values are arbitrary bytes written by any client, so the page must never run what it shows: it
 * builds the DOM with textContent only, and this policy forbids inline script, foreign origins and
 * framing as a second line of defence. `connect-src 'self'` covers the same-origin WebSocket.
 */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
} as const;

/** `uiDirectory()` returns the folder holding index.html, app.js and style.css (see the header). */
export function uiDirectory(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    join(here, 'ui'),
    join(here, '..', '..', '..', '..', 'server', 'gateway', 'web', 'ui'),
    join(here, '..', '..', '..', 'server', 'gateway', 'web', 'ui'),
  ];
  const found = candidates.find((d) => existsSync(join(d, 'index.html')));
  if (found === undefined) throw new Error(`web view assets not found (looked in ${candidates.join(', ')})`);
  return found;
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [url, [file, type]] of Object.entries(FILES)) {
    const body = readFileSync(join(dir, file));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    assets.set(url, { body, type, etag });
  }
  return assets;
}

/** `webView(app)` registers `GET /`, `GET /ui/app.js` and `GET /ui/style.css`. */
export async function webView(app: FastifyInstance): Promise<void> {
  const assets = loadAssets(uiDirectory());
  for (const [url, asset] of assets) {
    app.get(url, { config: { access: 'public' satisfies Access } }, (req: FastifyRequest, reply: FastifyReply) => {
      void reply.headers(SECURITY_HEADERS).header('etag', asset.etag);
      if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send();
      return reply.type(asset.type).send(asset.body);
    });
  }
}

export default webView;
