/**
 * The HTTP and WebSocket gateway's fastify application. Loaded by index.ts's `startGateway` only
 * when `--http` is given (issue 16: fastify, ws and zod are most of what a daemon would otherwise
 * load before its first reply).
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Daemon } from '../daemon.js';
import { REQUEST_IDLE_MS } from '../connection/index.js';
import { listenUnix } from '../transport/index.js';
import { authorize } from './access.js';
import { SMALL_BODY_MAX } from './body-limits.js';
import { toHttpError } from './errors.js';
import { Gateway } from './gateway.js';
import { ANONYMOUS, Tokens } from './identity.js';
import { linger } from './linger.js';
import { formatUrl, type ListenAddress } from './listen-address.js';
import type { GatewaySettings } from './settings.js';
import { OriginGuard } from './origin.js';
import { historyRoutes } from './routes/history.js';
import { nodeRoutes } from './routes/node.js';
import { serviceRoutes } from './routes/service.js';
import { transactionRoutes } from './routes/transaction.js';
import { webView } from './web/index.js';
import { WS_PATH, WsEndpoint } from './ws.js';

export { NODE_REPLY_SCHEMA } from './routes/node.js';

export interface GatewayHandle {
  /** `http://host:port` or `unix:/path`, also written to `<rundir>/http-address`. */
  readonly url: string;
  /** The privileged token, also written to `<rundir>/http-token` (mode 0600). */
  readonly token: string;
  readonly app: FastifyInstance;
  /** The guest tokens issued so far (a live update hands them on). */
  guestTokens(): [string, number][];
  close(): Promise<void>;
}

/**
 * The gateway's fastify options (also the benchmark's fastify floor, `bench/null-gateway.ts`, so
 * that both measure the same framework set-up).
 */
export function fastifyOptions() {
  // logger: false still runs fastify's request logging calls into a no-op logger, each with an
  // object built for it and the response time read (fastify lib/log-controller.js):
  // disableRequestLogging skips them on every request. `--access-log` is the daemon's own log.
  // It is given through a LogController: as a top-level option fastify 5 prints a deprecation
  // warning (FSTDEP023) to the daemon's stderr at every start.
  return {
    logger: false,
    logController: new LogController({ disableRequestLogging: true }),
    // The routes that take a real body say how big it may be (body-limits.ts).
    bodyLimit: SMALL_BODY_MAX,
    routerOptions: { maxParamLength: 8192 },
  } as const;
}

/**
 * `buildApp(gateway, ready)` is the fastify instance with every route, unlistened (tests may
 * `inject` into it).
 */
export async function buildApp(gw: Gateway, ready: () => boolean, guard?: OriginGuard): Promise<FastifyInstance> {
  const app = Fastify(fastifyOptions());

  // fastify refuses an object as a request decorator's initial value (it would be shared by
  // every request): null until the onRequest hook below sets it, before any handler runs.
  app.decorateRequest('identity', null, []);
  // Who the caller is and whether it may call the route, decided before fastify reads the body
  // (onRequest runs before body parsing): a refused client costs no memory for what it sends.
  app.addHook('onRequest', (req, _reply, done) => {
    try {
      guard?.checkHost(req.headers);
      // A route that does not say who may call it is privileged. An unknown URL is 404 for
      // anyone: it shows nothing (the routes are documented), and a typo is not reported as a
      // credentials problem.
      const access = req.routeOptions.config.access ?? (req.is404 ? 'public' : 'privileged');
      if (access === 'public') {
        req.identity = ANONYMOUS;
      } else {
        req.identity = gw.tokens.identify(req.headers.authorization);
        authorize(req.identity, access, gw.anonymous, `${req.method} ${req.url.split('?')[0]}`);
      }
      done();
    } catch (e) {
      done(e as Error);
    }
  });
  app.addHook('onResponse', (req, reply, done) => {
    gw.metrics.request(req.routeOptions.url ?? 'unmatched', req.method, reply.statusCode, reply.elapsedTime / 1000);
    // Answered before its body was all here (401, 413 on the headers): a lingering close, so
    // that the rest of the body is not read (linger.ts). Decided once the parser has taken what
    // had arrived: a refusal decided on the headers is sent while the parser is still at them,
    // so a short body that came with them was not "complete" yet, and the connection was
    // half-closed without a word; a keep-alive client sending its next request on it then had
    // it cut ("other side closed", test/gateway/http.test.ts). Such a connection now stays open.
    if (!req.raw.complete) {
      const raw = req.raw;
      setImmediate(() => {
        if (!raw.complete) linger(raw.socket);
      });
    }
    done();
  });
  app.setErrorHandler((err, req, reply) => {
    const { status, body, headers, unexpected } = toHttpError(err);
    if (unexpected) gw.daemon.log.error({ err, method: req.method, url: req.url }, 'gateway request failed unexpectedly');
    return reply.code(status).headers(headers).send(body);
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'ENOENT', message: `no route ${req.method} ${req.url.split('?')[0]}` }),
  );

  await app.register(nodeRoutes, { gateway: gw });
  await app.register(historyRoutes, { gateway: gw });
  await app.register(transactionRoutes, { gateway: gw });
  await app.register(serviceRoutes, { gateway: gw, ready });
  app.get(WS_PATH, { config: { access: 'public' } }, (_req, reply) =>
    reply.code(426).header('upgrade', 'websocket').send({ error: 'EINVAL', message: 'this is a WebSocket endpoint: send an Upgrade request' }),
  );
  try {
    await app.register(webView);
  } catch (e) {
    gw.daemon.log.warn({ err: (e as Error).message }, 'web view not available');
  }
  return app;
}

