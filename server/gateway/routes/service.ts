import type { FastifyInstance } from 'fastify';
import { tokenBodySchema } from '../../../protocol/json/index.js';
import { XsError } from '../../../store/index.js';
import type { Gateway } from '../gateway.js';

/** Domain ids from here on are Xen's reserved ones (DOMID_FIRST_RESERVED): never a guest. */
const DOMID_FIRST_RESERVED = 0x7ff0;

/**
 * Tokens, health and metrics:
 *   POST   /v1/tokens { domid }   (privileged) -> { token, domid }: act as guest `domid`
 *   DELETE /v1/tokens/<token>     (privileged) -> { ok: true }
 *   GET    /healthz  /readyz      (public: they say only whether the daemon serves)
 *   GET    /metrics               (privileged: it shows every domain's node count and usage)
 * The probes and the scrape read state only: they make no store request and touch no client, so
 * they never count as activity.
 */
export async function serviceRoutes(app: FastifyInstance, opts: { gateway: Gateway; ready: () => boolean }): Promise<void> {
  const gw = opts.gateway;

  const privileged = { config: { access: 'privileged' } } as const;
  const probe = { config: { access: 'public' } } as const;

  app.post('/v1/tokens', privileged, (req) => {
    const { domid } = tokenBodySchema.parse(req.body);
    if (domid >= DOMID_FIRST_RESERVED) throw new XsError('EINVAL', `domain ${domid} is reserved`);
    return { token: gw.tokens.issue(domid), domid };
  });

  app.delete('/v1/tokens/:token', privileged, (req) => {
    const { token } = req.params as { token: string };
    if (!gw.tokens.revoke(token)) throw new XsError('ENOENT', 'no such token');
    return { ok: true };
  });

  app.get('/healthz', probe, () => ({ ok: true }));

  app.get('/readyz', probe, (_req, reply) => {
    if (!opts.ready()) return reply.code(503).send({ error: 'EBUSY', message: 'stopping' });
    return { ready: true };
  });

  app.get('/metrics', privileged, (_req, reply) => {
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(gw.metrics.render());
  });
}
