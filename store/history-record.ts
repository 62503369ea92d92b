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

