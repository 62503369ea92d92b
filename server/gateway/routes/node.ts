import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Op, parseDecimal, parseDirectory, parseDirectoryPart, requestPayload } from '../../../protocol/index.js';
import { childrenQuerySchema, nodeQuerySchema, permsBodySchema, treeQuerySchema, writeBodySchema } from '../../../protocol/json/index.js';
import { XsError } from '../../../store/index.js';
import { PAYLOAD_BODY_MAX } from '../body-limits.js';
import type { Gateway } from '../gateway.js';
import type { Session } from '../session.js';
import { decodeValue, encodeValue, type Encoding } from '../values.js';
import { history } from './history-command.js';

/** Most names `?children=1` returns in one answer; `/v1/children` pages through any directory. */
export const CHILDREN_MAX = 10_000;

/** The answer of `GET /v1/node/<path>`. */
interface NodeReply {
  path: string;
  value: string;
  encoding: Encoding;
  children?: string[];
  childrenNext?: number;
  perms?: string[];
}

/** A read's flags when there is no query string (what `nodeQuerySchema` makes of `{}`). */
const NO_FLAGS = Object.freeze({ children: false, perms: false, encoding: undefined, at: undefined });

/**
 * The JSON schema of `NodeReply`: fastify compiles it (fast-json-stringify) into a serializer for
 * the 200 answer, cheaper than `JSON.stringify` on every read. Fields outside the schema would be
 * dropped, so it must list every field `NodeReply` has (routes.test.ts reads each back).
 */
export const NODE_REPLY_SCHEMA = {
  type: 'object',
  properties: {
    path: { type: 'string' },
    value: { type: 'string' },
    encoding: { type: 'string' },
    children: { type: 'array', items: { type: 'string' } },
    childrenNext: { type: 'integer' },
    perms: { type: 'array', items: { type: 'string' } },
  },
  required: ['path', 'value', 'encoding'],
} as const;

function nodeReply(path: string, bytes: Buffer, encoding: Encoding | undefined): NodeReply {
  const v = encodeValue(bytes, encoding);
  return { path, value: v.value, encoding: v.encoding };
}

/**
 * The tree routes. Each request is one or more wire requests on the identity's session; a read
 * with its children and permissions sends them back to back and a subtree is read inside a
 * transaction, so each answer shows one version of the store.
 *
 *   GET    /v1/node/<path>[?children=1][&perms=1][&encoding=base64]
 *   PUT    /v1/node/<path>     { value, encoding? }
 *   DELETE /v1/node/<path>
 *   POST   /v1/mkdir/<path>
 *   GET    /v1/perms/<path>    PUT /v1/perms/<path> { perms }
 *   GET    /v1/children/<path>?offset=N   (DIRECTORY_PART paging, spec §7.6)
 *   GET    /v1/tree/<path>?depth=&limit=&perms=1
 */
