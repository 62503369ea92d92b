import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, type Server } from 'node:net';
import { listenAlone } from './node-internals.js';

/**
 * `listenUnix(server, path, mode)` listens on a Unix socket file with the given mode (0600 by
 * default, as cxenstored creates its socket: spec §1.1). A stale socket file left by a crashed
 * daemon is replaced; a live one (something answers on it) is an error, so two daemons never
 * share a run directory.
 */
export async function listenUnix(server: Server, path: string, mode = 0o600): Promise<void> {
  await removeStale(path);
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    listenAlone(server, { path }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  chmodSync(path, mode);
}

async function removeStale(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket`);
  if (await answers(path)) throw new Error(`another daemon is listening on ${path}`);
  unlinkSync(path);
}

/**
 * `answers(path)` is true when something accepts a connection on the Unix socket `path` (a live
 * daemon), false when nothing does (no file, a stale socket file, ...). The probe connection is
 * closed at once.
 */
export function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
