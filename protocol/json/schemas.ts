/**
 * JSON form of requests, replies and events for the WebSocket gateway. The wire protocol
 * stays the reference: each request op is one Xen message type, with the same arguments.
 *
 * Objects are strict (unknown keys are rejected) so a misspelt field such as `comit` fails
 * loudly instead of being ignored. Path syntax, value size and the domids inside perms are NOT
 * checked here: the store does that and answers EINVAL/ENOSPC as it would on the wire.
 */
import { z } from 'zod';
import { PAYLOAD_MAX, XSD_ERRORS } from '../index.js';

/** Longest accepted `value` text: base64 of a full payload (5464 chars) with room to spare. */
export const VALUE_TEXT_MAX = 2 * PAYLOAD_MAX;

const id = z.union([z.int(), z.string().max(256)]);
const path = z.string().min(1).max(PAYLOAD_MAX);
const token = z.string().max(PAYLOAD_MAX);
/** Transaction id as on the wire (u32, 0 = none). */
const tx = z.uint32();
/** How `value` text maps to bytes: UTF-8 text (default) or base64 for binary values. */
const encoding = z.enum(['utf8', 'base64']);
/** One permission entry as on the wire and in xenstore-chmod: letter + domid (spec §6.1). */
const perm = z.string().regex(/^[rwbn][0-9]{1,5}$/);
const domid = z.int().min(0).max(65535);
/** The most `n0\0`-sized entries a 4096-byte SET_PERMS payload could carry. */
const PERMS_MAX = Math.floor(PAYLOAD_MAX / 3);

// Only the ops that honour a transaction accept `tx` (spec §9.1); WATCH/UNWATCH ignore it
// on the wire, so here it is an error rather than a silent no-op.
const onPath = <Op extends string>(op: Op) =>
  z.strictObject({ id, op: z.literal(op), tx: tx.optional(), path });

export const requestSchema = z.discriminatedUnion('op', [
  z.strictObject({ id, op: z.literal('read'), tx: tx.optional(), path, encoding: encoding.optional() }),
  z
    .strictObject({
      id,
      op: z.literal('write'),
      tx: tx.optional(),
      path,
      value: z.string().max(VALUE_TEXT_MAX),
      encoding: encoding.optional(),
    })
    .refine((r) => r.encoding !== 'base64' || z.base64().safeParse(r.value).success, {
      message: 'value is not valid base64',
      path: ['value'],
    }),
  onPath('mkdir'),
  onPath('rm'),
  onPath('directory'),
  onPath('get-perms'),
  z.strictObject({
    id,
    op: z.literal('set-perms'),
    tx: tx.optional(),
    path,
    perms: z.array(perm).min(1).max(PERMS_MAX),
  }),
  z.strictObject({ id, op: z.literal('watch'), path, token }),
  z.strictObject({ id, op: z.literal('unwatch'), path, token }),
  z.strictObject({ id, op: z.literal('reset-watches') }),
  z.strictObject({ id, op: z.literal('transaction-start') }),
  // `commit` is required: ending a transaction by accident is not undoable.
  z.strictObject({ id, op: z.literal('transaction-end'), tx: tx.min(1), commit: z.boolean() }),
  z.strictObject({ id, op: z.literal('get-domain-path'), domid }),
]);

/** A value as JSON: text, and how the text maps to the value's bytes. */
const valueResult = z.strictObject({ value: z.string(), encoding });

/**
 * One reply per request (the gateway API contract): `{ id, ok: true, result? }`, where `result` is
 * `{ value, encoding }` for read, the names for directory / get-perms, `{ tx }` for
 * transaction-start and the path for get-domain-path; or `{ id, ok: false, error, message }`.
 * `id` is null only when the request was not JSON or carried no usable id.
 */
export const replySchema = z.discriminatedUnion('ok', [
  z.strictObject({
    id,
    ok: z.literal(true),
    result: z.union([valueResult, z.array(z.string()), z.strictObject({ tx: z.int() }), z.string()]).optional(),
  }),
  z.strictObject({ id: id.nullable(), ok: z.literal(false), error: z.enum(XSD_ERRORS), message: z.string() }),
]);

export const eventSchema = z.discriminatedUnion('event', [
  z.strictObject({ event: z.literal('watch'), path, token }),
]);

/** Anything the gateway sends to a client. */
export const serverMessageSchema = z.union([replySchema, eventSchema]);

