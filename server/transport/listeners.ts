import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { listenUnix } from './unix-socket.js';
import { listenAlone } from './node-internals.js';

export interface Listeners {
  readonly socket: string;
  readonly socketRo: string;
  /** The listening servers (live update hands their descriptors to the next process). */
  readonly servers: { readonly socket: Server; readonly socketRo: Server };
  close(): Promise<void>;
}

/**
 * Listening descriptors a process inherited (live update, systemd socket activation), by socket
 * name; a socket without one is created as usual.
 */
export interface InheritedListeners {
  readonly socket?: number | undefined;
  readonly socketRo?: number | undefined;
}

/**
 * What the listeners hand an accepted socket to (the `Daemon`; named by shape, so that transport/
 * does not import the daemon, which imports transport/).
 */
export interface Acceptor {
  accept(socket: Socket, kind: 'socket' | 'socket_ro'): unknown;
  acceptFailed(who: string, e: Error): void;
}

/**
 * `listen(daemon, rundir, inherited?)` opens `<rundir>/socket` (privileged: dom0) and
 * `<rundir>/socket_ro` (read-only, Xen ≤ 4.14 semantics), both mode 0600; or, given inherited
 * descriptors, listens on those and leaves the socket files alone.
 */
export async function listen(daemon: Acceptor, rundir: string, inherited?: InheritedListeners): Promise<Listeners> {
  const socket = join(rundir, 'socket');
  const socketRo = join(rundir, 'socket_ro');
  const rw = createServer((s) => daemon.accept(s, 'socket'));
  const ro = createServer((s) => daemon.accept(s, 'socket_ro'));
  if (inherited?.socket !== undefined) await listenFd(rw, inherited.socket);
  else await listenUnix(rw, socket);
  if (inherited?.socketRo !== undefined) await listenFd(ro, inherited.socketRo);
  else await listenUnix(ro, socketRo);
  // A failed accept (EMFILE) is counted and summarised; unheard, it would end the process.
  rw.on('error', (e) => daemon.acceptFailed('socket', e));
  ro.on('error', (e) => daemon.acceptFailed('socket_ro', e));
  return {
    socket,
    socketRo,
    servers: { socket: rw, socketRo: ro },
    close: async () => {
      await Promise.all([closeServer(rw), closeServer(ro)]);
    },
  };
}

function listenFd(server: Server, fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    listenAlone(server, { fd }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
