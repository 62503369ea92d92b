import { PAYLOAD_MAX } from '../../../protocol/index.js';
import {
  blameOf,
  diffOf,
  formatPerms,
  generationOf,
  logOf,
  nodeAt,
  parseMoment,
  QUERY_LIMITS,
  samePerms,
  treeAt,
  XsError,
  type ChangeKind,
  type ConnectionName,
  type History,
  type HistoryChange,
  type LogEntry,
  type LogFilter,
  type Version,
} from '../../../store/index.js';
import type { MomentBuilder } from '../moment-builder.js';

/**
 * CONTROL `history ...`: the queries of store/history-query.ts on the wire, so that
 * `xenstore-control history log /local/domain/3` works, and the one implementation behind the
 * HTTP routes and `nxs` (which send this command). Answers are JSON on one line, except `at ...
 * read`, which is the raw value as READ gives it. Every answer fits one reply (PAYLOAD_MAX bytes,
 * spec §5): a page that would not is made shorter (`next` / `truncated` say there is more), and
 * values in changes are cut at VALUE_CUT bytes (`cut: true`; `at G read` gives the whole value).
 */
export const HISTORY_USAGE = [
  'history info                 the window: oldest and newest generation, records, bytes',
  'history log [PATH] [domid=N] [since=T] [until=T] [kind=added|removed|changed|perms] [conn=KIND] [limit=N] [before=G]',
  '                             commits that changed PATH or below, newest first (JSON; `next` pages)',
  'history at G|TIME read|ls|perms|tree PATH   PATH as it was (TIME: RFC 3339)',
  'history diff A B [PATH]      what changed under PATH from A to B (generations or times)',
  'history blame PATH           the last commit that changed each node under PATH',
  'EAGAIN: an `at` or `diff` whose moment kept being taken back (rolled-back commits) while rebuilt; ask again',
].join('\n');

export interface HistoryPort {
  readonly history: History | undefined;
  /** Absent: moments are rebuilt at once, inside the query (tests of the dispatcher). */
  readonly moments?: MomentBuilder | undefined;
  /** Pending while history on disk is still to be read back (a restart's first moments): queries wait for it. */
  readonly historyReady?: Promise<void> | undefined;
}

/** Values longer than this are cut in a change (a change carries two of them, a page many). */
export const VALUE_CUT = 256;

/** Room for an answer: the payload less its NUL. */
const ROOM = PAYLOAD_MAX - 1;

const KINDS: readonly ChangeKind[] = ['added', 'removed', 'changed', 'perms'];
const CONNECTIONS: readonly ConnectionName[] = ['socket', 'socket_ro', 'domain', 'http', 'ws', 'ws-binary', 'internal'];

/**
 * `historyCommandInTurns(port, args)` is `historyCommand` with the moments it reads (`at`'s, and
 * `diff`'s two) rebuilt first a pass per turn of the event loop (moment-builder.ts), so that a
 * query of a moment far back does not hold up every other client meanwhile; the command then
 * finds them kept. What does not parse is left to `historyCommand` to refuse. A restart reads
 * history on disk back after its first replies: until then, queries wait (Daemon `historyReady`).
 */
export async function historyCommandInTurns(port: HistoryPort, args: readonly string[]): Promise<string> {
  if (port.historyReady !== undefined) await port.historyReady;
  const h = port.history;
  if (h !== undefined && port.moments !== undefined) {
    for (const g of momentsRead(h, args)) await port.moments.build(h, g);
  }
  return historyCommand(port, args);
}

/** The generations a history command reads whole: none when its moments do not parse. */
function momentsRead(h: History, args: readonly string[]): number[] {
  const [sub, ...rest] = args;
  const moments = sub === 'at' && rest.length === 3 ? [rest[0]!] : sub === 'diff' && (rest.length === 2 || rest.length === 3) ? [rest[0]!, rest[1]!] : [];
  try {
    return moments.map((m) => generationOf(h, parseMoment(m)));
  } catch {
    return [];
  }
}

