import { differencesOf } from './delta.js';
import { XsNode } from './node.js';
import { SPECIAL_NAMES, type SpecialName } from './path.js';
import { formatPerms, parsePerms, samePerms, type Perms } from './perms.js';
import { XsError } from '../protocol/index.js';
import type { SpecialPerms } from './store.js';
import { lookup, replace } from './tree.js';
import type { StoreOp } from './request.js';

/**
 * One commit as history keeps it: which version it made, when, who asked, what was asked and what
 * changed. Changes carry the old value and permissions as well as the new, so a record can be
 * undone exactly (`undo`): a version older than the roots history keeps is rebuilt from a newer one.
 */

/**
 * How the commit's author was connected: the connection kinds of server/connection, and
 * `internal` for what the daemon does on its own (a domain's release, a restore).
 */
export type ConnectionName = 'socket' | 'socket_ro' | 'domain' | 'http' | 'ws' | 'ws-binary' | 'internal';

export interface Who {
  readonly domid: number;
  readonly connection: ConnectionName;
  /** The connection's id in this daemon (absent for `internal`). */
  readonly id?: number | undefined;
  /** The transaction it committed, if any. */
  readonly tx?: number | undefined;
}

export const INTERNAL: Who = Object.freeze({ domid: 0, connection: 'internal' });

/** A request that made the commit (op and path only: values are in the changes). */
export interface RequestSummary {
  readonly op: StoreOp | 'release' | 'restore';
  readonly path: string;
}

/**
 * `added`: the node did not exist before; `removed`: it does not exist after (every node of a
 * removed subtree is listed, parents first, so undo can put them back); `changed`: its value
 * changed (maybe its permissions too); `perms`: only its permissions. The special watch names
 * (`@introduceDomain`, spec §8.6) appear as `perms` changes with empty values.
 */
export type ChangeKind = 'added' | 'removed' | 'changed' | 'perms';

export interface HistoryChange {
  readonly path: string;
  readonly kind: ChangeKind;
  readonly old?: string | undefined;
  readonly oldPerms?: Perms | undefined;
  readonly new?: string | undefined;
  readonly newPerms?: Perms | undefined;
}

export interface HistoryRecord {
  readonly generation: number;
  /** Milliseconds since the epoch, as the daemon's clock said (never before the previous record's). */
  readonly time: number;
  readonly who: Who;
  readonly requests: readonly RequestSummary[];
  /** True when the commit made more requests than `requests` lists (a long transaction). */
  readonly moreRequests: boolean;
  readonly changes: readonly HistoryChange[];
  /** An estimate of the record's memory, for the window's byte bound. */
  readonly bytes: number;
}

/** A version as history answers it: the tree and the special names' permissions. */
export interface Version {
  readonly root: XsNode;
  readonly special: SpecialPerms;
  readonly generation: number;
}

/** Requests kept per record: a transaction may make thousands; the changes say what they did. */
export const REQUESTS_KEPT = 16;

/** Per-object overheads of the estimate (V8 objects and strings, on the high side). */
const RECORD_OVERHEAD = 160;
const CHANGE_OVERHEAD = 72;
const PERM_BYTES = 24;

export interface RecordMeta {
  readonly time: number;
  readonly who: Who;
  readonly requests: readonly RequestSummary[];
}

/**
 * `recordOf(before, after, meta, hints?)` is the record of the commit from `before` to `after`.
 * Its changes come from the commit's differences (`differencesOf`, guided by the changed paths
 * the commit reported, as the journal's delta is), never from a walk of the tree: the cost is
 * what the commit touched. A removed subtree is listed node by node; that is the size of what
 * the commit removed, which the removal itself already paid for (its quota recount).
 */
