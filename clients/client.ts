import { connect as netConnect, type Socket } from 'node:net';
import {
  FrameDecoder,
  Op,
  PAYLOAD_MAX,
  decodeErrorPayload,
  encodeFrame,
  flagArg,
  oneArg,
  opName,
  parseDecimal,
  parseDirectory,
  parseDirectoryPart,
  parseOk,
  parseWatchEvent,
  requestPayload,
} from '../protocol/index.js';
import type { Frame } from '../protocol/index.js';
import { XsError, isXsErrorCode } from '../protocol/index.js';
import { fromWire, toWire } from './byte-string.js';
import { ConnectionClosedError, ProtocolError } from './errors.js';
import type { DirectoryPart } from './directory-part.js';
import { withTransaction, type TransactionOptions, type TxView } from './transaction.js';
import { WatchStream } from './watch-stream.js';

export interface WatchOptions {
  /** Events kept for a slow consumer before the oldest are dropped (see watch-stream.ts). */
  maxQueue?: number;
}

interface Pending {
  resolve(payload: Buffer): void;
  reject(error: Error): void;
  /** The request's type: the reply must have it, or be ERROR (spec §1.2). */
  type: Op;
}

type State = 'open' | 'closing' | 'closed';

/** A request's transaction id; 0 (the default) means none (spec §1.2). */
type TxId = number;

const u32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;

/**
 * A connection to a xenstore daemon over its Unix socket, with one method per message type
 * (spec §2).
 *
 * Requests are multiplexed: each gets its own non-zero req_id and any number may be in flight;
 * replies are matched by req_id (vscode-jsonrpc `responsePromises`), so the client does not
 * depend on the daemons' in-order answering (spec §1.2 allows reordering). libxenstore sends
 * req_id 0 with one request outstanding; we never use 0, the req_id of watch events.
 *
 * Values are bytes on the wire. `read` decodes them as UTF-8 and `write` encodes strings as
 * UTF-8; `readBytes`/`write(Buffer)` pass bytes through untouched. Paths and tokens are
 * UTF-8-encoded too (byte-string.ts).
 *
 * Failures: a refusal by the daemon rejects with `XsError(code)`; a broken connection with
 * `ConnectionClosedError`; a protocol violation by the daemon with `ProtocolError`, after
 * which the connection is closed (libxenstore: EBADF, spec §1.2).
 */
export class XsClient {
  private readonly decoder = new FrameDecoder();
  private readonly pending = new Map<number, Pending>();
  /** Watch subscriptions by wire token: tokens route events (spec §8.3). */
  private readonly watches = new Map<string, WatchStream>();
  private lastReqId = 0;
  private tokenSerial = 0;
  private state: State = 'open';
  /** Why the connection ended (or is ending): what later requests are rejected with. */
  private failure: Error | undefined = undefined;
  private readonly closed: Promise<void>;

