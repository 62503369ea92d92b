// nxenstored live web view: the tree (children fetched on expand), the selected node, a feed of
// watch events for a chosen subtree, and editing with a token. Plain DOM, no framework.
//
// It speaks only the gateway's public API: GET/PUT/DELETE /v1/node/<path> over HTTP, and one
// WebSocket (/v1/ws) for watches. Values are arbitrary bytes written by anyone, so every piece of
// data reaches the page through textContent or a property, never as markup.
//
// The gateway answers no client without a token (unless started with --http-anonymous read): a
// 401 locks the page, which then shows nothing of the store and says how to get a token.

const TOKEN_KEY = 'nxenstored.token';
/** Children shown per directory before a "show more" button (DIRECTORY_PART-sized listings exist). */
const PAGE = 200;
/** Node fetches in flight at once when a directory is expanded. */
const FETCH_CONCURRENCY = 8;
/** Events kept in the feed list. */
const FEED_MAX = 500;
/** Watch tokens: one watch on / keeps the shown part of the tree live; one for the feed. */
const TREE_TOKEN = 'web-tree';
const FEED_TOKEN = 'web-feed';
const VALUE_PREVIEW = 120;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---------------------------------------------------------------------------------------------
// Paths and the HTTP API

function joinPath(parent, name) {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

function parentOf(path) {
  if (path === '/') return null;
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function baseName(path) {
  return path === '/' ? '/' : path.slice(path.lastIndexOf('/') + 1);
}

function nodeUrl(path, query) {
  const segs = path.split('/').filter((s) => s !== '').map(encodeURIComponent).join('/');
  return `/v1/node/${segs}${query ? `?${query}` : ''}`;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let token = sessionStorage.getItem(TOKEN_KEY) ?? '';
/**
 * The moment the tree shows: null for the live store, else a generation of the daemon's history
 * (the timeline below); every node read then asks for `?at=<generation>`.
 */
let atGeneration = null;
/** Paths the commit shown changed: highlighted in the tree. */
let changedPaths = new Set();
/** True while the gateway refuses us (401): see lock() and enter(). */
let locked = false;

async function api(method, path, query, body) {
  return request(method, nodeUrl(path, query), body);
}

async function request(method, url, body) {
  const sent = token;
  const headers = {};
  if (sent) headers.authorization = `Bearer ${sent}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'ENETWORK', String(e && e.message ? e.message : e));
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    /* not JSON: reported below by status */
  }
  // Only a refusal of the token still in use locks (an answer to one since replaced does not).
  if (res.status === 401 && sent === token) {
    lock(token ? 'The token in use was refused: it is unknown, was revoked, or its domain was released.' : 'No token is set.');
  }
  if (!res.ok) {
    throw new ApiError(res.status, (data && data.error) || `HTTP ${res.status}`, (data && data.message) || res.statusText);
  }
  return data;
}

/** Runs at most FETCH_CONCURRENCY node fetches at once, so a big directory does not stall the page. */
const fetchQueue = [];
let fetching = 0;
function limited(task) {
  return new Promise((resolve, reject) => {
    fetchQueue.push(() => task().then(resolve, reject));
    pump();
  });
}
function pump() {
  while (fetching < FETCH_CONCURRENCY && fetchQueue.length > 0) {
    const run = fetchQueue.shift();
    fetching++;
    run().finally(() => {
      fetching--;
      pump();
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Showing values and permissions

/** Control characters made visible, the rest as is (it is text: textContent does the escaping). */
function visible(text) {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function showValue(target, data, preview) {
  target.replaceChildren();
  if (data.encoding === 'base64') {
    const b = el('span', 'badge', 'base64');
    b.title = 'not valid UTF-8: shown as base64';
    target.append(b);
  }
  const text = data.encoding === 'base64' ? data.value : visible(data.value);
  target.append(document.createTextNode(preview && text.length > VALUE_PREVIEW ? `${text.slice(0, VALUE_PREVIEW)}…` : text));
  target.title = text;
}

const PERM_WORDS = { n: 'none', r: 'read', w: 'write', b: 'read/write' };

/** `n0 r5` -> "owner dom0 (others: none); dom5: read" (Xen form, spec §6.1). */
function describePerms(perms) {
  if (!perms || perms.length === 0) return '';
  const [first, ...rest] = perms;
  const parts = [`owner dom${first.slice(1)} (others: ${PERM_WORDS[first[0]] ?? first[0]})`];
  for (const p of rest) parts.push(`dom${p.slice(1)}: ${PERM_WORDS[p[0]] ?? p[0]}`);
  return parts.join('; ');
}

// ---------------------------------------------------------------------------------------------
// Messages

function say(text, kind) {
  const m = $('message');
  m.textContent = text;
  m.className = kind;
}

function report(e, what) {
  if (e instanceof ApiError) say(`${what}: ${e.code}${e.message ? ` — ${e.message}` : ''}`, 'error');
  else say(`${what}: ${e && e.message ? e.message : String(e)}`, 'error');
}

// ---------------------------------------------------------------------------------------------
// The tree. One row per shown node, keyed by path; rows below a collapsed node are forgotten, so
// events there cost nothing and a re-expand fetches afresh.

/** path -> row */
const rows = new Map();
let selected = null;

function createRow(path) {
  const li = el('li', 'node');
  li.setAttribute('role', 'treeitem');
  li.setAttribute('aria-expanded', 'false');
  li.dataset.path = path;
  const line = el('div', 'line');
  const toggle = el('button', 'toggle', '·');
  toggle.type = 'button';
  toggle.setAttribute('aria-label', `expand ${path}`);
  const nameEl = el('span', 'name', baseName(path));
  const valueEl = el('span', 'value');
  const permsEl = el('span', 'perms');
  line.append(toggle, nameEl, valueEl, permsEl);
  const ul = el('ul', 'children');
  ul.setAttribute('role', 'group');
  ul.hidden = true;
  li.append(line, ul);
  const row = { path, li, line, toggle, valueEl, permsEl, ul, expanded: false, data: null, seq: 0, names: [], limit: PAGE };
  toggle.addEventListener('click', (ev) => {
    ev.stopPropagation();
    if (row.expanded) collapse(row);
    else void expand(row);
  });
  line.addEventListener('click', () => select(path));
  rows.set(path, row);
  return row;
}

function renderRow(row, data) {
  const changed = row.data !== null && (row.data.value !== data.value || row.data.encoding !== data.encoding);
  row.data = data;
  const hasChildren = (data.children ?? []).length > 0;
  row.toggle.textContent = row.expanded ? '▾' : hasChildren ? '▸' : '·';
  row.toggle.disabled = !hasChildren && !row.expanded;
  row.li.classList.toggle('leaf', !hasChildren);
  showValue(row.valueEl, data, true);
  row.permsEl.textContent = (data.perms ?? []).join(' ');
  row.line.classList.toggle('changed', changedPaths.has(row.path));
  row.permsEl.title = describePerms(data.perms);
  if (changed) {
    row.line.classList.remove('flash');
    void row.line.offsetWidth; // restart the animation
    row.line.classList.add('flash');
  }
  if (row.path === selected) showDetails(data);
}

/** Fetches one node (value, permissions, child names); drops the row if the node is gone. */
async function loadRow(row) {
  const seq = ++row.seq;
  let data;
  try {
    const at = atGeneration === null ? '' : `&at=${atGeneration}`;
    data = await limited(() => api('GET', row.path, `children=1&perms=1${at}`));
  } catch (e) {
    if (rows.get(row.path) !== row || seq !== row.seq) return null;
    if (e instanceof ApiError && e.code === 'ENOENT') removeRow(row.path);
    else {
      row.valueEl.textContent = e instanceof ApiError ? e.code : 'error';
      row.valueEl.title = e.message;
    }
    return null;
  }
  // A later fetch was started (an event arrived meanwhile): its answer is the newer one.
  if (rows.get(row.path) !== row || seq !== row.seq) return null;
  renderRow(row, data);
  return data;
}

function childItems(row) {
  return [...row.ul.children].filter((c) => c.classList.contains('node'));
}

/** Re-reads the node and puts its shown children in line with the store's list (sorted by name). */
async function refreshChildren(row) {
  const data = await loadRow(row);
  if (data === null || !row.expanded) return;
  row.names = data.children ?? [];
  const wanted = row.names.slice(0, row.limit);
  const existing = new Map(childItems(row).map((li) => [li.dataset.path, li]));
  const items = [];
  const fresh = [];
  for (const name of wanted) {
    const path = joinPath(row.path, name);
    const li = existing.get(path);
    if (li !== undefined) {
      existing.delete(path);
      items.push(li);
    } else {
      const child = createRow(path);
      items.push(child.li);
      fresh.push(child);
    }
  }
  for (const path of existing.keys()) forgetRow(path);
  const hidden = row.names.length - wanted.length;
  if (hidden > 0) {
    const more = el('li', 'more');
    const b = el('button', '', `show ${Math.min(hidden, PAGE)} more (${hidden} not shown)`);
    b.type = 'button';
    b.addEventListener('click', () => {
      row.limit += PAGE;
      void refreshChildren(row);
    });
    more.append(b);
    items.push(more);
  }
  row.ul.replaceChildren(...items);
  await Promise.all(fresh.map(loadRow));
}

async function expand(row) {
  row.expanded = true;
  row.ul.hidden = false;
  row.toggle.textContent = '▾';
  row.li.setAttribute('aria-expanded', 'true');
  await refreshChildren(row);
}

function collapse(row) {
  row.expanded = false;
  row.ul.hidden = true;
  row.li.setAttribute('aria-expanded', 'false');
  for (const li of childItems(row)) forgetRow(li.dataset.path);
  row.ul.replaceChildren();
  row.limit = PAGE;
  if (row.data) renderRow(row, row.data);
}

/** Forgets a row and every row below it (the DOM goes with its parent list). */
function forgetRow(path) {
  const row = rows.get(path);
  if (row === undefined) return;
  rows.delete(path);
  for (const li of childItems(row)) forgetRow(li.dataset.path);
  if (path === selected) showGone();
}

function removeRow(path) {
  const row = rows.get(path);
  if (row === undefined) return;
  forgetRow(path);
  row.li.remove();
}

async function reveal(path) {
  if (!path.startsWith('/')) throw new ApiError(0, 'EINVAL', 'paths start with /');
  const segs = path.split('/').filter((s) => s !== '');
  let cur = '/';
  for (const seg of segs) {
    const row = rows.get(cur);
    if (row === undefined) break;
    if (!row.expanded) await expand(row);
    const next = joinPath(cur, seg);
    if (!rows.has(next)) {
      // Beyond the shown page of a big directory, or missing: ask the store which.
      await api('GET', next, '');
      throw new ApiError(0, 'ENOTSHOWN', `${next} is not among the first ${row.limit} children of ${cur}`);
    }
    cur = next;
  }
  select(cur);
  rows.get(cur)?.line.scrollIntoView({ block: 'nearest' });
}

// ---------------------------------------------------------------------------------------------
// Live updates: one watch on / (token TREE_TOKEN). An event for a path marks the nearest shown
// node (itself or an ancestor) dirty; dirty nodes are re-read in one batch per animation frame, so
// a burst of writes costs one fetch per shown node, not one per event.

const dirtyNodes = new Set();
const dirtyChildren = new Set();
let flushQueued = false;
let flushing = false;

function onTreeEvent(path) {
  if (!path.startsWith('/')) return; // @introduceDomain, @releaseDomain
  let cur = path;
  while (cur !== null && !rows.has(cur)) cur = parentOf(cur);
  if (cur === null) return;
  const row = rows.get(cur);
  if (cur === path) dirtyNodes.add(cur);
  else if (row.expanded) dirtyChildren.add(cur); // a child appeared (or one beyond the shown page changed)
  else if (!(row.data && (row.data.children ?? []).length > 0)) dirtyNodes.add(cur); // it may have become a directory
  scheduleFlush();
}

function scheduleFlush() {
  if (flushQueued) return;
  flushQueued = true;
  requestAnimationFrame(() => {
    flushQueued = false;
    void flush();
  });
}

async function flush() {
  if (flushing) {
    // One batch at a time; what arrived meanwhile goes in the next one.
    scheduleFlush();
    return;
  }
  flushing = true;
  try {
    const parents = [...dirtyChildren];
    dirtyChildren.clear();
    const nodes = [...dirtyNodes].filter((p) => !parents.includes(p));
    dirtyNodes.clear();
    const work = [];
    for (const p of parents) {
      const r = rows.get(p);
      if (r !== undefined) work.push(r.expanded ? refreshChildren(r) : loadRow(r));
    }
    for (const p of nodes) {
      const r = rows.get(p);
      if (r === undefined) continue;
      // An expanded node's list may have changed too (a removal names the node itself).
      work.push(r.expanded ? refreshChildren(r) : loadRow(r));
    }
    await Promise.all(work);
  } finally {
    flushing = false;
  }
}

/** After a reconnect events may have been missed: re-read everything shown. */
function refreshAll() {
  for (const [path, row] of rows) (row.expanded ? dirtyChildren : dirtyNodes).add(path);
  scheduleFlush();
}

// ---------------------------------------------------------------------------------------------
// The WebSocket: requests by id, watch events by token. Reconnects with backoff; watches are
// re-established on every (re)connect.

const ws = { sock: null, nextId: 1, pending: new Map(), watches: new Map(), retry: 0, everOpen: false, timer: 0 };

function setStatus(state, detail) {
  const s = $('status');
  s.textContent = detail ? `${state} (${detail})` : state;
  s.className = `status ${state}`;
}

function connectWs() {
  clearTimeout(ws.timer);
  if (locked) return;
  const url = new URL('/v1/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) url.searchParams.set('token', token);
  let sock;
  try {
    sock = new WebSocket(url);
  } catch (e) {
    setStatus('offline', String(e.message ?? e));
    return;
  }
  ws.sock = sock;
  setStatus('connecting');
  sock.addEventListener('open', () => {
    if (ws.sock !== sock) return;
    ws.retry = 0;
    setStatus('live');
    for (const [tok, path] of ws.watches) {
      wsRequest({ op: 'watch', path, token: tok }).catch((e) => report(e, `watch ${path}`));
    }
    if (ws.everOpen) refreshAll();
    ws.everOpen = true;
  });
  sock.addEventListener('message', (m) => {
    if (ws.sock !== sock || typeof m.data !== 'string') return;
    let msg;
    try {
      msg = JSON.parse(m.data);
    } catch {
      return;
    }
    if (msg.event === 'watch') {
      if (msg.token === TREE_TOKEN) onTreeEvent(String(msg.path));
      else if (msg.token === FEED_TOKEN) onFeedEvent(String(msg.path));
      return;
    }
    const p = ws.pending.get(msg.id);
    if (p === undefined) return;
    ws.pending.delete(msg.id);
    if (msg.error) p.reject(new ApiError(0, msg.error, msg.message ?? ''));
    else p.resolve(msg.result);
  });
  sock.addEventListener('close', (ev) => {
    if (ws.sock !== sock) return;
    ws.sock = null;
    for (const p of ws.pending.values()) p.reject(new ApiError(0, 'ECLOSED', 'connection closed'));
    ws.pending.clear();
    setStatus('offline', `${ev.code}${ev.reason ? ` ${ev.reason}` : ''}`);
    const delay = Math.min(10_000, 250 * 2 ** ws.retry++);
    ws.timer = setTimeout(connectWs, delay);
  });
}

function reconnectWs() {
  const old = ws.sock;
  ws.sock = null;
  for (const p of ws.pending.values()) p.reject(new ApiError(0, 'ECLOSED', 'reconnecting'));
  ws.pending.clear();
  if (old) old.close(1000, 'token changed');
  ws.everOpen = true; // what we show was read under the old identity
  connectWs();
}

function wsRequest(msg) {
  return new Promise((resolve, reject) => {
    const s = ws.sock;
    if (!s || s.readyState !== WebSocket.OPEN) {
      reject(new ApiError(0, 'ECLOSED', 'not connected'));
      return;
    }
    const id = ws.nextId++;
    ws.pending.set(id, { resolve, reject });
    s.send(JSON.stringify({ id, ...msg }));
  });
}

/** Watches `path` under `tok` now (if connected) and after every reconnect. */
async function watch(tok, path) {
  ws.watches.set(tok, path);
  if (ws.sock && ws.sock.readyState === WebSocket.OPEN) await wsRequest({ op: 'watch', path, token: tok });
}

async function unwatch(tok) {
  const path = ws.watches.get(tok);
  if (path === undefined) return;
  ws.watches.delete(tok);
  if (ws.sock && ws.sock.readyState === WebSocket.OPEN) await wsRequest({ op: 'unwatch', path, token: tok });
}

// ---------------------------------------------------------------------------------------------
// The feed

let feedCount = 0;

function onFeedEvent(path) {
  feedCount++;
  const li = el('li');
  li.dataset.path = path;
  const t = new Date();
  const time = `${t.toLocaleTimeString('en-GB', { hour12: false })}.${String(t.getMilliseconds()).padStart(3, '0')}`;
  li.append(el('span', 'time', time), el('span', 'path', path));
  const list = $('feed-list');
  list.prepend(li);
  while (list.childElementCount > FEED_MAX) list.lastElementChild.remove();
  $('feed-state').textContent = `Watching ${ws.watches.get(FEED_TOKEN) ?? '?'}: ${feedCount} event${feedCount === 1 ? '' : 's'}.`;
}

async function startFeed(path) {
  if (!path.startsWith('/') && !path.startsWith('@')) throw new ApiError(0, 'EINVAL', 'a watch path starts with / or @');
  await unwatch(FEED_TOKEN).catch(() => {});
  feedCount = 0;
  $('feed-state').textContent = `Watching ${path}: 0 events.`;
  await watch(FEED_TOKEN, path);
}

// ---------------------------------------------------------------------------------------------
// The selected node and editing

let shownValue = null;

function select(path) {
  if (selected !== null) rows.get(selected)?.line.classList.remove('selected');
  selected = path;
  const row = rows.get(path);
  row?.line.classList.add('selected');
  shownValue = null;
  $('d-empty').hidden = true;
  $('d-body').hidden = false;
  $('d-path').textContent = path;
  // The timeline follows the selection: its subtree is the selected node's.
  /** @type {HTMLInputElement} */ ($('h-path')).value = path;
  $('add-name').value = '';
  $('add-value').value = '';
  if (row?.data) showDetails(row.data);
  else $('d-value').textContent = '…';
}

function showDetails(data) {
  $('d-gone').hidden = true;
  $('d-path').textContent = data.path ?? selected;
  $('d-value').textContent = data.encoding === 'base64' ? data.value : visible(data.value);
  $('d-encoding').hidden = data.encoding !== 'base64';
  $('d-perms').textContent = `${(data.perms ?? []).join(' ')}  —  ${describePerms(data.perms)}`;
  const n = (data.children ?? []).length;
  $('d-children').textContent = n === 0 ? 'none' : String(n);
  // Keep what the user is typing; follow the store while the editor still shows the last value.
  const editor = /** @type {HTMLTextAreaElement} */ ($('edit-value'));
  if (shownValue === null || editor.value === shownValue.value) {
    editor.value = data.value;
    /** @type {HTMLSelectElement} */ ($('edit-encoding')).value = data.encoding;
    shownValue = { value: data.value, encoding: data.encoding };
  }
}

function showGone() {
  $('d-gone').hidden = false;
}

function updateIdentity() {
  $('identity').textContent = token ? 'token set: edits allowed as its identity' : 'no token';
  /** @type {HTMLFieldSetElement} */ ($('editing')).disabled = !token;
  $('edit-hint').hidden = !!token;
  /** @type {HTMLInputElement} */ ($('token')).value = token;
}

function setToken(t) {
  token = t.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  updateIdentity();
  if (locked) {
    void enter();
    return;
  }
  reconnectWs();
  // Re-read what is shown under the new identity now, not only once the WebSocket opens: one
  // that is not answered at all (401) must lock the page at once.
  refreshAll();
}

/**
 * No usable token (401): nothing of the store stays on the page, the WebSocket is closed and not
 * opened again, and the notice says how to get a token. Setting a token enters again.
 */
function lock(reason) {
  $('locked-reason').textContent = reason;
  if (locked) return;
  locked = true;
  $('locked').hidden = false;
  $('view').hidden = true;
  clearTimeout(ws.timer);
  const old = ws.sock;
  ws.sock = null;
  for (const p of ws.pending.values()) p.reject(new ApiError(401, 'ECLOSED', 'no usable token'));
  ws.pending.clear();
  if (old) old.close(1000, 'no usable token');
  rows.clear();
  selected = null;
  $('tree').replaceChildren();
  $('d-body').hidden = true;
  $('d-empty').hidden = false;
  $('feed-list').replaceChildren();
  setStatus('locked');
}

/** Shows the store from the root down, as the current token (or none) may see it. */
async function enter() {
  locked = false;
  $('locked').hidden = true;
  $('view').hidden = false;
  const root = createRow('/');
  $('tree').replaceChildren(root.li);
  select('/');
  // The first read tells whether this identity is answered at all: a 401 locks the page before a
  // WebSocket is opened (a page cannot see why a WebSocket handshake was refused, only that it was).
  await expand(root);
  if (!locked) connectWs();
}

// ---------------------------------------------------------------------------------------------
// History: a timeline of the commits that changed a subtree (GET /v1/history), oldest to newest
// as ticks and a slider; scrubbing shows the tree as it was after that commit (?at=), with the
// nodes it changed highlighted; a click on a tick also shows the commit's record. The last
// position of the slider is the live store.

/** The timeline's commits, oldest first. */
let timeline = [];

async function loadTimeline(path) {
  const page = await request('GET', `/v1/history?path=${encodeURIComponent(path)}&limit=100`);
  timeline = page.entries.slice().reverse();
  const ticks = timeline.map((e, i) => {
    const li = el('li');
    const b = el('button');
    b.type = 'button';
    b.dataset.generation = String(e.generation);
    b.title = `generation ${e.generation}, ${e.time}, dom${e.domid} ${e.connection}`;
    b.setAttribute('aria-label', b.title);
    b.addEventListener('click', () => showMoment(i, true));
    li.append(b);
    return li;
  });
  $('h-ticks').replaceChildren(...ticks);
  const scrub = /** @type {HTMLInputElement} */ ($('h-scrub'));
  scrub.max = String(timeline.length);
  scrub.value = String(timeline.length);
  scrub.hidden = timeline.length === 0;
  $('h-state').textContent = timeline.length === 0 ? `No commit under ${path} in the history kept.` : `${timeline.length} commits under ${path}${page.next === undefined ? '' : ' (the latest 100)'}; the tree shows the live store.`;
}

/** Shows the tree after commit `i` of the timeline (`timeline.length`: live). */
function showMoment(i, withRecord) {
  const live = i >= timeline.length;
  const e = live ? null : timeline[i];
  atGeneration = live ? null : e.generation;
  changedPaths = new Set(live ? [] : e.changes.map((c) => c.path));
  /** @type {HTMLInputElement} */ ($('h-scrub')).value = String(i);
  for (const b of $('h-ticks').querySelectorAll('button')) b.classList.toggle('current', !live && b.dataset.generation === String(e.generation));
  $('h-state').textContent = live ? 'The tree shows the live store.' : `The tree shows generation ${e.generation} (${e.time}), after dom${e.domid} ${e.connection}${e.tx === undefined ? '' : ` tx ${e.tx}`}.`;
  const rec = $('h-record');
  rec.hidden = !withRecord || live;
  if (withRecord && !live) rec.textContent = JSON.stringify(e, null, 2);
  /** @type {HTMLFieldSetElement} */ ($('editing')).disabled = !token || !live;
  refreshAll();
}

let removeArmed = 0;

function wire() {
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken(/** @type {HTMLInputElement} */ ($('token')).value);
    say(token ? 'Token in use (kept in this tab only).' : 'No token.', 'ok');
  });
  $('token-forget').addEventListener('click', () => {
    setToken('');
    say('Token forgotten.', 'ok');
  });
  $('reveal-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = /** @type {HTMLInputElement} */ ($('reveal-path')).value.trim() || '/';
    reveal(p).catch((e) => report(e, `reveal ${p}`));
  });
  $('edit-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (selected === null) return;
    const path = selected;
    const value = /** @type {HTMLTextAreaElement} */ ($('edit-value')).value;
    const encoding = /** @type {HTMLSelectElement} */ ($('edit-encoding')).value;
    shownValue = { value, encoding };
    api('PUT', path, '', { value, encoding })
      .then(() => say(`Wrote ${path}.`, 'ok'))
      .catch((e) => report(e, `write ${path}`));
  });
  $('add-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (selected === null) return;
    const name = /** @type {HTMLInputElement} */ ($('add-name')).value.trim();
    const value = /** @type {HTMLInputElement} */ ($('add-value')).value;
    if (name === '' || name.startsWith('/') || name.endsWith('/') || name.includes('//')) {
      say('A child name is one or more path components, without a leading or trailing /.', 'error');
      return;
    }
    const path = joinPath(selected, name);
    api('PUT', path, '', { value, encoding: 'utf8' })
      .then(() => {
        say(`Created ${path}.`, 'ok');
        const parent = rows.get(selected ?? '');
        if (parent && !parent.expanded) void expand(parent);
      })
      .catch((e) => report(e, `create ${path}`));
  });
  $('remove-btn').addEventListener('click', () => {
    if (selected === null) return;
    const btn = $('remove-btn');
    // Two clicks, not confirm(): no modal dialog, and nothing is lost by a stray click.
    if (!removeArmed) {
      btn.textContent = `Really remove ${selected} and everything below?`;
      removeArmed = window.setTimeout(() => {
        removeArmed = 0;
        btn.textContent = 'Remove node';
      }, 4000);
      return;
    }
    clearTimeout(removeArmed);
    removeArmed = 0;
    btn.textContent = 'Remove node';
    const path = selected;
    api('DELETE', path, '')
      .then(() => say(`Removed ${path}.`, 'ok'))
      .catch((e) => report(e, `remove ${path}`));
  });
  $('h-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = /** @type {HTMLInputElement} */ ($('h-path')).value.trim() || '/';
    loadTimeline(p).catch((e) => report(e, `history of ${p}`));
  });
  $('h-live').addEventListener('click', () => showMoment(timeline.length, false));
  $('h-scrub').addEventListener('input', () => showMoment(Number(/** @type {HTMLInputElement} */ ($('h-scrub')).value), false));
  $('feed-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = /** @type {HTMLInputElement} */ ($('feed-path')).value.trim() || '/';
    startFeed(p).catch((e) => report(e, `watch ${p}`));
  });
  $('feed-stop').addEventListener('click', () => {
    unwatch(FEED_TOKEN)
      .then(() => ($('feed-state').textContent = `Stopped after ${feedCount} event${feedCount === 1 ? '' : 's'}.`))
      .catch((e) => report(e, 'unwatch'));
  });
  $('feed-clear').addEventListener('click', () => {
    $('feed-list').replaceChildren();
  });
}

function start() {
  wire();
  updateIdentity();
  ws.watches.set(TREE_TOKEN, '/');
  void enter();
}

start();