export async function nodeRoutes(app: FastifyInstance, opts: { gateway: Gateway }): Promise<void> {
  const gw = opts.gateway;
  // Who may call each route is decided before its body is read (access.ts, the onRequest hook):
  // reads take a token or, when allowed, none; changes take a token, and a body of one payload.
  const read = { config: { access: 'read' } } as const;
  const change = { config: { access: 'token' } } as const;
  const withBody = { ...change, bodyLimit: PAYLOAD_BODY_MAX } as const;
  /** Sends a request that changes the store on the identity's session; `{ ok: true }` once applied. */
  const apply = async (req: FastifyRequest, op: number, payload: (path: string) => Buffer) => {
    const path = xenPath(req);
    await gw.run(gw.session(req.identity), op, payload(path), 0, path);
    return { ok: true };
  };

  for (const prefix of ['/v1/node', '/v1/node/*']) {
    app.get(prefix, { ...read, schema: { response: { 200: NODE_REPLY_SCHEMA } } }, async (req): Promise<NodeReply> => {
      // Most reads carry no query string, and then every flag is off: zod runs only when there
      // is one to validate (the hot path of a plain read).
      const q = req.url.includes('?') ? nodeQuerySchema.parse(req.query) : NO_FLAGS;
      const path = xenPath(req);
      if (q.at !== undefined) return nodeAt(gw, req, path, q.at, q);
      const s = gw.session(req.identity);
      const value = gw.run(s, Op.READ, requestPayload.read(path), 0, path);
      if (!q.perms && !q.children) return nodeReply(path, await value, q.encoding);
      // Sent back to back, so value, permissions and (the first page of) children are of one
      // version; the reply to the READ is awaited first, so a missing node is its error.
      const [bytes, permList, page] = await Promise.all([
        value,
        q.perms ? perms(gw, s, path) : undefined,
        q.children ? listChildren(gw, s, path, 0, CHILDREN_MAX) : undefined,
      ]);
      const out = nodeReply(path, bytes, q.encoding);
      if (page !== undefined) {
        out.children = page.names;
        if (page.next !== undefined) out.childrenNext = page.next;
      }
      if (permList !== undefined) out.perms = permList;
      return out;
    });

    app.put(prefix, withBody, (req) =>
      apply(req, Op.WRITE, (path) => {
        const body = writeBodySchema.parse(req.body);
        return requestPayload.write(path, decodeValue(body.value, body.encoding));
      }),
    );
    app.delete(prefix, change, (req) => apply(req, Op.RM, requestPayload.rm));
  }

  app.post('/v1/mkdir/*', change, (req) => apply(req, Op.MKDIR, requestPayload.mkdir));

  app.get('/v1/perms/*', read, async (req) => {
    const path = xenPath(req);
    return { path, perms: await perms(gw, gw.session(req.identity), path) };
  });

  app.put('/v1/perms/*', withBody, (req) =>
    apply(req, Op.SET_PERMS, (path) => requestPayload.setPerms(path, permsBodySchema.parse(req.body).perms)),
  );

  app.get('/v1/children/*', read, async (req) => {
    const q = childrenQuerySchema.parse(req.query);
    const path = xenPath(req);
    const page = await listChildren(gw, gw.session(req.identity), path, q.offset, CHILDREN_MAX);
    return { path, generation: page.generation, children: page.names, ...(page.next === undefined ? {} : { next: page.next }) };
  });

  app.get('/v1/tree/*', read, async (req) => {
    const q = treeQuerySchema.parse(req.query);
    const path = xenPath(req);
    return gw.withSession(req.identity, (s) => subtree(gw, s, path, q));
  });
}

/**
 * `GET /v1/node/<path>?at=G|TIME`: the same answer, as the node was then (issue 14), from the
 * daemon's history: CONTROL `history at` (routes/history.ts), privileged only (403 otherwise).
 */
async function nodeAt(
  gw: Gateway,
  req: FastifyRequest,
  path: string,
  at: string,
  q: { children: boolean; perms: boolean; encoding?: Encoding | undefined },
): Promise<NodeReply> {
  const value = Buffer.from(await history(gw, req.identity, ['at', at, 'read', path]), 'latin1');
  const out = nodeReply(path, value, q.encoding);
  if (q.children) {
    const ls = JSON.parse(await history(gw, req.identity, ['at', at, 'ls', path])) as { children: string[] };
    out.children = ls.children;
  }
  if (q.perms) out.perms = (JSON.parse(await history(gw, req.identity, ['at', at, 'perms', path])) as { perms: string[] }).perms;
  return out;
}

/**
 * The Xen path of a request: the URL after the route prefix, so `/v1/node/local/domain/0` is
 * `/local/domain/0` and `/v1/node/` is `/`. `@introduceDomain` stays as it is (special names are
 * not tree paths, spec §3.1). A trailing slash is dropped; everything else is the store's to judge.
 */
export function xenPath(req: FastifyRequest): string {
  const rest = (req.params as { '*'?: string })['*'] ?? '';
  if (rest.startsWith('@')) return rest;
  const trimmed = rest.endsWith('/') ? rest.slice(0, -1) : rest;
  return `/${trimmed}`;
}

async function perms(gw: Gateway, s: Session, path: string, txId = 0): Promise<string[]> {
  const list = parseDirectory(await gw.run(s, Op.GET_PERMS, requestPayload.getPerms(path), txId, path));
  if (list === undefined) throw new XsError('EIO', 'malformed GET_PERMS reply');
  return list;
}

/** How often a listing restarts because the directory changed between its pages. */
const LISTING_RESTARTS = 8;

/**
 * `listChildren(gw, s, path, offset, max, txId)` pages through DIRECTORY_PART from byte `offset`
 * until the listing ends or `max` names are collected; `next` is where to continue. A plain
 * DIRECTORY would be E2BIG past 4096 bytes of names (spec §7.5), so this is the only way to list
 * a huge directory, on the wire as here. Pages of different generations are not mixed: the
 * listing restarts (spec §7.6), and after a few restarts gives up with EAGAIN.
 */
