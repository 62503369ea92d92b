import { Op } from '../../protocol/index.js';
import { LoadConnection, type ReplySink } from './load-connection.js';
import type { Recorder } from './result.js';

const RING = 1 << 12; // send times by req_id; must exceed the requests in flight per connection

/**
 * A closed-loop client for the throughput loads (read, write, 70/20/10 mix, and the same on the
 * store-size series): `depth` requests always in flight on one connection; each reply is timed
 * and immediately replaced by the next request of the connection's `cycle` (prebuilt frames,
 * chosen at random up front), so the generator does no per-request allocation.
 */
export class ThroughputClient implements ReplySink {
  private reqId = 0;
  private pos = 0;
  private inFlight = 0;
  private stopping = false;
  private readonly sentAt = new Float64Array(RING);
  private drained: (() => void) | undefined;

  constructor(
    private readonly conn: LoadConnection,
    private readonly cycle: readonly Buffer[],
    private readonly depth: number,
    private readonly rec: Recorder,
  ) {
    if (depth >= RING) throw new RangeError(`depth must be below ${RING}`);
    conn.setSink(this);
  }

  /** Fills the pipeline. */
  start(): void {
    for (let i = 0; i < this.depth; i++) this.issue();
    this.conn.flush();
  }

  /** Stops issuing; resolves once every request in flight is answered (or the socket closes). */
  stop(): Promise<void> {
    this.stopping = true;
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drained = resolve;
      this.conn.socket.once('close', resolve);
    });
  }

  reply(_conn: LoadConnection, type: number, reqId: number, _txId: number, payload: Buffer): void {
    const now = performance.now();
    this.inFlight--;
    const rec = this.rec;
    if (rec.recording) {
      rec.latency.record((now - this.sentAt[reqId & (RING - 1)]!) * 1000);
      rec.ops++;
      if (type === Op.ERROR) rec.error(payload.toString('latin1', 0, payload.length - 1));
    }
    if (!this.stopping) this.issue();
    else if (this.inFlight === 0) this.drained?.();
  }

  private issue(): void {
    const id = this.reqId++;
    const cycle = this.cycle;
    this.conn.queue(cycle[this.pos]!, id, 0);
    this.pos = this.pos + 1 === cycle.length ? 0 : this.pos + 1;
    this.sentAt[id & (RING - 1)] = performance.now();
    this.inFlight++;
  }
}
