import { EventEmitter } from 'node:events';
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { Op, opName, parseDecimal, parseDirectory, requestPayload } from '../../protocol/index.js';
import { requestSchema, type GatewayRequest } from '../../protocol/json/index.js';
import { isXsErrorCode, XsError, type Caller } from '../../store/index.js';
import type { Answer, Connection, ConnectionKind } from '../connection/index.js';
import type { Transport } from '../transport/index.js';
import { authorize } from './access.js';
import { WS_MESSAGE_MAX } from './body-limits.js';
import { describeZod, toHttpError } from './errors.js';
import type { Gateway } from './gateway.js';
import { callerOf, type Identity } from './identity.js';
import type { OriginGuard } from './origin.js';
import { answerError, payloadOf, Session } from './session.js';
import { decodeValue, encodeValue } from './values.js';
import { WsLink } from './ws-link.js';

export const WS_PATH = '/v1/ws';
/** Subprotocol of the binary mode: each message carries raw xenstore wire bytes (frames). */
export const BINARY_PROTOCOL = 'xenstore';
/** Subprotocol name for the JSON mode, for clients that want to name it (it is the default). */
export const JSON_PROTOCOL = 'xenstore-json';
/**
 * The WebSocket endpoint, on the HTTP server's `upgrade` event (ws's `noServer` mode): the
 * credentials are checked before the handshake, before any message is read (401 as a plain HTTP
 * answer; a client without a token is a reader, refused unless anonymous reads are allowed), then
 * the client is a Connection of the daemon like any socket client, in one of two modes:
 * - JSON (default): requests `{ id, op, ... }` validated with zod, one reply each, and watch
 *   events `{ event: "watch", path, token }` in the order the daemon fires them (commit order);
 * - binary (subprotocol `xenstore`): messages carry raw wire bytes, framed by the same decoder as
 *   the Unix socket, so a remote client speaks the real protocol with the same semantics.
 */
export class WsEndpoint {
  private readonly wss = new WebSocketServer({
    noServer: true,
    // A bigger message closes the client (1009) as soon as its header announces it, unread.
    maxPayload: WS_MESSAGE_MAX,
    perMessageDeflate: false,
    handleProtocols: (offered) => (offered.has(BINARY_PROTOCOL) ? BINARY_PROTOCOL : offered.has(JSON_PROTOCOL) ? JSON_PROTOCOL : false),
  });

  constructor(
    server: Server,
    private readonly gw: Gateway,
    private readonly guard: OriginGuard,
  ) {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    gw.metrics.wsBuffered = () => {
      let n = 0;
      for (const ws of this.wss.clients) n += ws.bufferedAmount;
      return n;
    };
  }

  /** `close()` ends every client (1001 "going away") and stops accepting. */
  close(): void {
    for (const ws of this.wss.clients) {
      ws.close(1001, 'daemon stopping');
      // Do not wait for a client that does not answer the close: the daemon is exiting.
      setTimeout(() => ws.terminate(), 200).unref();
    }
    this.wss.close();
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // An upgrading socket has no error listener of Node's: a reset must not crash the daemon.
    socket.on('error', () => socket.destroy());
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return refuse(socket, 400, 'EINVAL', 'malformed request target');
    }
    if (url.pathname !== WS_PATH) return refuse(socket, 404, 'ENOENT', `no WebSocket at ${url.pathname}`);
    let identity: Identity;
    try {
      this.guard.checkHost(req.headers);
      this.guard.checkOrigin(req.headers);
      identity = this.gw.tokens.identify(req.headers.authorization, url.searchParams.get('token') ?? undefined);
      // Reads and watches: an anonymous client may have them only where anonymous reads are on,
      // as an unprivileged read-only domain (identity.ts), its watch events filtered (XSA-115).
      authorize(identity, 'read', this.gw.anonymous, 'a WebSocket');
      if (identity.kind === 'guest') this.checkConnectionQuota(identity.domid);
    } catch (e) {
      const { status, body } = toHttpError(e);
      return refuse(socket, status, body.error, body.message);
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.serve(ws, identity));
  }

  /**
   * A guest's WebSockets count against its `connections` quota with its socket's connections
   * (quotas/domain-budget.ts `held`): otherwise a guest holding a token would open as many as the
   * gateway's cap allows. One past it is refused before the upgrade: 429, ENOSPC.
   */
  private checkConnectionQuota(domid: number): void {
    const daemon = this.gw.daemon;
    const max = daemon.quotas.limitsFor(domid).connections;
    if ((daemon.budgets.get(domid)?.held ?? 0) >= max) throw new XsError('ENOSPC', `domain ${domid} holds its ${max} connections`);
  }

  private serve(ws: WebSocket, identity: Identity): void {
    const daemon = this.gw.daemon;
    const domain = identity.kind === 'guest' ? daemon.domains.get(identity.domid) : undefined;
    const caller = callerOf(identity, domain);
    // The limits of the domain the client acts as (an anonymous client: the unprivileged defaults).
    const domid = caller.domid;
    const limit = () => daemon.quotas.limitsFor(domid).watchEvents;
    const onSlow = () => {
      this.gw.metrics.wsSlowCloses++;
      daemon.log.warn({ domid }, 'WebSocket client is not reading; closed (1013)');
    };
    let conn: Connection;
    if (ws.protocol === BINARY_PROTOCOL) {
      const transport = new WsTransport(ws, limit, onSlow);
      conn = daemon.attach(transport, 'ws-binary', caller);
    } else {
      conn = new JsonClient(this.gw, ws, 'ws', caller, limit, onSlow).session.conn;
    }
    // A guest's clients end with its domain (RELEASE closes them) and follow its SET_TARGET.
    if (domain !== undefined) {
      domain.connections.add(conn);
      ws.once('close', () => domain.connections.delete(conn));
    }
  }
}