// Prefixed so they do not shadow Node's global Request and Event.
export type GatewayRequest = z.infer<typeof requestSchema>;
export type GatewayOp = GatewayRequest['op'];
export type GatewayReply = z.infer<typeof replySchema>;
export type GatewayEvent = z.infer<typeof eventSchema>;
export type GatewayMessage = z.infer<typeof serverMessageSchema>;

// ---- HTTP bodies and query strings (the same field rules as the WebSocket requests) ----

/** `PUT /v1/node/<path>`: the value, as UTF-8 text (default) or base64. */
export const writeBodySchema = z
  .strictObject({ value: z.string().max(VALUE_TEXT_MAX), encoding: encoding.optional() })
  .refine((r) => r.encoding !== 'base64' || z.base64().safeParse(r.value).success, {
    message: 'value is not valid base64',
    path: ['value'],
  });

/** `PUT /v1/perms/<path>`: the new permission list, owner first (spec §6.1). */
export const permsBodySchema = z.strictObject({ perms: z.array(perm).min(1).max(PERMS_MAX) });

/** `POST /v1/tokens`: a guest identity to issue a token for. 0 is dom0: use the privileged token. */
export const tokenBodySchema = z.strictObject({ domid: domid.min(1) });

/** A query flag: present as `1`/`true` (or empty, `?children`), absent or `0`/`false` otherwise. */
const flag = z
  .enum(['', '1', 'true', '0', 'false'])
  .optional()
  .transform((v) => v === '' || v === '1' || v === 'true');

/** A moment of history: a generation or an RFC 3339 time (the daemon judges which, issue 14). */
const moment = z.string().min(1).max(64);

export const nodeQuerySchema = z.strictObject({
  children: flag,
  perms: flag,
  encoding: encoding.optional(),
  /** The node as it was then (the daemon's history; privileged callers only). */
  at: moment.optional(),
});

/** `GET /v1/history`: the log of a subtree, newest first; `before` continues from a page's `next`. */
export const historyQuerySchema = z.strictObject({
  path: path.optional(),
  domid: z.coerce.number().int().min(0).max(65535).optional(),
  since: moment.optional(),
  until: moment.optional(),
  kind: z.enum(['added', 'removed', 'changed', 'perms']).optional(),
  connection: z.enum(['socket', 'socket_ro', 'domain', 'http', 'ws', 'ws-binary', 'internal']).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
  before: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
});

/** `GET /v1/diff`: what changed under `path` between two moments. */
export const diffQuerySchema = z.strictObject({ from: moment, to: moment, path: path.optional() });

/** `GET /v1/tree/<path>`: how deep and how many nodes at most. */
export const treeQuerySchema = z.strictObject({
  depth: z.coerce.number().int().min(0).max(64).default(8),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
  perms: flag,
  encoding: encoding.optional(),
});

/** `GET /v1/children/<path>`: DIRECTORY_PART paging, `offset` in bytes into the listing (spec §7.6). */
export const childrenQuerySchema = z.strictObject({
  offset: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
});

/** One operation of an atomic batch; `expect` is a guard (value null: the node must not exist). */
export const batchOpSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('read'), path, encoding: encoding.optional() }),
  z
    .strictObject({ op: z.literal('write'), path, value: z.string().max(VALUE_TEXT_MAX), encoding: encoding.optional() })
    .refine((r) => r.encoding !== 'base64' || z.base64().safeParse(r.value).success, {
      message: 'value is not valid base64',
      path: ['value'],
    }),
  z.strictObject({ op: z.literal('mkdir'), path }),
  z.strictObject({ op: z.literal('rm'), path }),
  z.strictObject({ op: z.literal('directory'), path }),
  z.strictObject({ op: z.literal('get-perms'), path }),
  z.strictObject({ op: z.literal('set-perms'), path, perms: z.array(perm).min(1).max(PERMS_MAX) }),
  z
    .strictObject({ op: z.literal('expect'), path, value: z.string().max(VALUE_TEXT_MAX).nullable(), encoding: encoding.optional() })
    .refine((r) => r.encoding !== 'base64' || r.value === null || z.base64().safeParse(r.value).success, {
      message: 'value is not valid base64',
      path: ['value'],
    }),
]);

/** Most ops one `POST /v1/transaction` may carry (its body limit is sized from it). */
export const BATCH_OPS_MAX = 1024;

/** `POST /v1/transaction`: the ops run in order inside one transaction, retried on EAGAIN. */
export const batchBodySchema = z.strictObject({
  ops: z.array(batchOpSchema).min(1).max(BATCH_OPS_MAX),
  retries: z.int().min(0).max(100).optional(),
});

export type BatchOp = z.infer<typeof batchOpSchema>;
