import { Transaction, type XsErrorCode } from '../../store/index.js';

/**
 * A transaction that was open when a forced live update (`-F`) went ahead. Its versions stayed in
 * the previous process, so it cannot commit: the id stays valid, requests in it run against the
 * store as handed over (so a client finishing its transaction sees no odd error on the way), and
 * its commit answers EAGAIN, the answer a client already retries on (spec §9.1), as for a conflict.
 */
export class AbortedTransaction extends Transaction {
  override get failed(): XsErrorCode | undefined {
    return 'EAGAIN';
  }
}
