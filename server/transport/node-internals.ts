import type { Server, Socket } from 'node:net';

/**
 * Every use of Node's internals, in one place: what `net.Socket` has no public API for. Each
 * accessor checks the shape it relies on and answers `undefined` when this Node lacks it, so that
 * callers take their public-API path instead (`--socket-io stream`; live update refusing with a
 * message). The start-up line says which socket I/O mode runs (`socketIoMode`).
 *
 * - `streamWrap()`, `pipeHandle()`: the libuv stream under an accepted socket and the binding's
 *   `WriteWrap`, for reading into one reused buffer and writing with one write(2) per flush
 *   (`transport/socket-transport.ts`). `process.binding` is deprecated (DEP0111, printed only under
 *   `--pending-deprecation`); it is the only way to a `WriteWrap`.
 * - `stopStreamReading()`, `restartStreamReading()`: live update stops reading a stream-served
 *   socket at the descriptor, so that unread requests stay in the kernel for the next process.
 * - `descriptor()`: the descriptor under a socket or server, which live update hands on.
 * - `listenAlone()`: `server.listen` without node:cluster (see there).
 */

export interface WriteReq {
  handle: unknown;
  oncomplete: (status: number) => void;
  async: boolean;
  bytes: number;
  buffer: Buffer | null;
}

export interface PipeHandle {
  onread: (this: PipeHandle) => unknown;
  reading: boolean;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buf: Uint8Array): void;
  writeBuffer(req: WriteReq, data: Buffer): number;
}

export interface StreamWrap {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

let binding: StreamWrap | null | undefined;

export function streamWrap(): StreamWrap | undefined {
  if (binding === undefined) {
    try {
      const b = (process as unknown as { binding(name: string): Partial<StreamWrap> }).binding('stream_wrap');
      binding =
        typeof b.WriteWrap === 'function' &&
        b.streamBaseState instanceof Int32Array &&
        typeof b.kReadBytesOrError === 'number' &&
        typeof b.kLastWriteWasAsync === 'number'
          ? (b as StreamWrap)
          : null;
    } catch {
      binding = null;
    }
  }
  return binding ?? undefined;
}

export function pipeHandle(socket: Socket): PipeHandle | undefined {
  const h = (socket as unknown as { _handle?: Partial<PipeHandle> | null })._handle;
  if (h === null || h === undefined) return undefined;
  return typeof h.readStart === 'function' &&
    typeof h.readStop === 'function' &&
    typeof h.useUserBuffer === 'function' &&
    typeof h.writeBuffer === 'function'
    ? (h as PipeHandle)
    : undefined;
}

/** The libuv stream under a stream-served socket. */
interface StreamHandle {
  reading: boolean;
  readStop(): number;
}

function streamHandle(socket: Socket): StreamHandle | undefined {
  return (socket as unknown as { _handle?: StreamHandle | null })._handle ?? undefined;
}

/**
 * `stopStreamReading(socket)` stops a stream-served socket at its descriptor: what Node already
 * read is handed out first (as 'data'), what the client sends after stays in the kernel.
 */
export function stopStreamReading(socket: Socket): void {
  const handle = streamHandle(socket);
  socket.pause();
  // read() hands out (as 'data', into the decoder) what the stream buffered; it may restart the
  // descriptor's reading, so stop that afterwards. `reading = true` keeps Node's _read from
  // starting it again behind our back (its read-more tick), which would take bytes we hand on.
  while (socket.readableLength > 0 && socket.read() !== null);
  if (handle !== undefined) {
    handle.readStop();
    handle.reading = true;
  }
}

/** `restartStreamReading(socket)` undoes `stopStreamReading` (a live update that failed). */
export function restartStreamReading(socket: Socket): void {
  const handle = streamHandle(socket);
  if (handle !== undefined) handle.reading = false;
  // The stream still believes a read is under way (none completed since we stopped): without
  // this, resume() would not ask for more and the socket would never be read again.
  const state = (socket as unknown as { _readableState?: { reading: boolean } })._readableState;
  if (state !== undefined) state.reading = false;
}

/** The descriptor under a socket or server (Node's `_handle.fd`, POSIX only). */
export function descriptor(x: Socket | Server): number | undefined {
  const fd = (x as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

interface ListenSteps {
  _listen2?: (address: string | null, port: number | null, addressType: number | null, backlog: number, fd?: number) => void;
  _listeningId?: number;
  _pipeName?: string;
  _handle?: unknown;
}

/**
 * `listenAlone(server, target, onListening)` is `server.listen(target, onListening)` for a Unix
 * socket path or an inherited descriptor, without loading node:cluster. lib/net.js's `listen`
 * goes through `listenInCluster`, which requires node:cluster on every call (and with it
 * child_process, dgram and the cluster modules: ~2 ms of a cold start's CPU on Node 24, issue
 * 16) only to find that this process is the primary, and then calls `server._listen2`, the step
 * "still named like this to avoid breaking code that wraps this method" (lib/net.js); this calls
 * it directly, as `listen` would with the same arguments (backlog 0: libuv's 511). Errors come as
 * the server's 'error' event, as they do from `listen`. Public `listen` where a step is missing.
 */
export function listenAlone(server: Server, target: { path: string } | { fd: number }, onListening: () => void): void {
  const s = server as unknown as ListenSteps;
  if (typeof s._listen2 !== 'function' || typeof s._listeningId !== 'number' || s._handle) {
    server.listen(target, onListening);
    return;
  }
  server.once('listening', onListening);
  s._listeningId++;
  if ('path' in target) {
    s._pipeName = target.path;
    s._listen2(target.path, -1, -1, 0);
  } else {
    s._listen2(null, null, null, 0, target.fd);
  }
}
