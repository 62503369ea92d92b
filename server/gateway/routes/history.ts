import type { FastifyInstance } from 'fastify';
import { diffQuerySchema, historyQuerySchema } from '../../../protocol/json/index.js';
import type { Gateway } from '../gateway.js';
import { history } from './history-command.js';
import { xenPath } from './node.js';

/**
 * History over HTTP (issue 14), privileged only:
 *   GET /v1/history?path=&domid=&since=&until=&kind=&connection=&limit=&before=
 *       -> { entries: [{ generation, time, domid, connection, id?, tx?, requests, changes: [{ path, kind, old?, new? }] }], next? }
 *   GET /v1/diff?from=&to=&path=   -> { from, to, path, changes, truncated? }
 *   GET /v1/blame/<path>           -> { path, oldest, lines: [{ path, generation?, time?, domid?, connection?, kind? }], truncated? }
 *   (and GET /v1/node/<path>?at=G|TIME, in node.ts)
 * Each is CONTROL `history ...` on the identity's session (server/dispatch/handlers/history.ts):
 * one implementation, and the daemon's own privilege check behind the gateway's. An answer is
 * one reply (4096 bytes): pages are shorter when entries are large, and `next` continues.
 */
export async function historyRoutes(app: FastifyInstance, opts: { gateway: Gateway }): Promise<void> {
  const gw = opts.gateway;
  const privileged = { config: { access: 'privileged' } } as const;

  app.get('/v1/history', privileged, async (req) => {
    const q = historyQuerySchema.parse(req.query);
    const args = ['log', q.path ?? '/'];
    if (q.domid !== undefined) args.push(`domid=${q.domid}`);
    if (q.since !== undefined) args.push(`since=${q.since}`);
    if (q.until !== undefined) args.push(`until=${q.until}`);
    if (q.kind !== undefined) args.push(`kind=${q.kind}`);
    if (q.connection !== undefined) args.push(`conn=${q.connection}`);
    if (q.limit !== undefined) args.push(`limit=${q.limit}`);
    if (q.before !== undefined) args.push(`before=${q.before}`);
    return JSON.parse(await history(gw, req.identity, args)) as unknown;
  });

  app.get('/v1/diff', privileged, async (req) => {
    const q = diffQuerySchema.parse(req.query);
    return JSON.parse(await history(gw, req.identity, ['diff', q.from, q.to, q.path ?? '/'])) as unknown;
  });

  app.get('/v1/blame/*', privileged, async (req) => JSON.parse(await history(gw, req.identity, ['blame', xenPath(req)])) as unknown);
}