/** Answers a refused upgrade with a plain HTTP JSON error and closes the socket. */
function refuse(socket: Duplex, status: number, error: string, message: string): void {
  const body = JSON.stringify({ error, message });
  const auth = status === 401 ? 'WWW-Authenticate: Bearer realm="nxenstored"\r\n' : '';
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${auth}Connection: close\r\n\r\n${body}`,
  );
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** The binary mode's transport: wire bytes in and out, paced like a socket (see WsLink). */
class WsTransport extends EventEmitter implements Transport {
  readonly writableLength = 0;
  readonly writableNeedDrain = false;
  private readonly link: WsLink;

  constructor(
    private readonly ws: WebSocket,
    limit: () => number,
    onSlow: () => void,
  ) {
    super();
    this.link = new WsLink(ws, limit, () => this.emit('drain'), onSlow);
    ws.on('message', (data, isBinary) => {
      if (!isBinary) ws.close(1003, 'the xenstore subprotocol takes binary messages only');
      else this.emit('data', toBuffer(data));
    });
    ws.on('error', (e) => this.emit('error', e));
    ws.on('close', () => this.emit('close'));
  }

  write(frame: Buffer): boolean {
    return this.link.send(frame);
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }


  destroy(error?: Error): void {
    // An oversized header (spec §1.3) is a protocol error: 1002, as the socket is closed.
    if (error !== undefined) this.ws.close(1002, error.message.slice(0, 120));
    else this.ws.close(1000);
  }
}

/**
 * A JSON-mode client: each request becomes the wire request of the same name and runs on the
 * client's Session; the reply and any events come back through `answer()` in the order the daemon
 * sent them (for an update, its events before its reply, as on the wire; for WATCH, the reply
 * before the initial event), and are forwarded in that order.
 */
class JsonClient {
  readonly session: Session;
  private readonly link: WsLink;
  /** Requests sent and not answered yet, oldest first. */
  private readonly outstanding: GatewayRequest[] = [];
  private paused = false;

  constructor(
    private readonly gw: Gateway,
    private readonly ws: WebSocket,
    kind: ConnectionKind,
    caller: Caller,
    limit: () => number,
    onSlow: () => void,
  ) {
    this.link = new WsLink(ws, limit, () => this.drained(), onSlow);
    this.session = new Session(
      gw.daemon,
      kind,
      caller,
      (a) => this.answer(a),
      // The daemon ended the connection (its domain was released, or it is stopping).
      () => ws.close(1001, 'connection closed by the daemon'),
    );
    ws.on('message', (data, isBinary) => this.message(data, isBinary));
    ws.on('close', () => this.session.close());
    ws.on('error', () => this.session.close());
  }

  private message(data: RawData, isBinary: boolean): void {
    if (isBinary) {
      this.ws.close(1003, 'JSON mode takes text messages; use the "xenstore" subprotocol for wire frames');
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(toBuffer(data).toString('utf8'));
    } catch {
      return this.error(null, 'EINVAL', 'not JSON');
    }
    const parsed = requestSchema.safeParse(json);
    if (!parsed.success) {
      const raw = (json as { id?: unknown } | null)?.id;
      const id = (typeof raw === 'string' && raw.length <= 256) || Number.isInteger(raw) ? (raw as string | number) : null;
      return this.error(id, 'EINVAL', describeZod(parsed.error));
    }
    const req = parsed.data;
    let wire;
    try {
      wire = toWire(req);
    } catch (e) {
      const { body } = toHttpError(e);
      return this.error(req.id, body.error, body.message);
    }
    // Replies come back in request order (spec §1.2), possibly before send() returns.
    this.outstanding.push(req);
    try {
      this.session.send(wire.type, wire.payload, wire.tx);
    } catch (e) {
      this.outstanding.pop();
      const { body } = toHttpError(e);
      this.error(req.id, body.error, body.message);
    }
  }

  private answer(a: Answer): void {
    if (a.kind === 'event') return this.send({ event: 'watch', path: a.path, token: a.token });
    const req = this.outstanding.shift();
    if (req === undefined) return;
    if (a.kind === 'error') {
      this.gw.metrics.op(opName(a.request.type), a.code);
      const e = answerError(a.code, describeRequest(req));
      return this.error(req.id, e.code, e.message);
    }
    this.gw.metrics.op(opName(a.request.type), 'OK');
    const result = resultOf(req, payloadOf(a));
    this.send(result === undefined ? { id: req.id, ok: true } : { id: req.id, ok: true, result });
  }

  private error(id: string | number | null, code: string, message: string): void {
    this.send({ id, ok: false, error: isXsErrorCode(code) ? code : 'EIO', message });
  }

  private send(msg: object): void {
    if (!this.link.send(JSON.stringify(msg)) && !this.paused && this.ws.readyState === WebSocket.OPEN) {
      // Stop reading this client's requests until it reads its replies (xb.ml `can_input`).
      this.paused = true;
      this.ws.pause();
    }
  }

  private drained(): void {
    if (this.paused) {
      this.paused = false;
      this.ws.resume();
    }
  }
}

/** `toWire(req)` is the Xen message a JSON request stands for. */
function toWire(req: GatewayRequest): { type: number; payload: Buffer; tx: number } {
  const tx = 'tx' in req && req.tx !== undefined ? req.tx : 0;
  switch (req.op) {
    case 'read':
      return { type: Op.READ, payload: requestPayload.read(req.path), tx };
    case 'write':
      return { type: Op.WRITE, payload: requestPayload.write(req.path, decodeValue(req.value, req.encoding)), tx };
    case 'mkdir':
      return { type: Op.MKDIR, payload: requestPayload.mkdir(req.path), tx };
    case 'rm':
      return { type: Op.RM, payload: requestPayload.rm(req.path), tx };
    case 'directory':
      return { type: Op.DIRECTORY, payload: requestPayload.directory(req.path), tx };
    case 'get-perms':
      return { type: Op.GET_PERMS, payload: requestPayload.getPerms(req.path), tx };
    case 'set-perms':
      return { type: Op.SET_PERMS, payload: requestPayload.setPerms(req.path, req.perms), tx };
    case 'watch':
      return { type: Op.WATCH, payload: requestPayload.watch(req.path, req.token), tx: 0 };
    case 'unwatch':
      return { type: Op.UNWATCH, payload: requestPayload.unwatch(req.path, req.token), tx: 0 };
    case 'reset-watches':
      return { type: Op.RESET_WATCHES, payload: requestPayload.resetWatches(), tx: 0 };
    case 'transaction-start':
      return { type: Op.TRANSACTION_START, payload: requestPayload.transactionStart(), tx: 0 };
    case 'transaction-end':
      return { type: Op.TRANSACTION_END, payload: requestPayload.transactionEnd(req.commit), tx };
    case 'get-domain-path':
      return { type: Op.GET_DOMAIN_PATH, payload: requestPayload.getDomainPath(req.domid), tx: 0 };
  }
}

function describeRequest(req: GatewayRequest): string {
  return 'path' in req ? `${req.op} ${req.path}` : req.op;
}

/** The JSON result of a successful reply, by the request's op (the API contract). */
function resultOf(req: GatewayRequest, payload: Buffer): unknown {
  switch (req.op) {
    case 'read':
      return encodeValue(payload, req.encoding);
    case 'directory':
    case 'get-perms':
      return parseDirectory(payload) ?? [];
    case 'transaction-start':
      return { tx: parseDecimal(payload) };
    case 'get-domain-path':
      return payload.toString('latin1').replace(/\0$/, '');
    default:
      return undefined;
  }
}
