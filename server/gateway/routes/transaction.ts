import type { FastifyInstance } from 'fastify';
import { batchBodySchema, decodeErrorPayload, Op, opName, parseDecimal, parseDirectory, requestPayload, type BatchOp } from '../../../protocol/index.js';
import { XsError } from '../../../store/index.js';
import { HttpError } from '../errors.js';
import type { Gateway } from '../gateway.js';
import { requireToken } from '../identity.js';
import { outcomeOf } from '../metrics.js';
import { wireError, type Session } from '../session.js';
import { decodeValue, encodeValue } from '../values.js';

/** Attempts after the first when the commit answers EAGAIN (override per batch with `retries`). */
export const DEFAULT_RETRIES = 8;

const WRITES: ReadonlySet<BatchOp['op']> = new Set(['write', 'mkdir', 'rm', 'set-perms']);

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
 */
export async function transactionRoutes(app: FastifyInstance, opts: { gateway: Gateway }): Promise<void> {
  const gw = opts.gateway;
  app.post('/v1/transaction', (req) => {
    const id = gw.tokens.identify(req.headers.authorization);
    const body = batchBodySchema.parse(req.body);
    if (body.ops.some((o) => WRITES.has(o.op))) requireToken(id, 'a batch that writes');
    const s = gw.session(id);
    const retries = body.retries ?? DEFAULT_RETRIES;
    for (let attempt = 1; ; attempt++) {
      const outcome = attemptBatch(gw, s, body.ops);
      if (outcome !== 'conflict') return { ok: true, results: outcome, attempts: attempt };
      if (attempt > retries) {
        throw new XsError('EAGAIN', `transaction still conflicted after ${attempt} attempts`);
      }
    }
  });
}

/** One attempt: the results, or 'conflict' when the commit answered EAGAIN (nothing applied). */
function attemptBatch(gw: Gateway, s: Session, ops: readonly BatchOp[]): unknown[] | 'conflict' {
  const tx = parseDecimal(gw.run(s, Op.TRANSACTION_START, requestPayload.transactionStart()));
  if (tx === undefined) throw new XsError('EIO', 'malformed TRANSACTION_START reply');
  let open = true;
  try {
    const results = ops.map((op, i) => runOp(gw, s, tx, op, i));
    open = false;
    try {
      gw.run(s, Op.TRANSACTION_END, requestPayload.transactionEnd(true), tx);
    } catch (e) {
      if (e instanceof XsError && e.code === 'EAGAIN') return 'conflict';
      throw e;
    }
    return results;
  } finally {
    // A failed op or guard leaves the transaction open: abort it so nothing of it is applied.
    if (open) s.call(Op.TRANSACTION_END, requestPayload.transactionEnd(false), tx);
  }
}

function runOp(gw: Gateway, s: Session, tx: number, op: BatchOp, i: number): unknown {
  const what = `op ${i} (${op.op} ${op.path})`;
  try {
    switch (op.op) {
      case 'read':
        return encodeValue(gw.run(s, Op.READ, requestPayload.read(op.path), tx, op.path), op.encoding);
      case 'directory':
        return names(gw.run(s, Op.DIRECTORY, requestPayload.directory(op.path), tx, op.path));
      case 'get-perms':
        return names(gw.run(s, Op.GET_PERMS, requestPayload.getPerms(op.path), tx, op.path));
      case 'write':
        gw.run(s, Op.WRITE, requestPayload.write(op.path, decodeValue(op.value, op.encoding)), tx, op.path);
        return null;
      case 'mkdir':
        gw.run(s, Op.MKDIR, requestPayload.mkdir(op.path), tx, op.path);
        return null;
      case 'rm':
        gw.run(s, Op.RM, requestPayload.rm(op.path), tx, op.path);
        return null;
      case 'set-perms':
        gw.run(s, Op.SET_PERMS, requestPayload.setPerms(op.path, op.perms), tx, op.path);
        return null;
      case 'expect':
        guard(gw, s, tx, op, i);
        return null;
    }
  } catch (e) {
    if (e instanceof XsError) throw new XsError(e.code, `${what}: ${e.message}`);
    throw e;
  }
}

function guard(gw: Gateway, s: Session, tx: number, op: Extract<BatchOp, { op: 'expect' }>, i: number): void {
  const r = s.call(Op.READ, requestPayload.read(op.path), tx);
  gw.metrics.op(opName(Op.READ), r.header.type === Op.ERROR ? outcomeOf(decodeErrorPayload(r.payload)) : 'OK');
  let actual: Buffer | null;
  if (r.header.type !== Op.ERROR) {
    actual = r.payload;
  } else if (r.payload.toString('latin1') === 'ENOENT\0') {
    actual = null;
  } else {
    // Unreadable (EACCES) or invalid: the guard cannot be evaluated, which is the op's error.
    throw wireError(r.payload, `READ ${op.path}`);
  }
  const want = op.value === null ? null : decodeValue(op.value, op.encoding);
  const holds = want === null ? actual === null : actual !== null && actual.equals(want);
  if (!holds) {
    const is = actual === null ? 'missing' : JSON.stringify(encodeValue(actual).value);
    throw new HttpError(412, 'EAGAIN', `guard ${i} failed: ${op.path} is ${is}, expected ${op.value === null ? 'missing' : JSON.stringify(op.value)}`);
  }
}

function names(payload: Buffer): string[] {
  const list = parseDirectory(payload);
  if (list === undefined) throw new XsError('EIO', 'malformed reply');
  return list;
}
