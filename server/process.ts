import { opName, PAYLOAD_MAX, type Frame } from '../protocol/index.js';
import { XsError, type XsErrorCode } from '../store/index.js';
import type { Connection } from './connection.js';
import type { Daemon } from './daemon.js';
import { errorFrame, eventFrame, replyFrame } from './dispatch/frames.js';
import type { ConnDelivery } from './dispatch/outcome.js';
import type { HandlerSpec, Reply, RequestContext } from './handler.js';
import { HANDLERS } from './handlers/index.js';

/**
 * `process(daemon, conn, frame)` answers one request: exactly one reply frame, of the request's
 * type or ERROR, echoing req_id and tx_id (spec §1.2). Never throws: an XsError becomes its Xen
 * error name, anything else is logged and answered EIO (oxenstored's "nothrow guarantee"). This is
 * the one place where errors become codes (dispatch/frames.ts makes the bytes).
 */
export function process(daemon: Daemon, conn: Connection, frame: Frame): void {
  const { header } = frame;
  daemon.stats.requests++;
  daemon.touch();
  const spec = HANDLERS[header.type];
  let reply: Reply | Promise<Reply>;
  try {
    if (spec === undefined) throw new XsError('ENOSYS', `unknown message type ${header.type}`);
    reply = spec.handle(context(daemon, conn, frame, spec), frame.payload);
  } catch (e) {
    return failed(daemon, conn, frame, e);
  }
  if (reply instanceof Promise) {
    // Only domain introduction awaits (a socket to open). Later requests of this connection are
    // still answered in order: the connection waits for this reply before it reads on.
    conn.hold(reply.then((r) => send(daemon, conn, frame, r), (e: unknown) => failed(daemon, conn, frame, e)));
  } else {
    send(daemon, conn, frame, reply);
  }
}

function context(daemon: Daemon, conn: Connection, frame: Frame, spec: HandlerSpec): RequestContext {
  const { header } = frame;
  const caller = conn.caller;
  if (spec.privileged && !caller.privileged) throw new XsError('EACCES', `${opName(header.type)} is privileged`);
  if (spec.writes && caller.readOnly) throw new XsError('EACCES', 'read-only connection');
  let tx;
  if (spec.tx !== 'ignore' && header.txId !== 0) {
    tx = conn.transactions.get(header.txId);
    // Spec §9.1: an unknown transaction id is ENOENT (cxenstored; oxenstored's EIO is an accident).
    if (tx === undefined) throw new XsError('ENOENT', `no transaction ${header.txId}`);
    if (spec.tx === 'check') tx = undefined;
  }
  return { daemon, conn, header, tx, limits: daemon.quotas.limitsFor(caller.domid) };
}

function send(daemon: Daemon, conn: Connection, frame: Frame, reply: Reply): void {
  const { header } = frame;
  const events = reply.deliveries;
  if (events !== undefined) for (let i = 0; i < events.length; i++) deliver(daemon, events[i]!);
  // A byte string's length is its size in bytes (latin1), so a READ's value goes into the frame
  // with one copy. Spec §1.4 (XSA-72): a reply that does not fit a message is E2BIG, always.
  const payload = reply.payload;
  if (payload.length > PAYLOAD_MAX) return failed(daemon, conn, frame, new XsError('E2BIG', 'reply too large'));
  if (daemon.options.accessLog) access(daemon, conn, frame, 'OK');
  conn.send(replyFrame(header, payload));
  if (reply.initial !== undefined) deliver(daemon, reply.initial);
}

/**
 * Queues one watch event; events that would not fit a message are dropped (XSA-324), and so are
 * events for a guest that is not reading while its output takes it past its `memory` quota
 * (cxenstored stops sending to a domain over its hard memory quota, spec §10.2). A guest that
 * reads is never dropped from: its output does not stay.
 */
export function deliver(daemon: Daemon, d: ConnDelivery): void {
  const owner = d.conn;
  const frame = eventFrame(d.path, d.watch.token);
  if (frame === undefined) return dropped(daemon, owner, d.path, 'watch event too large for a message; dropped', true);
  if (owner.budget !== undefined && owner.isBacklogged && owner.budget.overMemory(daemon.quotas.limitsFor(owner.caller.domid), frame.length)) {
    return dropped(daemon, owner, d.path, 'watcher is not reading and at its memory quota; event dropped', true);
  }
  if (!owner.sendEvent(frame)) dropped(daemon, owner, d.path, 'watcher is not reading; event dropped', false);
}

/**
 * Counts an event dropped for `conn` and logs the first and every thousandth: whoever makes
 * events be dropped (a watcher that does not read, a huge token) must not flood the log.
 */
function dropped(daemon: Daemon, conn: Connection, path: string, why: string, count: boolean): void {
  const n = count ? ++conn.droppedEvents : conn.droppedEvents;
  if (n === 1 || n % 1000 === 0) daemon.log.warn({ conn: conn.id, path, dropped: n }, why);
}

function failed(daemon: Daemon, conn: Connection, frame: Frame, e: unknown): void {
  let code: XsErrorCode;
  if (e instanceof XsError) {
    code = e.code;
  } else {
    code = 'EIO';
    daemon.log.error({ conn: conn.id, op: opName(frame.header.type), err: e }, 'request failed unexpectedly');
  }
  if (daemon.options.accessLog) access(daemon, conn, frame, code);
  conn.send(errorFrame(frame.header, code));
}

function access(daemon: Daemon, conn: Connection, frame: Frame, outcome: string): void {
  const { header } = frame;
  daemon.log.info(
    {
      conn: conn.id,
      domid: conn.caller.domid,
      tx: header.txId,
      op: opName(header.type),
      args: frame.payload.toString('latin1').replaceAll('\0', ' ').trimEnd(),
      outcome,
    },
    'access',
  );
}
