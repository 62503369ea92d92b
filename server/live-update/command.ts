import { XsError } from '../../store/index.js';

/**
 * The arguments of CONTROL `live-update`, as Xen's `xenstore-control live-update` sends them
 * (xenstore.txt CONTROL; cxenstored `do_control_lu`, the daemon flavour of `lu_arch`):
 *   `-f FILE`      begin a session on this connection with FILE as the next program;
 *   `-c CMDLINE`   the next program's command line (one argument, split at blanks);
 *   `-s [-t SECONDS] [-F] [-v VERSION]`  start: wait up to SECONDS for open transactions, then
 *                  hand over; `-F` goes ahead after the wait anyway (their commits fail: EAGAIN);
 *   `-a`           abort the session.
 * Anything else is EINVAL, as cxenstored answers. Our one extension: `-s` without a session
 * starts one with the running program, so `live-update -s` alone restarts the same code.
 */
export type LiveUpdateCommand =
  | { readonly kind: 'abort' }
  | { readonly kind: 'file'; readonly file: string }
  | { readonly kind: 'cmdline'; readonly cmdline: string }
  | { readonly kind: 'start'; readonly force: boolean; readonly timeoutSeconds: number; readonly version: number };

/** xenstore-control's default wait (`live_update`: `timeout = 60`). */
export const DEFAULT_TIMEOUT_SECONDS = 60;

/** `parseLiveUpdate(args)` reads the arguments after `live-update`; EINVAL when malformed. */
export function parseLiveUpdate(args: readonly string[]): LiveUpdateCommand {
  const [op, ...rest] = args;
  switch (op) {
    case '-a':
      if (rest.length !== 0) break;
      return { kind: 'abort' };
    case '-f':
      if (rest.length !== 1 || rest[0] === '') break;
      return { kind: 'file', file: rest[0]! };
    case '-c':
      if (rest.length !== 1) break;
      return { kind: 'cmdline', cmdline: rest[0]! };
    case '-s': {
      let force = false;
      let timeoutSeconds = DEFAULT_TIMEOUT_SECONDS;
      let version = 1;
      for (let i = 0; i < rest.length; i++) {
        const a = rest[i];
        if (a === '-F') force = true;
        else if ((a === '-t' || a === '-v') && i + 1 < rest.length && /^\d{1,9}$/.test(rest[i + 1]!)) {
          const n = Number(rest[++i]);
          if (a === '-t') timeoutSeconds = n;
          else version = n;
        } else throw new XsError('EINVAL', `live-update -s: unexpected ${JSON.stringify(a)}`);
      }
      return { kind: 'start', force, timeoutSeconds, version };
    }
  }
  throw new XsError('EINVAL', 'live-update -f FILE | -c CMDLINE | -s [-t SECONDS] [-F] | -a');
}