export function historyCommand(port: HistoryPort, args: readonly string[]): string {
  const h = port.history;
  if (h === undefined) throw new XsError('ENOSYS', 'this daemon keeps no history (--history-records 0)');
  const [sub, ...rest] = args;
  switch (sub) {
    case 'info': {
      const o = h.oldest();
      const l = h.latest();
      const last = h.size > 0 ? h.nth(h.size - 1).time : undefined;
      return JSON.stringify({
        oldest: { generation: o.generation, ...(o.time === undefined ? {} : { time: iso(o.time) }) },
        latest: { generation: l.generation, ...(last === undefined ? {} : { time: iso(last) }) },
        records: h.size,
        bytes: h.bytes,
        allocated: h.allocated,
        limits: { records: h.options.records, bytes: h.options.bytes },
      });
    }
    case 'log':
      return log(h, rest);
    case 'at':
      return at(h, rest);
    case 'diff': {
      if (rest.length < 2 || rest.length > 3) throw new XsError('EINVAL', 'history diff A B [PATH]');
      const path = pathArg(rest[2] ?? '/');
      return fit((limit) => {
        const d = diffOf(h, parseMoment(rest[0]!), parseMoment(rest[1]!), path, limit);
        return { text: JSON.stringify({ from: d.from, to: d.to, path, changes: d.changes.map(changeJson), ...(d.truncated ? { truncated: true } : {}) }), more: d.truncated };
      });
    }
    case 'blame': {
      if (rest.length !== 1) throw new XsError('EINVAL', 'history blame PATH');
      const path = pathArg(rest[0]!);
      return fit((limit) => {
        const b = blameOf(h, path, limit);
        const lines = b.lines.map((l) =>
          l.generation === undefined ? { path: l.path } : { path: l.path, generation: l.generation, time: iso(l.time!), domid: l.domid, connection: l.connection, kind: l.kind },
        );
        return { text: JSON.stringify({ path, oldest: b.oldest, lines, ...(b.truncated ? { truncated: true } : {}) }), more: b.truncated };
      });
    }
    default:
      throw new XsError('EINVAL', `history ${sub === undefined ? 'needs' : 'takes'} info|log|at|diff|blame`);
  }
}

function log(h: History, args: readonly string[]): string {
  let path = '/';
  const f: { -readonly [K in keyof LogFilter]: LogFilter[K] } = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq < 0) {
      path = pathArg(a);
      continue;
    }
    const key = a.slice(0, eq);
    const v = a.slice(eq + 1);
    switch (key) {
      case 'domid':
        f.domid = uint(v, 65535, key);
        break;
      case 'since':
      case 'until':
        f[key] = timeArg(v);
        break;
      case 'kind':
        if (!(KINDS as readonly string[]).includes(v)) throw new XsError('EINVAL', `kind is one of ${KINDS.join(', ')}`);
        f.kind = v as ChangeKind;
        break;
      case 'conn':
        if (!(CONNECTIONS as readonly string[]).includes(v)) throw new XsError('EINVAL', `conn is one of ${CONNECTIONS.join(', ')}`);
        f.connection = v as ConnectionName;
        break;
      case 'limit':
        f.limit = uint(v, QUERY_LIMITS.entries, key);
        break;
      case 'before':
        f.before = uint(v, Number.MAX_SAFE_INTEGER, key);
        break;
      default:
        throw new XsError('EINVAL', `history log takes no ${JSON.stringify(key)}`);
    }
  }
  f.path = path;
  let limit = f.limit ?? 50;
  for (;;) {
    const page = logOf(h, { ...f, limit });
    const text = JSON.stringify({ entries: page.entries.map(entryJson), ...(page.next === undefined ? {} : { next: page.next }) });
    if (text.length <= ROOM) return text;
    if (limit === 1) {
      // One record whose changes alone do not fit: list as many as fit, and say so.
      const e = page.entries[0]!;
      for (let n = e.changes.length - 1; n >= 1; n = Math.floor(n / 2)) {
        const cut = JSON.stringify({ entries: [{ ...entryJson({ ...e, changes: e.changes.slice(0, n) }), truncated: true }], next: e.generation });
        if (cut.length <= ROOM) return cut;
      }
      throw new XsError('E2BIG', `generation ${e.generation} does not fit a reply`);
    }
    limit = Math.max(1, Math.min(page.entries.length - 1, Math.floor(limit / 2)));
  }
}

