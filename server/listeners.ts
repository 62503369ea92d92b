import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { Daemon } from './daemon.js';
import { listenUnix } from './unix-socket.js';

export interface Listeners {
  readonly socket: string;
  readonly socketRo: string;
  close(): Promise<void>;
}

/**
 * `listen(daemon, rundir)` opens `<rundir>/socket` (privileged: dom0) and `<rundir>/socket_ro`
 * (read-only, Xen ≤ 4.14 semantics), both mode 0600.
 */
export async function listen(daemon: Daemon, rundir: string): Promise<Listeners> {
  const socket = join(rundir, 'socket');
  const socketRo = join(rundir, 'socket_ro');
  const rw = createServer((s) => daemon.accept(s, 'socket'));
  const ro = createServer((s) => daemon.accept(s, 'socket_ro'));
  await listenUnix(rw, socket);
  await listenUnix(ro, socketRo);
  return {
    socket,
    socketRo,
    close: async () => {
      await Promise.all([closeServer(rw), closeServer(ro)]);
    },
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