  /** Takes over a connected socket; `XsClient.connect` is the usual way in. */
  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // Node throws on an 'error' without a listener; remember it and tear down once, in 'close'
    // (nats.js `node_transport.ts`).
    socket.on('error', (e: Error) => {
      this.failure ??= new ConnectionClosedError(`connection to xenstored failed: ${e.message}`, { cause: e });
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve(this.onClose())));
  }

  /** `XsClient.connect(path)` opens the Unix socket at `path`; rejects with the socket's error (e.g. `code` ECONNREFUSED). */
  static connect(path: string): Promise<XsClient> {
    return new Promise((resolve, reject) => {
      const socket = netConnect(path);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new XsClient(socket));
      });
    });
  }

  /** True until the connection is closed or lost. */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  // --- tree operations (spec §7.1–7.7); `tx` is a transaction id, 0 = none ---

  /** READ: the value decoded as UTF-8 (invalid sequences become U+FFFD; use `readBytes` for binary). */
  async read(path: string, tx: TxId = 0): Promise<string> {
    return (await this.request(Op.READ, requestPayload.read(toWire(path)), tx)).toString('utf8');
  }

  /** READ: the value's bytes exactly as stored (spec §7.1). */
  async readBytes(path: string, tx: TxId = 0): Promise<Buffer> {
    // Copy: the payload may alias a larger chunk of the socket stream (frame-decoder.ts).
    return Buffer.from(await this.request(Op.READ, requestPayload.read(toWire(path)), tx));
  }

  /** WRITE: creates the node and missing parents, or replaces its value (spec §7.2). Strings are written as UTF-8. */
  async write(path: string, value: string | Buffer, tx: TxId = 0): Promise<void> {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    this.ok(Op.WRITE, await this.request(Op.WRITE, requestPayload.write(toWire(path), bytes), tx));
  }

  /** MKDIR: ensures the node exists; an existing node is left alone (spec §7.3). */
  async mkdir(path: string, tx: TxId = 0): Promise<void> {
    this.ok(Op.MKDIR, await this.request(Op.MKDIR, requestPayload.mkdir(toWire(path)), tx));
  }

  /** RM: removes the node and its subtree; a missing node whose parent exists is not an error (spec §7.4). */
  async rm(path: string, tx: TxId = 0): Promise<void> {
    this.ok(Op.RM, await this.request(Op.RM, requestPayload.rm(toWire(path)), tx));
  }

  /**
   * DIRECTORY: the child names (spec §7.5). A listing too big for one message (E2BIG, spec §1.4)
   * is fetched in DIRECTORY_PART chunks instead, as libxenstore does; if the daemon lacks
   * DIRECTORY_PART (oxenstored: ENOSYS) the E2BIG stands.
   */
  async directory(path: string, tx: TxId = 0): Promise<string[]> {
    try {
      const payload = await this.request(Op.DIRECTORY, requestPayload.directory(toWire(path)), tx);
      return this.parsed(Op.DIRECTORY, parseDirectory(payload)).map(fromWire);
    } catch (e) {
      if (!(e instanceof XsError && e.code === 'E2BIG')) throw e;
      try {
        return await this.directoryByParts(path, tx);
      } catch (e2) {
        throw e2 instanceof XsError && e2.code === 'ENOSYS' ? e : e2;
      }
    }
  }

  /** DIRECTORY_PART: the names from byte `offset` of the joined child list (spec §7.6). */
  async directoryPart(path: string, offset: number, tx: TxId = 0): Promise<DirectoryPart> {
    const payload = await this.request(Op.DIRECTORY_PART, requestPayload.directoryPart(toWire(path), offset), tx);
    const part = this.parsed(Op.DIRECTORY_PART, parseDirectoryPart(payload));
    return { generation: part.generation, names: part.names.map(fromWire), done: part.done };
  }

  /** GET_PERMS: entries like `n0`, `r5`; the first names the owner (spec §6.1, §7.7). */
  async getPerms(path: string, tx: TxId = 0): Promise<string[]> {
    return this.parsed(Op.GET_PERMS, parseDirectory(await this.request(Op.GET_PERMS, requestPayload.getPerms(toWire(path)), tx)));
  }

  /** SET_PERMS: replaces the node's permissions; `perms[0]` is the owner and the default (spec §7.7). */
  async setPerms(path: string, perms: readonly string[], tx: TxId = 0): Promise<void> {
    this.ok(Op.SET_PERMS, await this.request(Op.SET_PERMS, requestPayload.setPerms(toWire(path), perms), tx));
  }

  /**
   * Whether the node exists, by READ (as `xenstore-exists` does): ENOENT is false; any other
   * refusal (EACCES: the node may exist but is hidden) is thrown.
   */
  async exists(path: string, tx: TxId = 0): Promise<boolean> {
    try {
      await this.request(Op.READ, requestPayload.read(toWire(path)), tx);
      return true;
    } catch (e) {
      if (e instanceof XsError && e.code === 'ENOENT') return false;
      throw e;
    }
  }

  // --- watches (spec §8) ---

  /**
   * WATCH: registers `path` (absolute, relative, or `@introduceDomain`/`@releaseDomain`) and
   * returns its event stream, which starts with the registration event (spec §8.1). `token`
   * defaults to a fresh one; tokens route events to streams, so a token already in use on this
   * client is refused with EEXIST (the daemon allows it on another path, but the events could
   * not be told apart).
   */
  async watch(path: string, token?: string, opts: WatchOptions = {}): Promise<WatchStream> {
    const wireToken = toWire(token ?? `nxs-${++this.tokenSerial}`);
    const wirePath = toWire(path);
    if (this.watches.has(wireToken)) throw new XsError('EEXIST', `token ${JSON.stringify(token)} is already in use on this connection`);
    const stream = new WatchStream(path, fromWire(wireToken), () => this.dropWatch(wirePath, wireToken), opts.maxQueue);
    // Route before sending: the registration event may arrive right after the reply (spec §8.8).
    this.watches.set(wireToken, stream);
    try {
      this.ok(Op.WATCH, await this.request(Op.WATCH, requestPayload.watch(wirePath, wireToken)));
    } catch (e) {
      if (this.watches.get(wireToken) === stream) this.watches.delete(wireToken);
      stream.end();
      throw e;
    }
    return stream;
  }

  /**
   * UNWATCH: removes the watch `path`+`token` (spec §8.1) and ends the stream routed by `token`,
   * if any. `WatchStream.close()` is the usual way; this is the raw operation.
   */
  async unwatch(path: string, token: string): Promise<void> {
    const wireToken = toWire(token);
    this.watches.get(wireToken)?.end();
    this.watches.delete(wireToken);
    this.ok(Op.UNWATCH, await this.request(Op.UNWATCH, requestPayload.unwatch(toWire(path), wireToken)));
  }

  /** RESET_WATCHES: drops every watch AND every open transaction of this connection (spec §7.15). */
  async resetWatches(): Promise<void> {
    for (const stream of this.watches.values()) stream.end();
    this.watches.clear();
    this.ok(Op.RESET_WATCHES, await this.request(Op.RESET_WATCHES, requestPayload.resetWatches()));
  }

  // --- transactions (spec §9) ---

  /** TRANSACTION_START: the new transaction's id. `transaction()` adds the retry loop. */
  async transactionStart(): Promise<number> {
    const id = this.parsed(Op.TRANSACTION_START, parseDecimal(await this.request(Op.TRANSACTION_START, requestPayload.transactionStart())));
    if (id === 0 || !u32(id)) throw this.violation(`TRANSACTION_START returned id ${id}`);
    return id;
  }

  /** TRANSACTION_END: commit (`T`) or abort (`F`); a failed commit is EAGAIN and applied nothing (spec §9.1). */
  async transactionEnd(tx: TxId, commit: boolean): Promise<void> {
    this.ok(Op.TRANSACTION_END, await this.request(Op.TRANSACTION_END, requestPayload.transactionEnd(commit), tx));
  }

  /** `transaction(fn, opts)` is `withTransaction(this, fn, opts)`: run, commit, retry on EAGAIN. */
  transaction<T>(fn: (tx: TxView) => Promise<T>, opts?: TransactionOptions): Promise<T> {
    return withTransaction(this, fn, opts);
  }

  // --- domains (spec §7.8, §7.11–7.14, §6.5), privileged except GET_DOMAIN_PATH ---

  /** INTRODUCE: start serving `domid` (ring at frame `mfn`, event channel `port`). */
  async introduce(domid: number, mfn: number | bigint, port: number): Promise<void> {
    this.ok(Op.INTRODUCE, await this.request(Op.INTRODUCE, requestPayload.introduce(domid, mfn, port)));
  }

  /** RELEASE: stop serving `domid`; fires @releaseDomain. */
  async release(domid: number): Promise<void> {
    this.ok(Op.RELEASE, await this.request(Op.RELEASE, requestPayload.release(domid)));
  }

  /** RESUME: re-arm @releaseDomain for a resumed domain. */
  async resume(domid: number): Promise<void> {
    this.ok(Op.RESUME, await this.request(Op.RESUME, requestPayload.resume(domid)));
  }

  /** IS_DOMAIN_INTRODUCED. */
  async isDomainIntroduced(domid: number): Promise<boolean> {
    return this.parsed(Op.IS_DOMAIN_INTRODUCED, flagArg(await this.request(Op.IS_DOMAIN_INTRODUCED, requestPayload.isDomainIntroduced(domid))));
  }

  /** GET_DOMAIN_PATH: `/local/domain/<domid>` (no check that the domain exists). */
  async getDomainPath(domid: number): Promise<string> {
    return fromWire(this.parsed(Op.GET_DOMAIN_PATH, oneArg(await this.request(Op.GET_DOMAIN_PATH, requestPayload.getDomainPath(domid)))));
  }

  /** SET_TARGET: `domid` (a stub domain) acts for `target` from now on. */
  async setTarget(domid: number, target: number): Promise<void> {
    this.ok(Op.SET_TARGET, await this.request(Op.SET_TARGET, requestPayload.setTarget(domid, target)));
  }

  // --- features and quotas (spec §7.17, §7.18; Xen 4.21+ daemons, ENOSYS elsewhere) ---

  /** GET_FEATURE: the feature bits of `domid`, or of the caller without it. */
  async getFeature(domid?: number): Promise<number> {
    return this.parsed(Op.GET_FEATURE, parseDecimal(await this.request(Op.GET_FEATURE, requestPayload.getFeature(domid))));
  }

  /** SET_FEATURE: only before `domid` is introduced (EBUSY after). */
  async setFeature(domid: number, value: number): Promise<void> {
    this.ok(Op.SET_FEATURE, await this.request(Op.SET_FEATURE, requestPayload.setFeature(domid, value)));
  }

  /** GET_QUOTA without a name: the names of the enabled quotas. */
  getQuota(): Promise<string[]>;
  /** GET_QUOTA `name`: the global value, or `domid`'s; 0 = unlimited. */
  getQuota(name: string, domid?: number): Promise<number>;
  async getQuota(name?: string, domid?: number): Promise<string[] | number> {
    const payload = await this.request(Op.GET_QUOTA, requestPayload.getQuota(name === undefined ? undefined : toWire(name), domid));
    if (name !== undefined) return this.parsed(Op.GET_QUOTA, parseDecimal(payload));
    const list = this.parsed(Op.GET_QUOTA, oneArg(payload));
    return list === '' ? [] : list.split(' ');
  }

  /** SET_QUOTA `name` globally, or for `domid`; 0 = unlimited. */
  async setQuota(name: string, value: number, domid?: number): Promise<void> {
    this.ok(Op.SET_QUOTA, await this.request(Op.SET_QUOTA, requestPayload.setQuota(toWire(name), value, domid)));
  }

  /**
   * CONTROL `cmd args…` (spec §7.16, what `xenstore-control` sends): the reply text, without its
   * terminating NUL. The commands are the daemon's own.
   */
  async control(cmd: string, ...args: string[]): Promise<string> {
    const payload = await this.request(Op.CONTROL, requestPayload.control(toWire(cmd), ...args.map(toWire)));
    const end = payload.length > 0 && payload[payload.length - 1] === 0 ? payload.length - 1 : payload.length;
    return payload.toString('utf8', 0, end);
  }

  // --- lifecycle ---

  /**
   * `close()` ends the connection: requests still in flight reject with ConnectionClosedError,
   * watch streams end (their queued events are still delivered). The daemon drops this
   * connection's watches and transactions with it (spec §8.1, §9.1). Idempotent.
   */
  close(): Promise<void> {
    if (this.state === 'open') {
      this.state = 'closing';
      this.failure = new ConnectionClosedError('connection closed by the client');
      this.settle(this.failure, undefined);
      // end() flushes what was written; destroy() then, rather than waiting for the daemon's FIN.
      this.socket.end(() => this.socket.destroy());
    }
    return this.closed;
  }

  // --- internals ---

  /** Sends one request and resolves with the reply's payload, or rejects (see class comment). */
  private request(type: Op, payload: Buffer, tx: TxId = 0): Promise<Buffer> {
    if (this.state !== 'open') {
      return Promise.reject(this.failure ?? new ConnectionClosedError('connection is closed'));
    }
    if (!u32(tx)) return Promise.reject(new RangeError(`transaction id ${tx} is not a u32`));
    // A payload the daemon must refuse (spec §1.2): fail the call as libxenstore's xs_talkv does.
    if (payload.length > PAYLOAD_MAX) {
      return Promise.reject(new XsError('E2BIG', `${opName(type)} payload of ${payload.length} bytes exceeds ${PAYLOAD_MAX}`));
    }
    const reqId = this.nextReqId();
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(reqId, { resolve, reject, type });
      this.socket.write(encodeFrame(type, reqId, tx, payload));
    });
  }

  /** A fresh req_id: non-zero, wrapping at 2^32, skipping ids still in flight. */
  private nextReqId(): number {
    do {
      this.lastReqId = this.lastReqId >= 0xffffffff ? 1 : this.lastReqId + 1;
    } while (this.pending.has(this.lastReqId));
    return this.lastReqId;
  }

  private onData(chunk: Buffer): void {
    this.decoder.push(chunk);
    for (let frame = this.decoder.next(); frame !== undefined; frame = this.decoder.next()) {
      this.onFrame(frame);
      if (this.state !== 'open') return;
    }
    const error = this.decoder.error;
    if (error !== undefined) this.fail(new ProtocolError(`daemon sent a message of ${error.len} bytes (limit ${PAYLOAD_MAX})`));
  }

  private onFrame({ header, payload }: Frame): void {
    if (header.type === Op.WATCH_EVENT) {
      const event = parseWatchEvent(payload);
      if (event === undefined) {
        this.fail(new ProtocolError('malformed WATCH_EVENT'));
        return;
      }
      // No stream: an event that was in flight when its watch was removed. Expected, dropped.
      this.watches.get(event.token)?.push({ path: fromWire(event.path), token: fromWire(event.token) });
      return;
    }
    const pending = this.pending.get(header.reqId);
    if (pending === undefined) {
      this.fail(new ProtocolError(`reply ${opName(header.type)} for req_id ${header.reqId}, which is not in flight`));
      return;
    }
    this.pending.delete(header.reqId);
    if (header.type === pending.type) {
      pending.resolve(payload);
    } else if (header.type === Op.ERROR) {
      pending.reject(xsErrorOf(decodeErrorPayload(payload)));
    } else {
      const error = new ProtocolError(`${opName(pending.type)} answered with ${opName(header.type)}`);
      pending.reject(error);
      this.fail(error);
    }
  }

  /** Checks an acknowledgement reply (`OK\0`). */
  private ok(type: Op, payload: Buffer): void {
    if (!parseOk(payload)) throw this.violation(`${opName(type)} reply is not OK: ${JSON.stringify(payload.toString('latin1'))}`);
  }

  /** Unwraps a reply parser's result; a malformed reply is a protocol violation. */
  private parsed<T>(type: Op, value: T | undefined): T {
    if (value === undefined) throw this.violation(`malformed ${opName(type)} reply`);
    return value;
  }

  /** Closes the connection for a protocol violation and returns the error for the caller to throw. */
  private violation(message: string): ProtocolError {
    const error = new ProtocolError(message);
    this.fail(error);
    return error;
  }

  /** Tears the connection down because of `error`, which every request in flight and every stream gets. */
  private fail(error: Error): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.failure = error;
    this.settle(error, error);
    this.socket.destroy();
  }

  /** The socket is gone; if nobody said why yet, the daemon closed it. */
  private onClose(): void {
    this.state = 'closed';
    const error = (this.failure ??= new ConnectionClosedError('connection closed by xenstored'));
    this.settle(error, error);
  }

  /** Rejects every request in flight with `error` and ends every watch stream (with `streamError`, if any). */
  private settle(error: Error, streamError: Error | undefined): void {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    for (const stream of this.watches.values()) stream.end(streamError);
    this.watches.clear();
  }

  /** WatchStream.close(): stop routing, then UNWATCH; a connection already gone took the watch with it. */
  private async dropWatch(wirePath: string, wireToken: string): Promise<void> {
    this.watches.delete(wireToken);
    if (this.state !== 'open') return;
    try {
      this.ok(Op.UNWATCH, await this.request(Op.UNWATCH, requestPayload.unwatch(wirePath, wireToken)));
    } catch (e) {
      if (!(e instanceof ConnectionClosedError)) throw e;
    }
  }

  /**
   * The DIRECTORY_PART loop of libxenstore's `xs_directory_part` (spec §7.6): chunks from offset
   * 0 until one ends the list, starting over whenever the generation changes, because the
   * offsets of a changed listing no longer line up.
   */
  private async directoryByParts(path: string, tx: TxId): Promise<string[]> {
    restart: for (;;) {
      const names: string[] = [];
      let offset = 0;
      let generation: string | undefined;
      for (;;) {
        const part = await this.directoryPart(path, offset, tx);
        if (generation !== undefined && part.generation !== generation) continue restart;
        generation = part.generation;
        names.push(...part.names);
        if (part.done) return names;
        if (part.names.length === 0) throw this.violation('DIRECTORY_PART made no progress');
        for (const name of part.names) offset += Buffer.byteLength(name, 'utf8') + 1;
      }
    }
  }
}

/**
 * The XsError for an ERROR payload. A name outside the table becomes EINVAL, as libxenstore's
 * `get_error` does (spec §2.1); the message keeps what the daemon actually said.
 */
function xsErrorOf(name: string): XsError {
  return isXsErrorCode(name) ? new XsError(name) : new XsError('EINVAL', `unknown error ${JSON.stringify(name)} from xenstored`);
}