export async function listChildren(
  gw: Gateway,
  s: Session,
  path: string,
  offset: number,
  max: number,
  txId = 0,
): Promise<{ generation: string; names: string[]; next: number | undefined }> {
  for (let attempt = 0; attempt <= LISTING_RESTARTS; attempt++) {
    const names: string[] = [];
    let off = offset;
    let generation: string | undefined;
    for (;;) {
      const reply = parseDirectoryPart(await gw.run(s, Op.DIRECTORY_PART, requestPayload.directoryPart(path, off), txId, path));
      if (reply === undefined) throw new XsError('EIO', 'malformed DIRECTORY_PART reply');
      if (generation !== undefined && reply.generation !== generation) break; // changed: restart
      generation = reply.generation;
      for (const n of reply.names) {
        names.push(n);
        off += n.length + 1;
      }
      if (reply.done) return { generation, names, next: undefined };
      if (names.length >= max || reply.names.length === 0) return { generation, names, next: off };
    }
  }
  throw new XsError('EAGAIN', `${path} kept changing while it was listed`);
}
interface TreeNode {
  name: string;
  path: string;
  value?: string;
  encoding?: Encoding;
  perms?: string[];
  children?: TreeNode[];
  /** Set when the node had children not shown (depth or node limit reached). */
  truncated?: true;
  /** Why the node could not be read (e.g. EACCES for a guest), instead of failing the whole walk. */
  error?: string;
}

/**
 * `subtree(...)` is the tree under `path` as JSON, breadth first, at most `limit` nodes and
 * `depth` levels; the answer says whether it was cut (`truncated`). It is read inside a
 * transaction that is then dropped, so the whole answer is one version of the store (spec §9)
 * however long the walk takes. The root must be readable (its error is the request's); below it,
 * a node the caller may not read carries its error instead.
 */
async function subtree(
  gw: Gateway,
  s: Session,
  path: string,
  q: { depth: number; limit: number; perms: boolean; encoding?: Encoding | undefined },
): Promise<{ path: string; nodes: number; truncated: boolean; tree: TreeNode }> {
  const tx = parseDecimal(await gw.run(s, Op.TRANSACTION_START, requestPayload.transactionStart()));
  if (tx === undefined) throw new XsError('EIO', 'malformed TRANSACTION_START reply');
  try {
    const name = path === '/' ? '/' : path.slice(path.lastIndexOf('/') + 1);
    const root: TreeNode = { name, path };
    await fill(gw, s, tx, root, q, true);
    let nodes = 1;
    let truncated = false;
    const queue: { node: TreeNode; depth: number }[] = [{ node: root, depth: 0 }];
    for (let i = 0; i < queue.length; i++) {
      const { node, depth } = queue[i]!;
      if (node.error !== undefined) continue;
      let listing;
      try {
        listing = await listChildren(gw, s, node.path, 0, q.limit, tx);
      } catch (e) {
        if (node === root) throw e;
        node.error = e instanceof XsError ? e.code : 'EIO';
        continue;
      }
      if (listing.names.length === 0) continue;
      if (depth >= q.depth || nodes >= q.limit) {
        node.truncated = true;
        truncated = true;
        continue;
      }
      const children: TreeNode[] = [];
      for (const child of listing.names) {
        if (nodes >= q.limit) {
          node.truncated = true;
          truncated = true;
          break;
        }
        children.push({ name: child, path: node.path === '/' ? `/${child}` : `${node.path}/${child}` });
        nodes++;
      }
      // The children's reads go out together; each node's outcome is its own.
      await Promise.all(children.map((c) => fill(gw, s, tx, c, q, false)));
      for (const c of children) queue.push({ node: c, depth: depth + 1 });
      node.children = children;
      if (listing.next !== undefined) {
        node.truncated = true;
        truncated = true;
      }
    }
    return { path, nodes, truncated, tree: root };
  } finally {
    // Nothing to commit: ending it F just releases it (never EAGAIN).
    await s.request(Op.TRANSACTION_END, requestPayload.transactionEnd(false), tx).catch(() => undefined);
  }
}

async function fill(
  gw: Gateway,
  s: Session,
  tx: number,
  node: TreeNode,
  q: { perms: boolean; encoding?: Encoding | undefined },
  isRoot: boolean,
): Promise<void> {
  try {
    const [value, permList] = await Promise.all([
      gw.run(s, Op.READ, requestPayload.read(node.path), tx, node.path),
      q.perms ? perms(gw, s, node.path, tx) : undefined,
    ]);
    Object.assign(node, encodeValue(value, q.encoding));
    if (permList !== undefined) node.perms = permList;
  } catch (e) {
    if (isRoot) throw e;
    node.error = e instanceof XsError ? e.code : 'EIO';
  }
}
