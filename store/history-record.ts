import { XsNode } from './node.js';
import type { SpecialName } from './path.js';
import type { Perms } from './perms.js';
import type { SpecialPerms } from './store.js';
import { lookup, replace } from './tree.js';
import type { StoreOp } from './request.js';

/**
 * One commit as history keeps it: which version it made, when, who asked, what was asked and what
 * changed. Changes carry the old value and permissions as well as the new, so a record can be
 * undone exactly (`undo`): a version history does not keep whole is rebuilt from a newer one.
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
  /** The record's size in bytes, as history keeps it (history-codec.ts), for the window's byte bound. */
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

export interface RecordMeta {
  readonly time: number;
  readonly who: Who;
  readonly requests: readonly RequestSummary[];
}

/**
 * `undoAll(version, g, records)` is the version at generation `g`, given a later one and the
 * records that made every generation from `g + 1` to it (`records`, oldest first), undone at
 * once: a path's state at `g` is the old side of the earliest of them that changed it, so each
 * path changed is rebuilt once however often it changed (issue 14: `at` undid record by record,
 * ~20 µs each, which is why a version is kept whole every so many commits, and keeping one costs
 * writes). Nodes that did not exist at `g` go first
 * (in any order: a node's removal takes its subtree, whose nodes did not exist then either); then
 * nodes that did come back or get their old value and permissions, shallowest first, each keeping
 * the children it has by then. Exact: added nodes go, removed ones come back with their old values
 * and permissions, changed ones get theirs back with their children kept. Child lists are sorted
 * when listed (child-names.ts), so the order nodes are made in is not seen.
 */
export function undoAll(version: Version, g: number, records: Iterable<HistoryRecord>): Version {
  const first = new Map<string, HistoryChange>();
  let expect = g + 1;
  for (const r of records) {
    if (r.generation !== expect) throw new RangeError(`undo of generation ${r.generation} where ${expect} was due`);
    expect++;
    for (const c of r.changes) if (!first.has(c.path)) first.set(c.path, c);
  }
  if (expect - 1 !== version.generation) throw new RangeError(`undo to ${g} from generation ${version.generation} given records to ${expect - 1}`);
  return putBack(version, g, first, 'old');
}

/**
 * `redoAll(version, g, records)` is the version at generation `g`, given an earlier one and the
 * records that made every generation from just after it to `g` (`records`, oldest first), redone
 * at once: `undoAll` the other way round, for a moment asked just after one rebuilt a moment ago
 * (history.ts `at`: scrubbing a timeline forward). A path's state at `g` is the new side of the
 * latest record that changed it. Nodes that do not exist at `g` go first: a removal lists every
 * node of the subtree it took, so a node kept from the earlier version whose subtree went and came
 * back has each of its old descendants either listed as removed or made again. Then the nodes that
 * exist at `g` get their new value and permissions, shallowest first, each keeping the children it
 * has by then (a node made again has none left from before).
 */
export function redoAll(version: Version, g: number, records: Iterable<HistoryRecord>): Version {
  const last = new Map<string, HistoryChange>();
  let expect = version.generation + 1;
  for (const r of records) {
    if (r.generation !== expect) throw new RangeError(`redo of generation ${r.generation} where ${expect} was due`);
    expect++;
    for (const c of r.changes) last.set(c.path, c);
  }
  if (expect - 1 !== g) throw new RangeError(`redo to ${g} from generation ${version.generation} given records to ${expect - 1}`);
  return putBack(version, g, last, 'new');
}

/**
 * `putBack(version, g, changes, side)`: `version` with each path of `changes` as one side of its
 * change says it was at `g` (`old` for undo, `new` for redo): the nodes that side says did not
 * exist go first, then the others get that side's value and permissions, shallowest first, each
 * keeping the children it has by then; the special names get that side's permissions.
 */
function putBack(version: Version, g: number, changes: ReadonlyMap<string, HistoryChange>, side: 'old' | 'new'): Version {
  // The kind whose chosen side is "no node": a node added did not exist before it, one removed not after.
  const absent: ChangeKind = side === 'old' ? 'added' : 'removed';
  let root = version.root;
  let special = version.special;
  const gone: string[][] = [];
  const present: [string[], HistoryChange][] = [];
  for (const [path, c] of changes) {
    if (path.charCodeAt(0) !== 0x2f /* / */) {
      if (c.kind !== absent) special = Object.freeze({ ...special, [path as SpecialName]: permsOf(c, side) });
      continue;
    }
    if (c.kind === absent) gone.push(segsOf(path));
    else present.push([segsOf(path), c]);
  }
  for (const segs of gone) if (lookup(root, segs) !== undefined) root = replace(root, segs, undefined);
  present.sort((a, b) => a[0].length - b[0].length);
  for (const [segs, c] of present) {
    const now = lookup(root, segs);
    const value = (side === 'old' ? c.old : c.new) ?? '';
    const node = now === undefined ? XsNode.leaf(value, permsOf(c, side)) : new XsNode(value, permsOf(c, side), now.children);
    root = replace(root, segs, node);
  }
  return { root, special, generation: g };
}

/** A change's permissions on one side (every change of a node there has them). */
function permsOf(c: HistoryChange, side: 'old' | 'new'): Perms {
  return (side === 'old' ? c.oldPerms : c.newPerms)!;
}

export function segsOf(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

