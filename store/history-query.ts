import { XsError } from '../protocol/index.js';
import { diff } from './diff.js';
import type { History } from './history.js';
import { connectionOf, decodeHead, decodeRecord, domidOf, visitChanges } from './history-codec.js';
import type { RecordView } from './history-ring.js';
import { segsOf, type ChangeKind, type ConnectionName, type HistoryChange, type HistoryRecord, type Version } from './history-record.js';
import type { XsNode } from './node.js';
import { isAncestorOrSelf } from './path.js';
import type { Perms } from './perms.js';
import { lookup } from './tree.js';

/**
 * The queries over history, one implementation for every way they are asked (CONTROL `history`,
 * the HTTP routes, `nxs`): the tree as it was, the difference between two moments, the log of a
 * subtree, blame. Each is bounded in work whatever the request (xenstored is a trust boundary,
 * even for privileged callers: a mistyped query must not stall every guest): page sizes and node
 * counts are capped, and a capped answer says so (`truncated`, or `next` to continue).
 */
export const QUERY_LIMITS = Object.freeze({
  /** Log entries per page. */
  entries: 500,
  /** Nodes per tree, diff or blame answer. */
  nodes: 1000,
  /** Changes listed per log entry (a domain's release may remove hundreds). */
  changesPerEntry: 200,
  /** Records looked at per log or blame call; a log call past it answers with `next`. */
  scan: 100_000,
});

/** A moment: a generation, or a time (ms since the epoch). */
export type Moment = { readonly generation: number } | { readonly time: number };

/**
 * `parseMoment(text)`: a generation (decimal digits) or an RFC 3339 time
 * (`2026-12-05T03:12:00Z`). EINVAL for anything else.
 */
export function parseMoment(text: string): Moment {
  if (/^\d{1,15}$/.test(text)) return { generation: Number(text) };
  // Date.parse takes more than RFC 3339; ask for its shape first so that "1" or "May" is refused.
  if (/^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(text)) {
    const t = Date.parse(text);
    if (Number.isFinite(t)) return { time: t };
  }
  throw new XsError('EINVAL', `not a generation or an RFC 3339 time: ${JSON.stringify(text)}`);
}

export function generationOf(h: History, m: Moment): number {
  return 'generation' in m ? m.generation : h.generationAt(m.time);
}

export function versionAt(h: History, m: Moment): Version {
  return h.at(generationOf(h, m));
}

export interface NodeState {
  readonly path: string;
  readonly value: string;
  readonly perms: Perms;
}

/** The node at `path` in `v`, or undefined. */
export function nodeAt(v: Version, path: string): XsNode | undefined {
  return lookup(v.root, segsOf(path));
}

/**
 * `treeAt(v, path, limit)`: the nodes of the subtree at `path`, parents first, at most `limit`
 * (capped at QUERY_LIMITS.nodes). Undefined when there is no node there.
 */
export function treeAt(v: Version, path: string, limit: number = QUERY_LIMITS.nodes): { nodes: NodeState[]; truncated: boolean } | undefined {
  const top = nodeAt(v, path);
  if (top === undefined) return undefined;
  const max = cap(limit, QUERY_LIMITS.nodes);
  const nodes: NodeState[] = [];
  const stack: [string, XsNode][] = [[path, top]];
  while (stack.length > 0 && nodes.length < max) {
    const [p, n] = stack.pop()!;
    nodes.push({ path: p, value: n.value, perms: n.perms });
    const names = [...n.children.keys()].sort();
    const prefix = p === '/' ? '/' : `${p}/`;
    for (let i = names.length - 1; i >= 0; i--) stack.push([prefix + names[i]!, n.children.get(names[i]!)!]);
  }
  return { nodes, truncated: stack.length > 0 };
}

export interface DiffAnswer {
  readonly from: number;
  readonly to: number;
  readonly changes: readonly HistoryChange[];
  readonly truncated: boolean;
}

