/**
 * Public surface of clients/: the xenstore client library and the `nxs` CLI.
 */
export { XsClient } from './client.js';
export type { WatchOptions } from './client.js';
export type { DirectoryPart } from './directory-part.js';
export { ConnectionClosedError, ProtocolError } from './errors.js';
export { DEFAULT_RUNDIR, defaultRundir, defaultSocketPath, guestSocketPath, readOnlySocketPath } from './socket-path.js';
export { DEFAULT_RETRIES, TxView, withTransaction } from './transaction.js';
export type { TransactionOptions } from './transaction.js';
export { DEFAULT_WATCH_QUEUE, WatchStream } from './watch-stream.js';
export type { WatchEvent } from './watch-stream.js';
export { DumpFormatError, dumpTree, parseDump, restoreTree } from './dump.js';
export type { DumpNode, DumpReader, DumpValue, DumpWriter } from './dump.js';
export { sanitise, unsanitise } from './sanitise.js';
export { ListingError, listTree } from './tree-listing.js';
export type { ListOptions, ListOutput, TreeReader } from './tree-listing.js';
export { main, usage } from './nxs.js';
export type { NxsIo } from './nxs.js';