export function recordOf(before: Version, after: Version, meta: RecordMeta, hints?: readonly string[]): HistoryRecord {
  const changes: HistoryChange[] = [];
  for (const d of differencesOf(before.root, after.root, hints)) {
    const segs = segsOf(d.path);
    if (d.kind === 'added') {
      const n = lookup(after.root, segs)!;
      changes.push({ path: d.path, kind: 'added', new: n.value, newPerms: n.perms });
    } else if (d.kind === 'removed') {
      removedSubtree(d.path, lookup(before.root, segs)!, changes);
    } else {
      const o = lookup(before.root, segs)!;
      const n = lookup(after.root, segs)!;
      const kind = o.value !== n.value ? 'changed' : 'perms';
      changes.push({ path: d.path, kind, old: o.value, oldPerms: o.perms, new: n.value, newPerms: n.perms });
    }
  }
  for (const name of SPECIAL_NAMES) {
    if (!samePerms(before.special[name], after.special[name])) {
      changes.push({ path: name, kind: 'perms', old: '', oldPerms: before.special[name], new: '', newPerms: after.special[name] });
    }
  }
  const requests = meta.requests.length > REQUESTS_KEPT ? meta.requests.slice(0, REQUESTS_KEPT) : meta.requests;
  let bytes = RECORD_OVERHEAD;
  for (const r of requests) bytes += 32 + r.path.length;
  for (const c of changes) {
    bytes += CHANGE_OVERHEAD + c.path.length + (c.old?.length ?? 0) + (c.new?.length ?? 0);
    // Permission lists are shared by reference with the nodes; counted anyway, as a record may outlive them.
    bytes += PERM_BYTES * ((c.oldPerms?.length ?? 0) + (c.newPerms?.length ?? 0));
  }
  return Object.freeze({
    generation: after.generation,
    time: meta.time,
    who: meta.who,
    requests,
    moreRequests: meta.requests.length > requests.length,
    // Exact-size copy: an array grown by push keeps spare capacity (17 slots for one change),
    // and the window holds every record for as long as an hour (issue 14).
    changes: changes.slice(),
    bytes,
  });
}

/** Every node of the removed subtree at `path`, parents first, with its old value and permissions. */
function removedSubtree(path: string, node: XsNode, out: HistoryChange[]): void {
  // Iterative (XSA-418): a subtree may be as deep as paths allow.
  const stack: [string, XsNode][] = [[path, node]];
  while (stack.length > 0) {
    const [p, n] = stack.pop()!;
    out.push({ path: p, kind: 'removed', old: n.value, oldPerms: n.perms });
    const names = [...n.children.keys()];
    for (let i = names.length - 1; i >= 0; i--) stack.push([`${p}/${names[i]!}`, n.children.get(names[i]!)!]);
  }
}

/**
 * `undo(version, record)` is the version before `record`, given the version it made. Exact: added
 * nodes go (children first), removed ones come back (parents first) with their old values and
 * permissions, changed ones get their old value and permissions back with their children kept.
 */
export function undo(version: Version, record: HistoryRecord): Version {
  if (version.generation !== record.generation) {
    throw new RangeError(`undo of generation ${record.generation} on generation ${version.generation}`);
  }
  let root = version.root;
  let special = version.special;
  const cs = record.changes;
  for (let i = cs.length - 1; i >= 0; i--) {
    const c = cs[i]!;
    if (c.kind !== 'added') continue;
    const segs = segsOf(c.path);
    if (lookup(root, segs) !== undefined) root = replace(root, segs, undefined);
  }
  for (const c of cs) {
    if (c.kind === 'added') continue;
    if (c.path.charCodeAt(0) !== 0x2f /* / */) {
      special = Object.freeze({ ...special, [c.path as SpecialName]: c.oldPerms! });
      continue;
    }
    const segs = segsOf(c.path);
    const now = lookup(root, segs);
    const node =
      now === undefined ? XsNode.leaf(c.old ?? '', c.oldPerms!) : new XsNode(c.old ?? '', c.oldPerms!, now.children);
    root = replace(root, segs, node);
  }
  return { root, special, generation: record.generation - 1 };
}

