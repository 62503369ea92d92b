import { dirname, join } from 'node:path';

/**
 * Where the daemon's sockets are (spec §1.1). libxenstore (`xs_lib.c`) takes the socket path
 * from `XENSTORED_PATH`, else `$XENSTORED_RUNDIR/socket`, else the compiled-in run directory.
 * Unlike libxenstore, an empty variable counts as unset: `XENSTORED_PATH= cmd` should not
 * mean "connect to the empty path".
 */

type Env = Readonly<Record<string, string | undefined>>;

/** The run directory when none is given: `/run/xenstored` (`/var/run` links to it). */
export const DEFAULT_RUNDIR = '/run/xenstored';

const set = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);

/** `defaultSocketPath(env)` is `$XENSTORED_PATH`, else `$XENSTORED_RUNDIR/socket`, else `/run/xenstored/socket`. */
export function defaultSocketPath(env: Env): string {
  return set(env.XENSTORED_PATH) ?? join(defaultRundir(env), 'socket');
}

/**
 * `defaultRundir(env)` is `$XENSTORED_RUNDIR`, else the directory of `$XENSTORED_PATH` (so that
 * `--ro` and `--domid` find the sockets next to an explicitly named one), else `/run/xenstored`.
 */
export function defaultRundir(env: Env): string {
  const path = set(env.XENSTORED_PATH);
  return set(env.XENSTORED_RUNDIR) ?? (path === undefined ? DEFAULT_RUNDIR : dirname(path));
}

/** `readOnlySocketPath(rundir)` is `<rundir>/socket_ro` (Xen ≤ 4.14 semantics, spec §1.1). */
export function readOnlySocketPath(rundir: string): string {
  return join(rundir, 'socket_ro');
}

/**
 * `guestSocketPath(rundir, domid)` is `<rundir>/domains/<domid>/socket`: nxenstored opens it
 * after INTRODUCE, and its connections act as unprivileged domain `domid` (the test hook that
 * stands in for a shared ring, spec §1.1, §15).
 */
export function guestSocketPath(rundir: string, domid: number): string {
  return join(rundir, 'domains', String(domid), 'socket');
}
