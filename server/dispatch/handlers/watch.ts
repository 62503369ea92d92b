import { Feature, parseUint, splitArgs } from '../../../protocol/index.js';
import { parseWatchPath, XsError } from '../../../store/index.js';
import type { WatchPort } from '../ports.js';
import { OK_REPLY, required, type Handler } from '../handler.js';
import { watchBytes } from '../../watches/index.js';

/**
 * A watch depth is a decimal count of levels; more than this many is as good as unlimited (a path
 * has at most 2048 bytes, so at most 1024 levels), and keeps the number small.
 */
const DEPTH_MAX = 0xffff;

/**
 * WATCH `path|token|[depth|]` (spec §8.1): OK, then at once one event with the path as registered.
 * The depth (Xen 4.22 `do_watch`) is accepted from connections with the WATCHDEPTH feature (else
 * EINVAL, as 4.17 answers any third string); it must be a plain decimal (Xen's `atoi` would take
 * `x` as 0: we answer EINVAL). Duplicates (same path and token, whatever the depth) are EEXIST; an
 * unprivileged domain may hold `watches` of them over all its connections (E2BIG beyond,
 * cxenstored 4.17), and their paths and tokens count against its `memory` (ENOSPC beyond).
 */
export const watch: Handler<WatchPort> = (ctx, payload) => {
  const args = required(splitArgs(payload, 3));
  const { port, conn, limits } = ctx;
  const depthAllowed = conn.caller.features === undefined || (conn.caller.features & Feature.WATCHDEPTH) !== 0;
  if (args.length !== 2 && !(args.length === 3 && depthAllowed)) required(undefined, 'WATCH takes a path, a token and (with WATCHDEPTH) a depth');
  const [path, token] = args as [string, string];
  const depth = args.length === 3 ? required(parseUint(args[2]!, DEPTH_MAX), 'bad watch depth') : undefined;
  const p = parseWatchPath(path, conn.caller.domid, limits.pathMax);
  if (port.watches.find(conn, p.path, token) !== undefined) throw new XsError('EEXIST', 'watch exists');
  const w = { owner: conn, path, canonical: p.path, token, relative: p.kind === 'node' && path !== p.path, depth };
  conn.budget?.admitWatch(limits, watchBytes(w));
  port.watches.add(w);
  return { payload: OK_REPLY.payload, initial: { conn, watch: w, path } };
};

/** UNWATCH `path|token|`: by canonical path, so relative and absolute forms match (spec §8.1). */
export const unwatch: Handler<WatchPort> = (ctx, payload) => {
  const args = required(splitArgs(payload, 2));
  if (args.length !== 2) required(undefined, 'UNWATCH takes a path and a token');
  const { port, conn, limits } = ctx;
  const p = parseWatchPath(args[0]!, conn.caller.domid, limits.pathMax);
  const w = port.watches.find(conn, p.path, args[1]!);
  if (w === undefined) throw new XsError('ENOENT', 'no such watch');
  port.watches.remove(w);
  return OK_REPLY;
};

/**
 * RESET_WATCHES: drops every watch and every open transaction of the connection (spec §7.15),
 * whatever tx_id it carries (XSA-484), from every index (XSA-330).
 */
export const resetWatches: Handler<WatchPort> = (ctx) => {
  ctx.port.watches.removeOwner(ctx.conn);
  ctx.conn.transactions.clear();
  return OK_REPLY;
};