export function segsOf(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

/**
 * `encodeRecord(r)` / `decodeRecord(buf)`: a record as JSON text, for the history segments
 * beside the write-ahead log (server/persistence/history-log.ts). Values are byte strings, which
 * JSON carries exactly; permissions in their wire form. Decoding validates every field: a
 * malformed record is EIO.
 */
export function encodeRecord(r: HistoryRecord): Buffer {
  const w = r.who;
  return Buffer.from(
    JSON.stringify({
      g: r.generation,
      t: r.time,
      w: [w.domid, w.connection, w.id ?? null, w.tx ?? null],
      q: r.requests.map((q) => [q.op, q.path]),
      m: r.moreRequests ? 1 : 0,
      c: r.changes.map((c) => [c.path, c.kind, c.old ?? null, c.oldPerms === undefined ? null : formatPerms(c.oldPerms), c.new ?? null, c.newPerms === undefined ? null : formatPerms(c.newPerms)]),
    }),
    'utf8',
  );
}

const KINDS: readonly string[] = ['added', 'removed', 'changed', 'perms'];
const CONNECTIONS: readonly string[] = ['socket', 'socket_ro', 'domain', 'http', 'ws', 'ws-binary', 'internal'];
const OPS: readonly string[] = ['read', 'directory', 'get-perms', 'write', 'mkdir', 'rm', 'set-perms', 'release', 'restore'];

export function decodeRecord(buf: Buffer): HistoryRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(buf.toString('utf8'));
  } catch {
    throw badRecord('not JSON');
  }
  const o = raw as { g?: unknown; t?: unknown; w?: unknown; q?: unknown; m?: unknown; c?: unknown };
  if (typeof raw !== 'object' || raw === null) throw badRecord('not an object');
  const int = (x: unknown, what: string): number => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) throw badRecord(`bad ${what}`);
    return x;
  };
  const str = (x: unknown, what: string): string => {
    if (typeof x !== 'string') throw badRecord(`bad ${what}`);
    return x;
  };
  const perms = (x: unknown): Perms | undefined => {
    if (x === null) return undefined;
    if (!Array.isArray(x) || !x.every((e) => typeof e === 'string')) throw badRecord('bad permissions');
    try {
      return parsePerms(x as string[]);
    } catch (e) {
      throw badRecord((e as Error).message);
    }
  };
  const opt = (x: unknown, what: string): string | undefined => (x === null ? undefined : str(x, what));
  if (!Array.isArray(o.w) || o.w.length !== 4) throw badRecord('bad who');
  const [domid, connection, id, tx] = o.w as unknown[];
  if (!CONNECTIONS.includes(str(connection, 'connection'))) throw badRecord('bad connection');
  const who: Who = {
    domid: int(domid, 'domid'),
    connection: connection as ConnectionName,
    ...(id === null ? {} : { id: int(id, 'connection id') }),
    ...(tx === null ? {} : { tx: int(tx, 'transaction id') }),
  };
  if (!Array.isArray(o.q) || !Array.isArray(o.c)) throw badRecord('no requests or changes');
  const requests = o.q.map((q: unknown): RequestSummary => {
    if (!Array.isArray(q) || q.length !== 2 || !OPS.includes(str(q[0], 'op'))) throw badRecord('bad request');
    return { op: q[0] as RequestSummary['op'], path: str(q[1], 'request path') };
  });
  let bytes = RECORD_OVERHEAD;
  for (const r of requests) bytes += 32 + r.path.length;
  const changes = o.c.map((c: unknown): HistoryChange => {
    if (!Array.isArray(c) || c.length !== 6 || !KINDS.includes(str(c[1], 'kind'))) throw badRecord('bad change');
    const ch: HistoryChange = {
      path: str(c[0], 'path'),
      kind: c[1] as ChangeKind,
      old: opt(c[2], 'old value'),
      oldPerms: perms(c[3]),
      new: opt(c[4], 'new value'),
      newPerms: perms(c[5]),
    };
    bytes += CHANGE_OVERHEAD + ch.path.length + (ch.old?.length ?? 0) + (ch.new?.length ?? 0);
    bytes += PERM_BYTES * ((ch.oldPerms?.length ?? 0) + (ch.newPerms?.length ?? 0));
    return ch;
  });
  const generation = int(o.g, 'generation');
  if (generation < 1) throw badRecord('bad generation');
  return Object.freeze({ generation, time: int(o.t, 'time'), who, requests, moreRequests: o.m === 1, changes, bytes });
}

function badRecord(what: string): XsError {
  return new XsError('EIO', `corrupt history record: ${what}`);
}