/**
 * `startGateway(daemon, settings, rundir, privileged?, guests?)` makes the privileged token (or
 * keeps the one given: a live update's next process keeps its predecessor's, and its guest
 * tokens), starts fastify and the WebSocket endpoint on `settings.address`, and writes
 * `<rundir>/http-token` and `<rundir>/http-address`.
 */
export async function startGateway(
  daemon: Daemon,
  settings: GatewaySettings,
  rundir: string,
  privileged?: string,
  guests?: Iterable<readonly [string, number]>,
): Promise<GatewayHandle> {
  const tokens = new Tokens(privileged, guests);
  const tokenFile = join(rundir, 'http-token');
  // Unlink first: the mode of writeFileSync applies only to a file it creates.
  rmSync(tokenFile, { force: true });
  writeFileSync(tokenFile, `${tokens.privileged}\n`, { mode: 0o600, flag: 'wx' });

  const addr = settings.address;
  const gw = new Gateway(daemon, tokens, settings.anonymous);
  let stopping = false;
  const guard = new OriginGuard(addr);
  const app = await buildApp(gw, () => !stopping, guard);
  // Any local user reaches the gateway's port: its connections (HTTP and WebSocket, each a
  // descriptor) are capped and taken from the guests' side, so that a flood of them cannot take
  // the descriptors dom0's socket and INTRODUCE need (issue 17's reserve). Node closes one past
  // the cap at once; refusals are counted and summarised, not logged one line each.
  const descriptors = daemon.descriptors;
  const cap = settings.connections ?? descriptors.defaultGatewayShare();
  app.server.maxConnections = cap;
  app.server.on('drop', () => descriptors.refuse('http', `the gateway holds its ${cap} connections (--http-connections)`));
  descriptors.setGatewayShare(cap);
  // ... and a connection that sends nothing for --request-idle-ms is closed, or idle ones would
  // hold the cap for good (Node's header timeout does not start before a first byte). A
  // WebSocket is not touched: ws clears the timeout of the socket it upgrades.
  app.server.setTimeout(daemon.options.requestIdleMs ?? REQUEST_IDLE_MS);
  const ws = new WsEndpoint(app.server, gw, guard);
  await app.ready();
  let bound: ListenAddress = addr;
  if (addr.kind === 'unix') {
    await listenUnix(app.server, addr.path);
  } else {
    await new Promise<void>((resolve, reject) => {
      app.server.once('error', reject);
      app.server.listen(addr.port, addr.host, () => {
        app.server.off('error', reject);
        resolve();
      });
    });
    const a = app.server.address();
    if (a !== null && typeof a === 'object') bound = { kind: 'tcp', host: addr.host, port: a.port };
  }
  const url = formatUrl(bound);
  // Written whole, then renamed: whoever sees the file sees the whole address (tests poll it).
  const addressFile = join(rundir, 'http-address');
  writeFileSync(`${addressFile}.tmp`, `${url}\n`);
  renameSync(`${addressFile}.tmp`, addressFile);
  daemon.log.info({ url, token: tokenFile, anonymous: settings.anonymous, connections: cap }, 'HTTP gateway listening');

  return {
    url,
    token: tokens.privileged,
    app,
    guestTokens: () => tokens.guestTokens(),
    close: async () => {
      stopping = true;
      ws.close();
      gw.close();
      await new Promise<void>((resolve) => {
        app.server.close(() => resolve());
        app.server.closeAllConnections();
      });
      await app.close();
      descriptors.setGatewayShare(0);
    },
  };
}