/**
 * `diffOf(h, from, to, path, limit)`: what differs under `path` between two moments, compared by
 * reference (store/diff.ts: unchanged subtrees are skipped, so the work is what changed, capped).
 * `removed` names the top of each subtree that went; `added` every node that came.
 */
export function diffOf(h: History, from: Moment, to: Moment, path = '/', limit: number = QUERY_LIMITS.nodes): DiffAnswer {
  const ga = generationOf(h, from);
  const gb = generationOf(h, to);
  const a = h.at(ga);
  const b = h.at(gb);
  const max = cap(limit, QUERY_LIMITS.nodes);
  const x = nodeAt(a, path);
  const y = nodeAt(b, path);
  const changes: HistoryChange[] = [];
  if (x === undefined && y === undefined) return { from: ga, to: gb, changes, truncated: false };
  if (x === undefined || y === undefined) {
    const n = (x ?? y)!;
    const kind: ChangeKind = x === undefined ? 'added' : 'removed';
    changes.push(x === undefined ? { path, kind, new: n.value, newPerms: n.perms } : { path, kind, old: n.value, oldPerms: n.perms });
    if (x === undefined) {
      // A subtree that came whole: every node of it, as far as the cap allows.
      const t = treeAt(b, path, max)!;
      for (const s of t.nodes.slice(1)) changes.push({ path: s.path, kind: 'added', new: s.value, newPerms: s.perms });
      return { from: ga, to: gb, changes, truncated: t.truncated };
    }
    return { from: ga, to: gb, changes, truncated: false };
  }
  const ds = diff(x, y, max + 1);
  for (const d of ds.slice(0, max)) {
    const p = d.path === '/' ? path : path === '/' ? d.path : path + d.path;
    const o = d.kind === 'added' ? undefined : nodeAt(a, p)!;
    const n = d.kind === 'removed' ? undefined : nodeAt(b, p)!;
    const kind: ChangeKind = d.kind !== 'changed' ? d.kind : o!.value !== n!.value ? 'changed' : 'perms';
    changes.push({ path: p, kind, old: o?.value, oldPerms: o?.perms, new: n?.value, newPerms: n?.perms });
  }
  return { from: ga, to: gb, changes, truncated: ds.length > max };
}

export interface LogFilter {
  /** The subtree whose changes are listed ('/' for all). */
  readonly path?: string;
  readonly domid?: number;
  /** Times in ms since the epoch, inclusive. */
  readonly since?: number;
  readonly until?: number;
  readonly kind?: ChangeKind;
  readonly connection?: ConnectionName;
  readonly limit?: number;
  /** Continue below this generation (a previous answer's `next`). */
  readonly before?: number;
}

/** A record as a log lists it: only the changes under the asked path. */
export interface LogEntry extends Omit<HistoryRecord, 'changes' | 'bytes'> {
  readonly changes: readonly HistoryChange[];
  /** More changes under the path than listed (QUERY_LIMITS.changesPerEntry). */
  readonly truncated?: boolean;
}

export interface LogAnswer {
  readonly entries: readonly LogEntry[];
  /** Where the next page starts (pass as `before`); absent at the oldest record kept. */
  readonly next?: number;
}

/**
 * `logOf(h, filter)`: the records that changed something under `filter.path`, newest first,
 * filtered by domain, connection kind, time range and kind of change, one page at a time. At
 * most QUERY_LIMITS.scan records are looked at per call: a filter that matches little answers a
 * short (maybe empty) page with `next`, and the caller continues from there.
 */
