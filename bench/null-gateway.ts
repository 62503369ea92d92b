#!/usr/bin/env node
/**
 * The floor of any HTTP gateway built on fastify on this machine: the gateway's own fastify
 * set-up (`fastifyOptions()`, the same compiled reply schema) with the two routes the HTTP load
 * test measures, and nothing behind them: no store, no session, no token or Host check, no
 * metrics. GET `/v1/node/<path>` answers `{ path, value, encoding }` with a fixed 16-byte value
 * (the shape and size of nxenstored's answer), PUT `/v1/node/<path>` takes the JSON body and
 * answers `{ ok: true }`. Never a product: a benchmark reference, as `null-xenstored.ts` is for
 * the wire protocol, so that `http-load --floor` can say how much of a row is the framework's
 * and the runtime's, and how much is ours (bench/RESULTS.md).
 *
 *     node dist/bench/null-gateway.js [--listen 127.0.0.1:0]    # prints its URL on stdout
 */
import Fastify from 'fastify';
import { parseArgs } from 'node:util';
import { fastifyOptions, NODE_REPLY_SCHEMA } from '../server/gateway/app.js';

const { values } = parseArgs({ options: { listen: { type: 'string', default: '127.0.0.1:0' } } });
const at = values.listen.lastIndexOf(':');
const host = values.listen.slice(0, at);
const port = Number(values.listen.slice(at + 1));
if (at < 0 || !Number.isInteger(port)) {
  process.stderr.write('usage: null-gateway.js [--listen HOST:PORT]\n');
  process.exit(2);
}

const app = Fastify(fastifyOptions());
app.get('/v1/node/*', { schema: { response: { 200: NODE_REPLY_SCHEMA } } }, async (req) => ({
  path: `/${(req.params as { '*': string })['*']}`,
  value: 'value-0123456789',
  encoding: 'utf8',
}));
app.put('/v1/node/*', async () => ({ ok: true }));
const url = await app.listen({ host, port });
process.stdout.write(`${url}\n`);
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void app.close().then(() => process.exit(0)));
