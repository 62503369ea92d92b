import { HEADER_SIZE, opName, PAYLOAD_MAX, type Frame } from '../../protocol/index.js';
import { XsError, type XsErrorCode } from '../../store/index.js';
import { eventBytes, type Connection } from '../connection/index.js';
import type { ConnDelivery } from './outcome.js';
import type { DispatchPort, Ports } from './ports.js';
import type { HandlerSpec, Reply, RequestContext } from './handler.js';
import { HANDLERS } from './handlers/index.js';

/**
 * `process(port, conn, frame)` answers one request: exactly one reply, of the request's type or an
 * error, echoing req_id and tx_id (spec §1.2), after the watch events it caused. Never throws: an
 * XsError becomes its Xen error name, anything else is logged and answered EIO (oxenstored's
 * "nothrow guarantee"). This is the one place where errors become codes; the connection makes
 * the bytes (connection/frames.ts), or hands the answers to a gateway session as they are.
 */
export function process(port: Ports, conn: Connection, frame: Frame): void {
  const { header } = frame;
  port.stats.requests++;
  port.touch();
  const spec = HANDLERS[header.type];
  let reply: Reply | Promise<Reply>;
  try {
    if (spec === undefined) throw new XsError('ENOSYS', `unknown message type ${header.type}`);
    reply = spec.handle(context(port, conn, frame, spec), frame.payload);
  } catch (e) {
    return failed(port, conn, frame, e);
  }
  if (reply instanceof Promise) {
    // A few answers are decided later: INTRODUCE opens a socket, a commit may wait for its
    // fairness turn, CONTROL live-update waits for the next process. Later requests of this
    // connection are still answered in order: the connection waits for this reply before it reads on.
    conn.awaitReply(reply.then((r) => send(port, conn, frame, r), (e: unknown) => failed(port, conn, frame, e)));
  } else {
    const later = send(port, conn, frame, reply);
    if (later !== undefined) conn.awaitReply(later);
  }
}

function context(port: Ports, conn: Connection, frame: Frame, spec: HandlerSpec): RequestContext {
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
  return { port, conn, header, tx, limits: port.quotas.limitsFor(caller.domid) };
}

/**
 * Sends the request's watch events, then its reply. Events beyond one turn's share go in later
 * turns (delivery-backlog.ts): the reply waits for them (the promise returned), and so do the
 * connection's next requests.
 */
function send(port: Ports, conn: Connection, frame: Frame, reply: Reply): Promise<void> | undefined {
  const events = reply.deliveries;
  if (events !== undefined) {
    const later = port.backlog.send(events);
    if (later !== undefined) return later.then(() => answer(port, conn, frame, reply));
  }
  answer(port, conn, frame, reply);
  return undefined;
}

function answer(port: Ports, conn: Connection, frame: Frame, reply: Reply): void {
  // Events still waiting for this connection (others' requests caused them) come first.
  port.backlog.before(conn);
  // Expected refusals are answered as values, with no Error made (issue 18: a guest can ask for
  // a 700 KB listing thousands of times a second, and a stack trace each was a tenth of the work).
  if (reply.refused !== undefined) return refused(port, conn, frame, reply.refused);
  // A byte string's length is its size in bytes (latin1), so a READ's value goes into the frame
  // with one copy. Spec §1.4 (XSA-72): a reply that does not fit a message is E2BIG, always.
  const payload = reply.payload;
  if (payload.length > PAYLOAD_MAX) return refused(port, conn, frame, 'E2BIG');
  if (port.options.accessLog) access(port, conn, frame, 'OK');
  conn.reply(frame.header, payload);
  if (reply.initial !== undefined) deliver(port, reply.initial);
}

/**
 * Sends one watch event; events that would not fit a message are dropped (XSA-324), and so are
 * events for a guest that is not reading while its output takes it past its `memory` quota
 * (cxenstored stops sending to a domain over its hard memory quota, spec §10.2). A guest that
 * reads is never dropped from: its output does not stay. Decided on the event's size, before
 * any of it is made.
 */
export function deliver(port: DispatchPort, d: ConnDelivery): void {
  const owner = d.conn;
  const token = d.watch.token;
  const bytes = eventBytes(d.path, token);
  if (bytes > HEADER_SIZE + PAYLOAD_MAX) return dropped(port, owner, d.path, 'watch event too large for a message; dropped', true);
  if (owner.budget !== undefined && owner.isBacklogged && owner.budget.overMemory(port.quotas.limitsFor(owner.caller.domid), bytes)) {
    return dropped(port, owner, d.path, 'watcher is not reading and at its memory quota; event dropped', true);
  }
  if (!owner.event(d.path, token)) dropped(port, owner, d.path, 'watcher is not reading; event dropped', false);
}

/**
 * Counts an event dropped for `conn`, in O(1): the log gets one summary line per connection per
 * interval (event-drops.ts), so whoever makes events be dropped (a watcher that does not read, a
 * huge token) cannot flood the log or slow the writers that fire the events (issue 18).
 */
function dropped(port: DispatchPort, conn: Connection, path: string, why: string, count: boolean): void {
  if (count) conn.droppedEvents++;
  port.drops.note(conn, path, why);
}

function failed(port: DispatchPort, conn: Connection, frame: Frame, e: unknown): void {
  let code: XsErrorCode;
  if (e instanceof XsError) {
    code = e.code;
  } else {
    code = 'EIO';
    port.log.error({ conn: conn.id, op: opName(frame.header.type), err: e }, 'request failed unexpectedly');
  }
  refused(port, conn, frame, code);
}

/** Answers the request with the Xen error `code`, after the events waiting for its connection. */
function refused(port: DispatchPort, conn: Connection, frame: Frame, code: XsErrorCode): void {
  if (port.options.accessLog) access(port, conn, frame, code);
  port.backlog.before(conn);
  conn.fail(frame.header, code);
}

function access(port: DispatchPort, conn: Connection, frame: Frame, outcome: string): void {
  const { header } = frame;
  port.log.info(
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
