/**
 * The web view plugin on its own (fastify inject, no browser): what it serves, with which headers,
 * and that it finds its files both from source and from the build. The page's behaviour is tested
 * in a real browser in test/browser/web-view.test.ts.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { uiDirectory, webView } from './index.js';

async function app() {
  const a = Fastify();
  await a.register(webView);
  return a;
}

describe('web view plugin', () => {
  it('finds index.html, app.js and style.css', () => {
    const dir = uiDirectory();
    for (const f of ['index.html', 'app.js', 'style.css']) expect(existsSync(join(dir, f)), f).toBe(true);
  });

  it('serves the page at / and its assets under /ui/, each with its type and a strict CSP', async () => {
    const a = await app();
    const cases = [
      ['/', /^text\/html/, '<script type="module" src="/ui/app.js">'],
      ['/ui/app.js', /^text\/javascript/, 'textContent'],
      ['/ui/style.css', /^text\/css/, '[hidden]'],
    ] as const;
    for (const [url, type, body] of cases) {
      const r = await a.inject({ url });
      expect(r.statusCode, url).toBe(200);
      expect(r.headers['content-type'], url).toMatch(type);
      expect(r.body, url).toContain(body);
      expect(r.headers['content-security-policy'], url).toContain("script-src 'self'");
      expect(r.headers['content-security-policy'], url).toContain("frame-ancestors 'none'");
      expect(r.headers['x-content-type-options'], url).toBe('nosniff');
    }
    // Opened without a token, the page says where one comes from (the gateway answers no store
    // request without one).
    const page = (await a.inject({ url: '/' })).body;
    expect(page).toContain('<code>&lt;rundir&gt;/http-token</code>');
    expect(page).toContain('<code>nxs token --domid N</code>');
    await a.close();
  });

  it('answers 304 to a matching If-None-Match, and the full file to a stale one', async () => {
    const a = await app();
    const first = await a.inject({ url: '/ui/app.js' });
    const etag = first.headers['etag'] as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const again = await a.inject({ url: '/ui/app.js', headers: { 'if-none-match': etag } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    const stale = await a.inject({ url: '/ui/app.js', headers: { 'if-none-match': '"other"' } });
    expect(stale.statusCode).toBe(200);
    expect(stale.body).toBe(first.body);
    await a.close();
  });

  it('serves nothing else: no other file, no directory, no way out of ui/', async () => {
    const a = await app();
    for (const url of ['/ui/', '/ui/index.html', '/ui/index.ts', '/ui/../index.ts', '/ui/%2e%2e/index.ts', '/index.html']) {
      expect((await a.inject({ url })).statusCode, url).toBe(404);
    }
    expect((await a.inject({ url: '/', method: 'POST' })).statusCode).toBe(404);
    await a.close();
  });
});
