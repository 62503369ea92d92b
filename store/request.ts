import type { Perms } from './perms.js';

/**
 * The requests the store answers, one per tree operation of the protocol (spec §7). Paths are as
 * the client sent them (relative ones resolve against the caller's home); values are byte strings
 * (see node.ts). The server maps wire messages to these; transactions log and replay them.
 */
export type StoreRequest =
  | { readonly op: 'read'; readonly path: string }
  | { readonly op: 'directory'; readonly path: string }
  | { readonly op: 'get-perms'; readonly path: string }
  | { readonly op: 'write'; readonly path: string; readonly value: string }
  | { readonly op: 'mkdir'; readonly path: string }
  | { readonly op: 'rm'; readonly path: string }
  | { readonly op: 'set-perms'; readonly path: string; readonly perms: readonly string[] };

export type StoreOp = StoreRequest['op'];

export type StoreReply =
  | { readonly kind: 'value'; readonly value: string }
  | { readonly kind: 'names'; readonly names: readonly string[] }
  | { readonly kind: 'perms'; readonly perms: Perms }
  | { readonly kind: 'ok' };

/**
 * What a successful update did, for watches (spec §8.2): `set` for a node created, written or
 * given new permissions; `remove` for the top of a removed subtree. Implicitly created parents are
 * not listed (spec §7.2: they fire no event of their own).
 */
export interface Change {
  readonly path: string;
  readonly kind: 'set' | 'remove';
}

export const OK: StoreReply = Object.freeze({ kind: 'ok' });

/**
 * Bytes a transaction keeps for each request it logs besides the request's own strings: the log
 * entry, its outcome's slot, the nodes of the observation tries on its path (an estimate of V8's
 * object sizes, deliberately on the high side).
 */
export const LOGGED_REQUEST_OVERHEAD = 128;

/**
 * `requestBytes(req)` is what logging `req` in a transaction costs before its outcome is known:
 * its path, its value or permissions, and the entry itself. Strings are byte strings (latin1), so
 * a string's length is its size in bytes.
 */
export function requestBytes(req: StoreRequest): number {
  let n = LOGGED_REQUEST_OVERHEAD + req.path.length;
  if (req.op === 'write') n += req.value.length;
  else if (req.op === 'set-perms') for (const p of req.perms) n += p.length + 1;
  return n;
}

/** True for the operations that may change the store. */
export function isUpdate(op: StoreOp): boolean {
  return op === 'write' || op === 'mkdir' || op === 'rm' || op === 'set-perms';
}
