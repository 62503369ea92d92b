import type { FastifyInstance } from 'fastify';
import { Op, opName, parseDecimal, parseDirectory, requestPayload } from '../../../protocol/index.js';
import { batchBodySchema, type BatchOp } from '../../../protocol/json/index.js';
import { XsError } from '../../../store/index.js';
import { BATCH_BODY_MAX } from '../body-limits.js';
import { HttpError } from '../errors.js';
import type { Gateway } from '../gateway.js';
import { payloadOf, type RequestAnswer, type Session } from '../session.js';
import { decodeValue, encodeValue } from '../values.js';

/** Attempts after the first when the commit answers EAGAIN (override per batch with `retries`). */
export const DEFAULT_RETRIES = 8;

/**
 * `POST /v1/transaction` `{ ops: [...], retries? }`: the ops run in order inside one xenstore
 * transaction (TRANSACTION_START, the requests with its tx_id, TRANSACTION_END T), so a batch
 * commits whole or not at all, with the wire's commit rules and watch events (one per node, in
 * commit order). An `expect` op is a guard: `{ op: "expect", path, value }` fails the batch
 * unless the node holds exactly that value (`value: null`: unless it does not exist), checked
 * inside the transaction, so the commit happens only if every guard held at its snapshot.
 *
 * A commit that conflicts (EAGAIN) is retried from the start, up to `retries` more times, then
 * answered 409. A failed guard is 412 (nothing was written); a failed op is that op's error.
 * Success: `{ ok: true, results, attempts }`, one result per op (read: `{ value, encoding }`,
 * directory / get-perms: names, others null).
 *
 * A batch needs a token, even one that only reads: what it does is in its body, and the
 * credentials are judged before the body is read (access.ts); the body may be as big as
 * BATCH_OPS_MAX full-size ops (body-limits.ts).
 */
export async function transactionRoutes(app: FastifyInstance, opts: { gateway: Gateway }): Promise<void> {
  const gw = opts.gateway;
  app.post('/v1/transaction', { config: { access: 'token' }, bodyLimit: BATCH_BODY_MAX }, async (req) => {
    const body = batchBodySchema.parse(req.body);
    const retries = body.retries ?? DEFAULT_RETRIES;
    return gw.withSession(req.identity, async (s) => {
      for (let attempt = 1; ; attempt++) {
        const outcome = await attemptBatch(gw, s, body.ops);
        if (outcome !== 'conflict') return { ok: true, results: outcome, attempts: attempt };
        if (attempt > retries) throw new XsError('EAGAIN', `transaction still conflicted after ${attempt} attempts`);
      }
    });
  });
}

/**
 * One attempt: the results, or 'conflict' when the commit answered EAGAIN (nothing applied).
 * The ops are sent back to back inside the transaction and their replies judged in order
 * afterwards: the first failure (or failed guard) aborts the transaction, so ops after it that
 * already ran inside it are discarded with it.
 */
async function attemptBatch(gw: Gateway, s: Session, ops: readonly BatchOp[]): Promise<unknown[] | 'conflict'> {
  const tx = parseDecimal(await gw.run(s, Op.TRANSACTION_START, requestPayload.transactionStart()));
  if (tx === undefined) throw new XsError('EIO', 'malformed TRANSACTION_START reply');
  let open = true;
  try {
    const sent = ops.map((op) => {
      const { type, payload } = wireOf(op);
      return s.request(type, payload, tx);
    });
    const replies = await Promise.all(sent);
    const results = ops.map((op, i) => judge(gw, op, i, replies[i]!));
    open = false;
    try {
      await gw.run(s, Op.TRANSACTION_END, requestPayload.transactionEnd(true), tx);
    } catch (e) {
      if (e instanceof XsError && e.code === 'EAGAIN') return 'conflict';
      throw e;
    }
    return results;
  } finally {
    // A failed op or guard leaves the transaction open: abort it so nothing of it is applied.
    if (open) await s.request(Op.TRANSACTION_END, requestPayload.transactionEnd(false), tx).catch(() => undefined);
  }
}

/** The wire request of one op (a guard is a READ). */
function wireOf(op: BatchOp): { type: number; payload: Buffer } {
  switch (op.op) {
    case 'read':
    case 'expect':
      return { type: Op.READ, payload: requestPayload.read(op.path) };
    case 'directory':
      return { type: Op.DIRECTORY, payload: requestPayload.directory(op.path) };
    case 'get-perms':
      return { type: Op.GET_PERMS, payload: requestPayload.getPerms(op.path) };
    case 'write':
      return { type: Op.WRITE, payload: requestPayload.write(op.path, decodeValue(op.value, op.encoding)) };
    case 'mkdir':
      return { type: Op.MKDIR, payload: requestPayload.mkdir(op.path) };
    case 'rm':
      return { type: Op.RM, payload: requestPayload.rm(op.path) };
    case 'set-perms':
      return { type: Op.SET_PERMS, payload: requestPayload.setPerms(op.path, op.perms) };
  }
}

/** One op's result from its reply; throws the op's error, or 412 for a guard that does not hold. */
function judge(gw: Gateway, op: BatchOp, i: number, reply: RequestAnswer): unknown {
  const { type } = wireOf(op);
  if (op.op === 'expect') return guard(gw, op, i, reply);
  let payload: Buffer;
  try {
    payload = gw.check(reply, type, op.path);
  } catch (e) {
    if (e instanceof XsError) throw new XsError(e.code, `op ${i} (${op.op} ${op.path}): ${e.message}`);
    throw e;
  }
  switch (op.op) {
    case 'read':
      return encodeValue(payload, op.encoding);
    case 'directory':
    case 'get-perms':
      return names(payload);
    default:
      return null;
  }
}

function guard(gw: Gateway, op: Extract<BatchOp, { op: 'expect' }>, i: number, reply: RequestAnswer): null {
  let actual: Buffer | null;
  if (reply.kind === 'reply') {
    actual = payloadOf(reply);
    gw.metrics.op(opName(Op.READ), 'OK');
  } else if (reply.code === 'ENOENT') {
    actual = null;
    gw.metrics.op(opName(Op.READ), 'ENOENT');
  } else {
    // Unreadable (EACCES) or invalid: the guard cannot be evaluated, which is the op's error.
    gw.check(reply, Op.READ, `op ${i} (expect ${op.path})`);
    return null;
  }
  const want = op.value === null ? null : decodeValue(op.value, op.encoding);
  const holds = want === null ? actual === null : actual !== null && actual.equals(want);
  if (!holds) {
    const is = actual === null ? 'missing' : JSON.stringify(encodeValue(actual).value);
    throw new HttpError(412, 'EAGAIN', `guard ${i} failed: ${op.path} is ${is}, expected ${op.value === null ? 'missing' : JSON.stringify(op.value)}`);
  }
  return null;
}

function names(payload: Buffer): string[] {
  const list = parseDirectory(payload);
  if (list === undefined) throw new XsError('EIO', 'malformed reply');
  return list;
}
