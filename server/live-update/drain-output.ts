import type { Connection } from '../connection/index.js';
import type { Daemon } from '../daemon.js';

const POLL_MS = 5;

/**
 * `drainOutput(daemon, by, busy)` waits, with requests no longer admitted, until every reply the
 * daemon owes is out of its hands before the state is written: each open connection's queued
 * output has reached the kernel, the journal has made the commits they reflect durable (the output
 * gate held them until then), and no connection is `busy`. Resolves to undefined then, or to the
 * connections still stuck at `by` (a client that does not read its replies). Shared by our own
 * live update and the hand-back to cxenstored: a state written earlier would lose those replies.
 */
export async function drainOutput(daemon: Daemon, by: number, busy: (c: Connection) => boolean = () => false): Promise<Connection[] | undefined> {
  for (;;) {
    const durable = daemon.options.journal?.pending() === undefined;
    const stuck = [...daemon.connections].filter((c) => c.state === 'open' && (c.queuedBytes > 0 || c.socket.writableLength > 0 || busy(c)));
    if (durable && stuck.length === 0) return undefined;
    if (Date.now() >= by) return stuck;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
