import { XsError } from '../protocol/index.js';
import type { DirectoryPart } from './directory-part.js';

/**
 * Transactions with the retry loop every real client writes by hand (spec §9.4: libxl's
 * `libxl__xs_transaction_commit`, the kernel's `again:` pattern, `xenstore_client.c`'s
 * `goto again`). A commit that fails with EAGAIN applied nothing (spec §9.1), so running the
 * whole body again from TRANSACTION_START is always correct — provided the body has no side
 * effects outside the store: collect output in the body and print it after the commit, as
 * `xenstore_client.c` does when it resets `output_pos` before retrying.
 */

/** Retries after the first attempt; then the EAGAIN is rethrown. libxl retries forever,
 * nanos (spec §9.4) a bounded number of times: a bound turns a livelock into an error. */
export const DEFAULT_RETRIES = 16;

export interface TransactionOptions {
  /** Attempts after the first one that may follow an EAGAIN (default 16). */
  retries?: number;
}

/**
 * What a transaction needs of a client: the tree operations, each with the transaction id to carry
 * in its header, and START/END. `XsClient` is one; declared here, not imported, so that the client
 * can offer `transaction()` without the two files importing each other.
 */
export interface TransactionalClient {
  transactionStart(): Promise<number>;
  transactionEnd(id: number, commit: boolean): Promise<void>;
  read(path: string, tx: number): Promise<string>;
  readBytes(path: string, tx: number): Promise<Buffer>;
  write(path: string, value: string | Buffer, tx: number): Promise<void>;
  mkdir(path: string, tx: number): Promise<void>;
  rm(path: string, tx: number): Promise<void>;
  directory(path: string, tx: number): Promise<string[]>;
  directoryPart(path: string, offset: number, tx: number): Promise<DirectoryPart>;
  getPerms(path: string, tx: number): Promise<string[]>;
  setPerms(path: string, perms: readonly string[], tx: number): Promise<void>;
  exists(path: string, tx: number): Promise<boolean>;
}

/**
 * The tree operations of one open transaction: each call carries the transaction id in the
 * request header (spec §9.1). Valid only inside the callback it was given to.
 */
export class TxView {
  constructor(
    private readonly client: TransactionalClient,
    /** The transaction id the daemon assigned (the header's `tx_id`). */
    readonly id: number,
  ) {}

  read(path: string): Promise<string> {
    return this.client.read(path, this.id);
  }
  readBytes(path: string): Promise<Buffer> {
    return this.client.readBytes(path, this.id);
  }
  write(path: string, value: string | Buffer): Promise<void> {
    return this.client.write(path, value, this.id);
  }
  mkdir(path: string): Promise<void> {
    return this.client.mkdir(path, this.id);
  }
  rm(path: string): Promise<void> {
    return this.client.rm(path, this.id);
  }
  directory(path: string): Promise<string[]> {
    return this.client.directory(path, this.id);
  }
  directoryPart(path: string, offset: number): Promise<DirectoryPart> {
    return this.client.directoryPart(path, offset, this.id);
  }
  getPerms(path: string): Promise<string[]> {
    return this.client.getPerms(path, this.id);
  }
  setPerms(path: string, perms: readonly string[]): Promise<void> {
    return this.client.setPerms(path, perms, this.id);
  }
  exists(path: string): Promise<boolean> {
    return this.client.exists(path, this.id);
  }
}

const isEagain = (e: unknown): boolean => e instanceof XsError && e.code === 'EAGAIN';

/**
 * `withTransaction(client, fn, opts)` starts a transaction, runs `fn` with a view bound to it
 * and commits, returning what `fn` returned. On EAGAIN — from the commit, or from any step of
 * `fn` — it starts over, at most `retries` times, then rethrows the EAGAIN. Any other error
 * aborts the transaction (END `F`) and is rethrown.
 */
export async function withTransaction<T>(
  client: TransactionalClient,
  fn: (tx: TxView) => Promise<T>,
  opts: TransactionOptions = {},
): Promise<T> {
  const retries = opts.retries ?? DEFAULT_RETRIES;
  if (!Number.isInteger(retries) || retries < 0) throw new RangeError(`retries must be a non-negative integer, got ${retries}`);
  for (let attempt = 0; ; attempt++) {
    const id = await client.transactionStart();
    let result: T;
    try {
      result = await fn(new TxView(client, id));
    } catch (e) {
      await abort(client, id);
      if (isEagain(e) && attempt < retries) continue;
      throw e;
    }
    try {
      await client.transactionEnd(id, true);
      return result;
    } catch (e) {
      // A failed commit already ended the transaction (spec §9.1): nothing to abort.
      if (isEagain(e) && attempt < retries) continue;
      throw e;
    }
  }
}

/**
 * Ends a transaction without applying it. Its own failure is not reported: the caller is
 * already propagating the error that made it abort, and a transaction that cannot be ended
 * dies with its connection anyway (spec §9.1).
 */
async function abort(client: TransactionalClient, id: number): Promise<void> {
  try {
    await client.transactionEnd(id, false);
  } catch {
    // see above
  }
}
