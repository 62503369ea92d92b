import { flagArg, replyPayload } from '../../../protocol/index.js';
import { Transaction, XsError, type CommitResult } from '../../../store/index.js';
import type { Outcome } from '../outcome.js';
import type { TransactionPort } from '../ports.js';
import { ok, OK_REPLY, required, type Handler, type Reply, type RequestContext } from '../handler.js';

/**
 * TRANSACTION_START (spec §9.1): must carry tx_id 0 (an open id is EBUSY: no nesting; an unknown
 * one was already answered ENOENT by the dispatcher). The payload is ignored. Starting costs one
 * pointer: the transaction holds the live version it started from. An unprivileged domain may
 * hold `transactions` open over all its connections (ENOSPC beyond).
 */
export const transactionStart: Handler<TransactionPort> = (ctx) => {
  const { conn, port, header, limits } = ctx;
  if (header.txId !== 0) throw new XsError('EBUSY', 'transactions do not nest');
  conn.budget?.admitTransaction(limits);
  // A connection whose transactions keep failing waits here for its turn (transactions/fairness.ts).
  const turn = port.fairness.admit(conn);
  return turn === undefined ? open(ctx) : turn.then(() => open(ctx));
};

function open(ctx: RequestContext<TransactionPort>): Reply {
  const { conn, port, limits } = ctx;
  // Checked again after a wait for the turn: the domain's other connections may have opened some.
  conn.budget?.admitTransaction(limits);
  const id = conn.allocTxId();
  const tx = new Transaction(port.store, conn.caller, limits);
  conn.transactions.set(id, tx);
  port.fairness.started(conn, id, tx);
  return { payload: replyPayload.decimal(id) };
}

/**
 * TRANSACTION_END `T|` commits, `F|` aborts (exactly these, cxenstored's rule). The transaction is
 * gone afterwards whatever the outcome; EAGAIN means nothing was applied and no watch fired.
 */
export const transactionEnd: Handler<TransactionPort> = (ctx, payload) => {
  const { conn, port, header } = ctx;
  const tx = ctx.tx;
  if (tx === undefined) throw new XsError('ENOENT', 'TRANSACTION_END outside a transaction');
  const doCommit = required(flagArg(payload), 'TRANSACTION_END takes T or F');
  conn.transactions.delete(header.txId);
  if (!doCommit) {
    port.fairness.ended(conn, header.txId, tx, 'aborted');
    return OK_REPLY;
  }
  const settle = (result: Outcome<CommitResult>): Reply => {
    port.fairness.ended(conn, header.txId, tx, result.kind);
    if (result.kind === 'conflict') throw new XsError('EAGAIN', 'transaction conflicts with a commit');
    if (result.kind === 'failed') throw new XsError(result.code, 'transaction failed');
    return ok(result.deliveries);
  };
  const result = port.commitFor(conn, tx, header.txId);
  // A commit held back by the turn (transactions/fairness.ts) answers when it is decided.
  return result instanceof Promise ? result.then(settle) : settle(result);
};
