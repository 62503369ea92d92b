import { joinStrings, oneArg, PAYLOAD_MAX, parseUint, splitArgs, writeArgs } from '../../../protocol/index.js';
import { formatPerms, requestBytes, type StoreReply, type StoreRequest } from '../../../store/index.js';
import type { TreePort } from '../ports.js';
import { listingOf } from '../listing.js';
import { ok, OK_REPLY, required, type Handler, type Reply, type RequestContext } from '../handler.js';

/**
 * The tree operations (spec §7.1–7.7): parse the payload, run the request in the header's
 * transaction or directly on the live store, encode the reply. Inside a transaction the request
 * stays in the transaction's log until it ends, so an unprivileged domain pays for it from its
 * `memory` quota first (ENOSPC when it would not fit; XSA-326: many transactions holding large
 * values ran cxenstored out of memory, and ran ours out of heap, issue 17).
 */
function run(ctx: RequestContext<TreePort>, req: StoreRequest): StoreReply {
  if (ctx.tx === undefined) return ctx.port.apply(ctx.conn.caller, ctx.limits, req, ctx.conn);
  ctx.conn.budget?.admitBytes(ctx.limits, requestBytes(req));
  return ctx.tx.execute(req);
}

/**
 * `change(ctx, req)` runs a request that may change the tree: OK after the events it caused. Outside
 * a transaction it may wait for the fairness turn (the daemon's `applyFor`).
 */
function change(ctx: RequestContext<TreePort>, req: StoreRequest, payload?: Buffer): Reply | Promise<Reply> {
  if (ctx.tx === undefined) {
    const out = ctx.port.applyFor(ctx.conn, ctx.limits, req, payload);
    return out instanceof Promise ? out.then((o) => ok(o.deliveries)) : ok(out.deliveries);
  }
  run(ctx, req);
  return OK_REPLY;
}

const NO_NAMES: readonly string[] = Object.freeze([]);

const path = (payload: Buffer): string => required(oneArg(payload));

export const read: Handler<TreePort> = (ctx, payload) => {
  const r = run(ctx, { op: 'read', path: path(payload) });
  // READ's reply is the raw value, no trailing NUL (spec §7.1).
  return { payload: r.kind === 'value' ? r.value : '' };
};

/** DIRECTORY `path|` (spec §7.5): E2BIG past a message, decided on the listing's size before it is made. */
export const directory: Handler<TreePort> = (ctx, payload) => {
  const r = run(ctx, { op: 'directory', path: path(payload) });
  if (r.kind !== 'names') return { payload: '' };
  const listing = listingOf(r.names);
  return listing.size > PAYLOAD_MAX ? TOO_BIG : { payload: listing.bytes };
};

const TOO_BIG: Reply = Object.freeze({ payload: '', refused: 'E2BIG' });

export const getPerms: Handler<TreePort> = (ctx, payload) => {
  const r = run(ctx, { op: 'get-perms', path: path(payload) });
  return { payload: r.kind === 'perms' ? joinStrings(formatPerms(r.perms)) : '' };
};

export const write: Handler<TreePort> = (ctx, payload) => {
  const { path, value } = required(writeArgs(payload));
  return change(ctx, { op: 'write', path, value }, payload);
};

export const mkdir: Handler<TreePort> = (ctx, payload) => {
  return change(ctx, { op: 'mkdir', path: path(payload) });
};

export const rm: Handler<TreePort> = (ctx, payload) => {
  return change(ctx, { op: 'rm', path: path(payload) });
};

/** SET_PERMS `path|perm|perm|…|`: at least one permission (spec §7.7). */
export const setPerms: Handler<TreePort> = (ctx, payload) => {
  const args = required(splitArgs(payload, 2 + ctx.limits.permissions + 64));
  if (args.length < 2) required(undefined, 'SET_PERMS needs a path and at least one permission');
  return change(ctx, { op: 'set-perms', path: args[0]!, perms: args.slice(1) });
};

/**
 * DIRECTORY_PART `path|offset|` (spec §7.6): from byte `offset` of the NUL-separated child list,
 * as many whole names as fit after `<generation>|`, with an extra NUL once the list is exhausted
 * (listing.ts `part`: a copy out of the node version's listing, made once).
 */
export const directoryPart: Handler<TreePort> = (ctx, payload) => {
  const args = required(splitArgs(payload, 2));
  if (args.length !== 2) required(undefined, 'DIRECTORY_PART needs a path and an offset');
  const offset = required(parseUint(args[1]!, Number.MAX_SAFE_INTEGER), 'bad offset');
  const r = run(ctx, { op: 'directory', path: args[0]! });
  return { payload: listingOf(r.kind === 'names' ? r.names : NO_NAMES).part(offset) };
};
