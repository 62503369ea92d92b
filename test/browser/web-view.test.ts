/**
 * The live web view in a real browser: Debian's chromium driven by playwright-core, against the
 * real daemon started with `--http 127.0.0.1:0`. Without a token the page shows nothing of the
 * store and says how to get one (the gateway answers no client without one); with the privileged
 * token a node expands (its children are fetched only then), values written by ANOTHER client
 * over the Unix socket appear live, the watch feed shows the chosen subtree's events in order,
 * and the page sets a value, adds and removes a node. A screenshot is saved as
 * `test-artifacts/web-view.png`.
 *
 * The waits below bound hangs only (playwright's timeouts); nothing here measures time.
 * Without /usr/bin/chromium the suite fails, saying how to get it: it is never skipped.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/poll.js';
import type { Wire } from '../helpers/wire.js';

// The callbacks passed to page.waitForFunction / page.evaluate run in the browser; the test build
// has no DOM library, so these are the few browser names they use.
declare const document: {
  querySelector(sel: string): { textContent: string | null; getAttribute(name: string): string | null } | null;
};
declare const window: { __pwned?: number };
declare const sessionStorage: { getItem(key: string): string | null };

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(REPO, 'test-artifacts');
const SCREENSHOT = join(ARTIFACTS, 'web-view.png');

describe('web view in chromium', () => {
  let d: RunningDaemon;
  let c: Wire;
  let base: string;
  let token: string;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  const cspViolations: string[] = [];

  const row = (path: string) => `li.node[data-path="${path}"]`;
  const rowValue = (path: string) => `${row(path)} > .line > .value`;

  /** Waits until the row of `path` shows `text` as its value. */
  const valueShown = (path: string, text: string) =>
    page.waitForFunction(
      ([sel, want]) => document.querySelector(sel!)?.textContent === want,
      [rowValue(path), text] as const,
    );

  const feedPaths = () => page.$$eval('#feed-list li .path', (els) => els.map((e) => e.textContent));

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run 'bash test/setup/tools.sh' as root (npm test does), which installs Debian's chromium`);
    d = await startDaemon({ args: ['--http', '127.0.0.1:0'] });
    c = await d.connect();
    const gw = await d.gateway();
    base = gw.url;
    token = gw.token;
    await c.write('/web/a', 'one');
    await c.write('/web/evil', '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>');
    await c.write('/web/bin', Buffer.from([0xff, 0x00, 0xfe]));
    await c.write('/web/deep/leaf', 'x');
    await c.write('/other/x', 'unrelated');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(20_000);
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
  });

  afterAll(async () => {
    if (page !== undefined) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true }).catch(() => {});
    }
    await browser?.close();
    await d?.stop();
  });

  it('serves the page, its script and stylesheet with a strict content security policy', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(await res.text()).toContain('<script type="module" src="/ui/app.js">');
    const js = await fetch(`${base}/ui/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    const again = await fetch(`${base}/ui/app.js`, { headers: { 'if-none-match': js.headers.get('etag')! } });
    expect(again.status).toBe(304);
    expect((await fetch(`${base}/ui/style.css`)).headers.get('content-type')).toMatch(/^text\/css/);
    // Only those three files: nothing else under /ui/ (no directory walking).
    for (const other of ['/ui/', '/ui/index.html', '/ui/%2e%2e/index.ts', '/ui/..%2findex.ts']) {
      expect((await fetch(`${base}${other}`)).status, other).toBe(404);
    }
  });

  it('without a token: shows nothing of the store, edits nothing, and says how to get a token', async () => {
    await page.goto(`${base}/`);
    await page.waitForSelector('#locked:not([hidden])');
    const notice = await page.textContent('#locked');
    expect(notice).toContain('<rundir>/http-token');
    expect(notice).toContain('nxs token --domid N');
    expect(await page.textContent('#locked-reason')).toBe('No token is set.');
    await page.waitForSelector('#status.locked');
    expect(await page.locator('#view').isHidden()).toBe(true);
    expect(await page.locator('#tree li.node').count()).toBe(0);
    // The controls sit in a disabled fieldset.
    for (const control of ['#edit-value', '#edit-save', '#add-name', '#add-save', '#remove-btn']) {
      expect(await page.locator(control).isDisabled(), control).toBe(true);
    }
  });

  it('loads the tree lazily with a token: children are fetched when a node is expanded', async () => {
    await page.fill('#token', token);
    await page.click('#token-form button[type=submit]');
    await page.waitForSelector('#status.live');
    expect(await page.locator('#locked').isHidden()).toBe(true);
    await page.waitForSelector(row('/web'));
    // Not expanded yet: nothing below /web is in the page.
    expect(await page.locator(row('/web/a')).count()).toBe(0);
    await page.click(`${row('/web')} > .line > .toggle`);
    await valueShown('/web/a', 'one');
    expect(await page.textContent(`${row('/web/a')} > .line > .perms`)).toBe('n0');
    expect(await page.getAttribute(row('/web'), 'aria-expanded')).toBe('true');
    // /web/deep is a directory, shown collapsed: its leaf is not fetched.
    await page.waitForSelector(`${row('/web/deep')} > .line > .toggle:not([disabled])`);
    expect(await page.locator(row('/web/deep/leaf')).count()).toBe(0);
  });

  it('shows values as text, never as markup, and marks non-UTF-8 values as base64', async () => {
    const evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
    await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute('title') !== null, rowValue('/web/evil'));
    expect(await page.getAttribute(rowValue('/web/evil'), 'title')).toBe(evil);
    expect(await page.locator('#tree img, #tree script').count()).toBe(0);
    expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
    await valueShown('/web/bin', 'base64/wD+');
    expect(await page.textContent(`${rowValue('/web/bin')} .badge`)).toBe('base64');
  });

  it('shows a value written by another client live, and nodes appearing and disappearing', async () => {
    await c.write('/web/a', 'two');
    await valueShown('/web/a', 'two');
    await c.write('/web/fresh', 'new node');
    await valueShown('/web/fresh', 'new node');
    // A node created below a shown one turns it into a directory without a reload.
    await c.write('/web/a/child', 'c');
    await page.waitForSelector(`${row('/web/a')} > .line > .toggle:not([disabled])`);
    await c.rm('/web/fresh');
    await page.waitForSelector(row('/web/fresh'), { state: 'detached' });
    await c.rm('/web/a/child');
  });

  it('feeds the watch events of the chosen subtree, newest first, and nothing from elsewhere', async () => {
    await page.fill('#feed-path', '/web');
    await page.click('#feed-start');
    // A new watch fires once for its own path (spec §8.1).
    await page.waitForFunction(() => document.querySelector('#feed-list li .path')?.textContent === '/web');
    await c.write('/other/x', 'still unrelated');
    await c.write('/web/a', 'three');
    await c.write('/web/zz', 'last');
    await page.waitForFunction(() => document.querySelector('#feed-list li .path')?.textContent === '/web/zz');
    expect(await feedPaths()).toEqual(['/web/zz', '/web/a', '/web']);
    await page.click('#feed-stop');
    await page.waitForFunction(() => document.querySelector('#feed-state')?.textContent?.startsWith('Stopped'));
    // Stopped: further writes reach the tree but not the feed.
    await c.write('/web/a', 'four');
    await valueShown('/web/a', 'four');
    expect(await feedPaths()).toEqual(['/web/zz', '/web/a', '/web']);
  });

  it('with the privileged token: sets a value, adds a child and removes it', async () => {
    await page.fill('#token', token);
    await page.click('#token-form button[type=submit]');
    await page.waitForSelector('#editing:not([disabled])');
    await page.waitForSelector('#status.live');
    expect(await page.evaluate(() => sessionStorage.getItem('nxenstored.token'))).toBe(token);
    await page.click(`${row('/web/a')} > .line`);
    await page.waitForFunction(() => document.querySelector('#d-path')?.textContent === '/web/a');

    await page.fill('#edit-value', 'from the browser');
    await page.click('#edit-save');
    expect(await eventually(() => c.read('/web/a'), (v) => v === 'from the browser')).toBe('from the browser');
    await valueShown('/web/a', 'from the browser');

    await page.fill('#add-name', 'kid');
    await page.fill('#add-value', 'added');
    await page.click('#add-save');
    expect(await eventually(() => c.dir('/web/a'), (v) => v.includes('kid'))).toContain('kid');
    await valueShown('/web/a/kid', 'added');

    await page.click(`${row('/web/a/kid')} > .line`);
    await page.waitForFunction(() => document.querySelector('#d-path')?.textContent === '/web/a/kid');
    await page.click('#remove-btn'); // arms
    await page.click('#remove-btn'); // removes
    expect(await eventually(() => c.dir('/web/a'), (v) => !v.includes('kid'))).not.toContain('kid');
    await page.waitForSelector(row('/web/a/kid'), { state: 'detached' });
  });

  it('with a guest token acts as that domain: the node it may not read shows EACCES, a write is refused', async () => {
    const issued = await fetch(`${base}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ domid: 7 }),
    });
    expect(issued.status).toBe(200);
    const guest = ((await issued.json()) as { token: string }).token;
    await page.fill('#token', guest);
    await page.click('#token-form button[type=submit]');
    // Everything shown is re-read under the new identity; /web/a is n0 (dom0 only).
    await valueShown('/web/a', 'EACCES');
    await page.click(`${row('/web/a')} > .line`);
    await page.fill('#edit-value', 'from a guest');
    await page.click('#edit-save');
    await page.waitForFunction(() => document.querySelector('#message')?.textContent?.includes('EACCES'));
    expect(await c.read('/web/a')).toBe('from the browser');
    // Forgetting the token locks the page again: the gateway answers no client without one.
    await page.click('#token-forget');
    await page.waitForSelector('#locked:not([hidden])');
    expect(await page.locator(row('/web/a')).count()).toBe(0);
    await page.waitForSelector('#editing[disabled]', { state: 'attached' });
  });

  it('history: the timeline of the selected subtree scrubs back to before a write and shows the old value (issue 14)', async () => {
    await c.write('/web/hist', 'before');
    await c.write('/web/hist', 'after');
    await page.fill('#token', token);
    await page.click('#token-form button[type=submit]');
    await page.waitForSelector('#locked', { state: 'hidden' });
    await page.waitForSelector(row('/web'));
    if ((await page.getAttribute(row('/web'), 'aria-expanded')) !== 'true') await page.click(`${row('/web')} > .line > .toggle`);
    await valueShown('/web/hist', 'after');
    await page.click(`${row('/web')} > .line`);
    await page.waitForFunction(() => (document.querySelector('#h-path') as unknown as { value: string } | null)?.value === '/web');
    await page.click('#h-load');
    await page.waitForSelector('#h-ticks button');
    // The tick of the write of 'before' (the second newest commit under /web): click it.
    const ticks = page.locator('#h-ticks button');
    const n = await ticks.count();
    expect(n).toBeGreaterThanOrEqual(2);
    await ticks.nth(n - 2).click();
    await valueShown('/web/hist', 'before');
    expect(await page.getAttribute(`${row('/web/hist')} > .line`, 'class')).toContain('changed');
    const record = JSON.parse((await page.textContent('#h-record'))!) as { changes: { path: string; new?: string }[]; connection: string };
    expect(record).toMatchObject({ connection: 'socket', changes: [{ path: '/web/hist', new: 'before' }] });
    // The slider goes back to live: the newest value again, no highlight of the past.
    await page.click('#h-live');
    await valueShown('/web/hist', 'after');
    // Scrubbing with the slider does the same as a click, without the record.
    await page.locator('#h-scrub').fill(String(n - 2));
    await valueShown('/web/hist', 'before');
    await page.click('#h-live');
    await valueShown('/web/hist', 'after');
    expect(await c.read('/web/hist')).toBe('after');
  });

  it('saves a screenshot, with no script error or CSP violation on the way', async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(0);
    expect(pageErrors).toEqual([]);
    expect(cspViolations).toEqual([]);
  });
});
