import type { Socket } from 'node:net';

/**
 * After this much of a refused request's body has been read (and dropped) past its answer, the
 * connection is read no more. What the transport had already taken in flight still arrives: a
 * few 64 KiB reads (257 KiB in all with Node 24 against a client sending as fast as it can).
 */
export const LINGER_BYTES = 64 * 1024;
/** How long a connection whose request was answered before its body ended stays open at most. */
export const LINGER_MS = 2000;

/**
 * `linger(socket)`: a lingering close, for a connection whose request was answered before its
 * body had all arrived (a 401 or 413 decided on the headers: test/attacks/gateway-bodies.test.ts).
 * Left alone, Node's server reads and drops the rest of the body to keep the connection alive
 * (`req._dump()`), however long it is: a flood of 8 MiB bodies made it read 384 MiB to drop and
 * grew the resident set by up to 98 MiB on Node 24. Closing at once (Connection: close, which
 * makes Node `destroySoon` the socket) resets the connection while the client is still sending,
 * and the client sees EPIPE instead of its answer (5e626a6, reverted).
 *
 * So, as HTTP servers do (RFC 9112 §9.6; Apache's `lingering_close`, nginx's `lingering_time`):
 * our side is half-closed after the answer (the client reads it, then the end), about
 * `LINGER_BYTES` more of what it sends are read and dropped, then nothing more is read (what it
 * still sends waits in the kernel's buffers, not ours), and the connection is destroyed when
 * the client ends its side or after `LINGER_MS`, whichever comes first. Bounds: per connection,
 * `LINGER_BYTES` and the reads in flight, and `LINGER_MS` held; the answer reaches the client
 * before any reset.
 */
export function linger(socket: Socket, maxBytes = LINGER_BYTES, maxMs = LINGER_MS): void {
  // An injected request (`fastify.inject`: light-my-request's stand-in socket) has no connection
  // to linger on, and no `destroy`: its timer threw an uncaught TypeError 2 s later.
  if (socket.destroyed || typeof socket.destroy !== 'function') return;
  let left = maxBytes;
  const timer = setTimeout(() => socket.destroy(), maxMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  // A 'data' listener takes the socket back from the HTTP parser's direct reading (Node's server
  // `unconsume`s it): each chunk still goes to the parser, which drops the body; we count it.
  socket.on('data', (chunk: Buffer) => {
    left -= chunk.length;
    if (left <= 0) socket.pause();
  });
  // The client ending its side (its body done) ends the linger: nothing more can come.
  socket.once('end', () => socket.destroy());
  socket.end();
}