export function logOf(h: History, filter: LogFilter = {}): LogAnswer {
  const path = filter.path ?? '/';
  const limit = cap(filter.limit ?? 50, QUERY_LIMITS.entries);
  let [, end] = h.indexRange(h.oldest().generation + 1, filter.before === undefined ? Infinity : filter.before - 1);
  if (filter.until !== undefined) end = Math.min(end, h.indexAfter(filter.until));
  const start = filter.since === undefined ? 0 : h.indexAfter(filter.since - 1);
  const entries: LogEntry[] = [];
  const v = newView();
  let scanned = 0;
  let i = end - 1;
  for (; i >= start && entries.length < limit && scanned < QUERY_LIMITS.scan; i--, scanned++) {
    // Records are bytes (history-codec.ts): the filters read them in place, and only a record
    // that has something to list is decoded (a scan of 100 000 records stays in milliseconds).
    h.view(i, v);
    if (filter.domid !== undefined && domidOf(v.buf, v.start, v.end) !== filter.domid) continue;
    if (filter.connection !== undefined && connectionOf(v.buf, v.start, v.end) !== filter.connection) continue;
    let hit = false;
    visitChanges(v.buf, path, (_, kind) => (hit = filter.kind === undefined || kind === filter.kind), v.start, v.end);
    if (!hit) continue;
    const r = decodeRecord(v.buf, v.start, v.end);
    const changes: HistoryChange[] = [];
    let more = false;
    for (const c of r.changes) {
      if (filter.kind !== undefined && c.kind !== filter.kind) continue;
      if (!isAncestorOrSelf(path, c.path)) continue;
      if (changes.length === QUERY_LIMITS.changesPerEntry) {
        more = true;
        break;
      }
      changes.push(c);
    }
    if (changes.length === 0) continue;
    const { bytes: _bytes, changes: _all, ...rest } = r;
    entries.push(more ? { ...rest, changes, truncated: true } : { ...rest, changes });
  }
  return i >= start ? { entries, next: h.nth(i + 1).generation } : { entries };
}

export interface BlameLine {
  readonly path: string;
  /** The last change to this node within the window; absent when it is older than the window. */
  readonly generation?: number;
  readonly time?: number;
  readonly domid?: number;
  readonly connection?: ConnectionName;
  readonly kind?: ChangeKind;
}

export interface BlameAnswer {
  readonly lines: readonly BlameLine[];
  /** More nodes under the path than listed. */
  readonly truncated: boolean;
  /** Nodes without a line's generation were last changed at or before this generation. */
  readonly oldest: number;
}

/**
 * `blameOf(h, path, limit)`: for each node under `path` now (at most `limit`), the last record
 * that changed it. Records are read newest first until every node is placed or the window (at
 * most QUERY_LIMITS.scan records) is exhausted.
 */
export function blameOf(h: History, path: string, limit: number = QUERY_LIMITS.nodes): BlameAnswer {
  const t = treeAt(h.latest(), path, limit);
  if (t === undefined) throw new XsError('ENOENT', `no node ${path}`);
  const pending = new Map<string, number>();
  const v = newView();
  const lines: BlameLine[] = t.nodes.map((n, i) => {
    pending.set(n.path, i);
    return { path: n.path };
  });
  for (let i = h.size - 1, scanned = 0; i >= 0 && pending.size > 0 && scanned < QUERY_LIMITS.scan; i--, scanned++) {
    // Only the changes under `path` become strings (history-codec.ts `visitChanges`).
    h.view(i, v);
    visitChanges(
      v.buf,
      path,
      (p, kind) => {
        const k = pending.get(p);
        if (k === undefined) return;
        pending.delete(p);
        const { who } = decodeHead(v.buf, v.start, v.end);
        lines[k] = { path: p, generation: h.generationOf(i), time: h.timeOf(i), domid: who.domid, connection: who.connection, kind };
      },
      v.start,
      v.end,
    );
  }
  return { lines, truncated: t.truncated, oldest: h.oldest().generation };
}

/** A reusable place for a record's bytes (history-ring.ts `RecordView`). */
function newView(): RecordView {
  return { buf: EMPTY, start: 0, end: 0 };
}

const EMPTY = Buffer.alloc(0);

function cap(n: number, max: number): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new XsError('EINVAL', `bad limit ${n}`);
  return Math.min(n, max);
}
