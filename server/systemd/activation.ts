/**
 * Socket activation, sd_listen_fds(3)'s convention: when `LISTEN_PID` is our pid, `LISTEN_FDS`
 * descriptors starting at 3 are listening sockets handed to us, and `LISTEN_FDNAMES` (colon-
 * separated, systemd's `FileDescriptorName=`) names them. The variables are removed at once so
 * that no child process believes the descriptors are its own (sd_listen_fds' `unset_environment`).
 *
 * Names: `socket` is the privileged socket, `socket_ro` the read-only one, in any order. Sockets
 * without a name of their own (no `LISTEN_FDNAMES`: libsystemd reports `unknown`; no
 * `FileDescriptorName=`: systemd uses the socket unit's name, `xenstored.socket`; or empty) are
 * taken in order for whichever of the two is still missing, which is what Xen's cxenstored does
 * with its two activated descriptors (first `socket`, then `socket_ro`). Any other descriptor is
 * reported so the caller can say it is unused.
 */
export const SD_LISTEN_FDS_START = 3;

export interface Activation {
  readonly socket: number | undefined;
  readonly socketRo: number | undefined;
  /** Descriptors handed to us that we do not use, with their names. */
  readonly unused: readonly { readonly fd: number; readonly name: string }[];
}


/**
 * `takeActivation(env, pid)` reads and removes the variables; undefined when we were not
 * activated (no variables, or they were meant for another process, e.g. our parent). A malformed
 * `LISTEN_FDS` is an Error: systemd never sends one, so something is wrong with the setup.
 */
export function takeActivation(env: NodeJS.ProcessEnv = process.env, pid = process.pid): Activation | undefined {
  const listenPid = env['LISTEN_PID'];
  const listenFds = env['LISTEN_FDS'];
  const names = env['LISTEN_FDNAMES'];
  delete env['LISTEN_PID'];
  delete env['LISTEN_FDS'];
  delete env['LISTEN_FDNAMES'];
  if (listenPid === undefined || listenFds === undefined) return undefined;
  if (!/^\d+$/.test(listenPid) || Number(listenPid) !== pid) return undefined;
  if (!/^\d+$/.test(listenFds)) throw new Error(`bad LISTEN_FDS ${JSON.stringify(listenFds)}`);
  const count = Number(listenFds);
  const given = names === undefined ? [] : names.split(':');
  let socket: number | undefined;
  let socketRo: number | undefined;
  const unnamed: number[] = [];
  const unused: { fd: number; name: string }[] = [];
  for (let i = 0; i < count; i++) {
    const fd = SD_LISTEN_FDS_START + i;
    const name = given[i] ?? '';
    if (name === 'socket' && socket === undefined) socket = fd;
    else if (name === 'socket_ro' && socketRo === undefined) socketRo = fd;
    else if (isUnnamed(name)) unnamed.push(fd);
    else unused.push({ fd, name });
  }
  for (const fd of unnamed) {
    if (socket === undefined) socket = fd;
    else if (socketRo === undefined) socketRo = fd;
    else unused.push({ fd, name: '' });
  }
  return { socket, socketRo, unused };
}

function isUnnamed(name: string): boolean {
  return name === '' || name === 'unknown' || name.endsWith('.socket');
}
