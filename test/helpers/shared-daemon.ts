/**
 * `sharedDaemon(opts)`: one daemon for a whole test file, started before its first test with a
 * privileged connection, stopped after its last. The returned object's `d` and `c` are valid
 * inside tests (they are set in `beforeAll`).
 */
import { afterAll, beforeAll } from 'vitest';
import { startDaemon, type DaemonOptions, type RunningDaemon } from './daemon.js';
import type { Wire } from './wire.js';

export interface SharedDaemon {
  /** The daemon. */
  readonly d: RunningDaemon;
  /** A connection to its privileged socket (dom0). */
  readonly c: Wire;
}

export function sharedDaemon(opts: DaemonOptions = {}): SharedDaemon {
  let d: RunningDaemon | undefined;
  let c: Wire | undefined;
  beforeAll(async () => {
    d = await startDaemon(opts);
    c = await d.connect();
  });
  afterAll(async () => {
    await d?.stop();
  });
  return {
    get d() {
      if (d === undefined) throw new Error('sharedDaemon: used outside a test');
      return d;
    },
    get c() {
      if (c === undefined) throw new Error('sharedDaemon: used outside a test');
      return c;
    },
  };
}
