/**
 * The client's own failures. A refusal by the daemon is an `XsError` from store/ (its `code`
 * is the Xen name the daemon sent, spec §2.1); these two are failures of the connection
 * itself, each with its own class and `name`, and the underlying error as `cause` (nats.js
 * `errors.ts`).
 */

/** The connection is gone: closed by the client, by the daemon, or by a socket error. */
export class ConnectionClosedError extends Error {
  override readonly name = 'ConnectionClosedError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * The daemon sent something the protocol does not allow (spec §1.2): a reply of the wrong
 * type, for a request that was never sent, oversized, or malformed. libxenstore treats these
 * as fatal for the handle (EBADF / E2BIG), and so does XsClient: it closes the connection.
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
