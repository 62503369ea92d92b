import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  childrenQuerySchema,
  nodeQuerySchema,
  Op,
  parseDirectory,
  parseDirectoryPart,
  permsBodySchema,
  requestPayload,
  treeQuerySchema,
  writeBodySchema,
} from '../../../protocol/index.js';
import { XsError } from '../../../store/index.js';
import type { Gateway } from '../gateway.js';
import { requireToken, type Identity } from '../identity.js';
import type { Session } from '../session.js';
import { decodeValue, encodeValue, type Encoding } from '../values.js';

/** Most names `?children=1` returns in one answer; `/v1/children` pages through any directory. */
export const CHILDREN_MAX = 10_000;

/**
 * The tree routes. Each request is one or more wire requests on the identity's session, made in
 * one tick, so a read with its children and permissions (or a whole subtree) sees one version.
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
  const who = (req: FastifyRequest): Identity => gw.tokens.identify(req.headers.authorization);

  for (const prefix of ['/v1/node', '/v1/node/*']) {
    app.get(prefix, (req) => {
      const q = nodeQuerySchema.parse(req.query);
      const path = xenPath(req);
      const s = gw.session(who(req));
      const value = encodeValue(gw.run(s, Op.READ, requestPayload.read(path), 0, path), q.encoding);
      const out: Record<string, unknown> = { path, ...value };
      if (q.children) {
        const page = listChildren(gw, s, path, 0, CHILDREN_MAX);
        out.children = page.names;
        if (page.next !== undefined) out.childrenNext = page.next;
      }
      if (q.perms) out.perms = perms(gw, s, path);
      return out;
    });

    app.put(prefix, (req) => {
      const id = who(req);
      requireToken(id, 'writing');
      const body = writeBodySchema.parse(req.body);
      const path = xenPath(req);
      gw.run(gw.session(id), Op.WRITE, requestPayload.write(path, decodeValue(body.value, body.encoding)), 0, path);
      return { ok: true };
    });

    app.delete(prefix, (req) => {
      const id = who(req);
      requireToken(id, 'removing');
      const path = xenPath(req);
      gw.run(gw.session(id), Op.RM, requestPayload.rm(path), 0, path);
      return { ok: true };
    });
  }

  app.post('/v1/mkdir/*', (req) => {
    const id = who(req);
    requireToken(id, 'mkdir');
    const path = xenPath(req);
    gw.run(gw.session(id), Op.MKDIR, requestPayload.mkdir(path), 0, path);
    return { ok: true };
  });

  app.get('/v1/perms/*', (req) => {
    const path = xenPath(req);
    return { path, perms: perms(gw, gw.session(who(req)), path) };
  });

  app.put('/v1/perms/*', (req) => {
    const id = who(req);
    requireToken(id, 'setting permissions');
    const body = permsBodySchema.parse(req.body);
    const path = xenPath(req);
    gw.run(gw.session(id), Op.SET_PERMS, requestPayload.setPerms(path, body.perms), 0, path);
    return { ok: true };
  });

  app.get('/v1/children/*', (req) => {
    const q = childrenQuerySchema.parse(req.query);
    const path = xenPath(req);
    const page = listChildren(gw, gw.session(who(req)), path, q.offset, CHILDREN_MAX);
    return { path, generation: page.generation, children: page.names, ...(page.next === undefined ? {} : { next: page.next }) };
  });

  app.get('/v1/tree/*', (req) => {
    const q = treeQuerySchema.parse(req.query);
    const path = xenPath(req);
    return subtree(gw, gw.session(who(req)), path, q);
  });
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

function perms(gw: Gateway, s: Session, path: string): string[] {
  const list = parseDirectory(gw.run(s, Op.GET_PERMS, requestPayload.getPerms(path), 0, path));
  if (list === undefined) throw new XsError('EIO', 'malformed GET_PERMS reply');
  return list;
}

/**
 * `listChildren(gw, s, path, offset, max)` pages through DIRECTORY_PART from byte `offset` until
 * the listing ends or `max` names are collected; `next` is where to continue. A plain DIRECTORY
 * would be E2BIG past 4096 bytes of names (spec §7.5), so this is the only way to list a huge
 * directory, on the wire as here.
 */
export function listChildren(
  gw: Gateway,
  s: Session,
  path: string,
  offset: number,
  max: number,
  txId = 0,
): { generation: string; names: string[]; next: number | undefined } {
  const names: string[] = [];
  let off = offset;
  let generation = '';
  for (;;) {
    const reply = parseDirectoryPart(gw.run(s, Op.DIRECTORY_PART, requestPayload.directoryPart(path, off), txId, path));
    if (reply === undefined) throw new XsError('EIO', 'malformed DIRECTORY_PART reply');
    generation = reply.generation;
    for (const n of reply.names) {
      names.push(n);
      off += n.length + 1;
    }
    if (reply.done) return { generation, names, next: undefined };
    if (names.length >= max || reply.names.length === 0) return { generation, names, next: off };
  }
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
 * `depth` levels; the answer says whether it was cut (`truncated`). The root must be readable
 * (its error is the request's); below it, a node the caller may not read carries its error.
 */
function subtree(
  gw: Gateway,
  s: Session,
  path: string,
  q: { depth: number; limit: number; perms: boolean; encoding?: Encoding | undefined },
): { path: string; nodes: number; truncated: boolean; tree: TreeNode } {
  const name = path === '/' ? '/' : path.slice(path.lastIndexOf('/') + 1);
  const root: TreeNode = { name, path };
  fill(gw, s, root, q, true);
  let nodes = 1;
  let truncated = false;
  const queue: { node: TreeNode; depth: number }[] = [{ node: root, depth: 0 }];
  for (let i = 0; i < queue.length; i++) {
    const { node, depth } = queue[i]!;
    if (node.error !== undefined) continue;
    let listing;
    try {
      listing = listChildren(gw, s, node.path, 0, q.limit);
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
    node.children = [];
    for (const child of listing.names) {
      if (nodes >= q.limit) {
        node.truncated = true;
        truncated = true;
        break;
      }
      const c: TreeNode = { name: child, path: node.path === '/' ? `/${child}` : `${node.path}/${child}` };
      fill(gw, s, c, q, false);
      node.children.push(c);
      nodes++;
      queue.push({ node: c, depth: depth + 1 });
    }
    if (listing.next !== undefined) {
      node.truncated = true;
      truncated = true;
    }
  }
  return { path, nodes, truncated, tree: root };
}

function fill(gw: Gateway, s: Session, node: TreeNode, q: { perms: boolean; encoding?: Encoding | undefined }, isRoot: boolean): void {
  try {
    Object.assign(node, encodeValue(gw.run(s, Op.READ, requestPayload.read(node.path), 0, node.path), q.encoding));
    if (q.perms) node.perms = perms(gw, s, node.path);
  } catch (e) {
    if (isRoot) throw e;
    node.error = e instanceof XsError ? e.code : 'EIO';
  }
}