function at(h: History, args: readonly string[]): string {
  if (args.length !== 3) throw new XsError('EINVAL', 'history at G|TIME read|ls|perms|tree PATH');
  const g = generationOf(h, parseMoment(args[0]!));
  const v: Version = h.at(g);
  const path = pathArg(args[2]!);
  const node = nodeAt(v, path);
  if (node === undefined) throw new XsError('ENOENT', `no node ${path} at generation ${g}`);
  switch (args[1]) {
    case 'read':
      return node.value;
    case 'ls':
      return fit((limit) => {
        const names = [...node.children.keys()].sort();
        return { text: JSON.stringify({ generation: g, path, children: names.slice(0, limit), ...(names.length > limit ? { truncated: true } : {}) }), more: names.length > limit };
      }, 10_000);
    case 'perms':
      return JSON.stringify({ generation: g, path, perms: formatPerms(node.perms) });
    case 'tree':
      return fit((limit) => {
        const t = treeAt(v, path, limit)!;
        const nodes = t.nodes.map((n) => ({ path: n.path, ...value('value', n.value), perms: formatPerms(n.perms) }));
        return { text: JSON.stringify({ generation: g, path, nodes, ...(t.truncated ? { truncated: true } : {}) }), more: t.truncated };
      });
    default:
      throw new XsError('EINVAL', 'history at G|TIME read|ls|perms|tree PATH');
  }
}

/**
 * `fit(answer, limit)`: the answer for `limit` items, or for fewer until it fits one reply.
 * Halving keeps the work logarithmic in the limit.
 */
function fit(answer: (limit: number) => { text: string; more: boolean }, limit: number = QUERY_LIMITS.nodes): string {
  for (let n = limit; ; n = Math.floor(n / 2)) {
    const a = answer(Math.max(1, n));
    if (a.text.length <= ROOM) return a.text;
    if (n <= 1) throw new XsError('E2BIG', 'the answer does not fit a reply');
  }
}

function entryJson(e: LogEntry): Record<string, unknown> {
  return {
    generation: e.generation,
    time: iso(e.time),
    domid: e.who.domid,
    connection: e.who.connection,
    ...(e.who.id === undefined ? {} : { id: e.who.id }),
    ...(e.who.tx === undefined ? {} : { tx: e.who.tx }),
    requests: e.requests.map((r) => `${r.op} ${r.path}`),
    ...(e.moreRequests ? { moreRequests: true } : {}),
    changes: e.changes.map(changeJson),
    ...(e.truncated === true ? { truncated: true } : {}),
  };
}

function changeJson(c: HistoryChange): Record<string, unknown> {
  return {
    path: c.path,
    kind: c.kind,
    ...(c.old === undefined ? {} : value('old', c.old)),
    ...(c.new === undefined ? {} : value('new', c.new)),
    // Old permissions only where they differ from the new (a value change rarely changes them).
    ...(c.oldPerms === undefined || (c.newPerms !== undefined && samePerms(c.oldPerms, c.newPerms)) ? {} : { oldPerms: formatPerms(c.oldPerms) }),
    ...(c.newPerms === undefined ? {} : { newPerms: formatPerms(c.newPerms) }),
  };
}

/** A value as JSON carries it: byte strings are latin1 (store/node.ts), cut past VALUE_CUT. */
function value(key: string, v: string): Record<string, unknown> {
  return v.length <= VALUE_CUT ? { [key]: v } : { [key]: v.slice(0, VALUE_CUT), [`${key}Cut`]: true };
}

function iso(t: number): string {
  return new Date(t).toISOString();
}

function pathArg(p: string): string {
  if (p === '/' || /^(?:\/[A-Za-z0-9_@-]+)+$/.test(p) || /^@(introduceDomain|releaseDomain)$/.test(p)) return p;
  throw new XsError('EINVAL', `history takes absolute paths: ${JSON.stringify(p)}`);
}

function uint(v: string, max: number, what: string): number {
  if (!/^\d{1,16}$/.test(v) || Number(v) > max) throw new XsError('EINVAL', `bad ${what} ${JSON.stringify(v)}`);
  return Number(v);
}

function timeArg(v: string): number {
  const m = parseMoment(v);
  if ('generation' in m) throw new XsError('EINVAL', `expected an RFC 3339 time: ${JSON.stringify(v)}`);
  return m.time;
}
