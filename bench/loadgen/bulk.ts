import { Op } from '../../protocol/index.js';
import { LoadConnection, type ReplySink } from './load-connection.js';

/**
 * `bulk(conns, count, frameOf, depth)` sends requests 0..count-1 (`frameOf(i)`) over the given
 * connections, `depth` in flight on each, and resolves with the number of ERROR replies and the
 * first one. The fast, daemon-neutral way to prepare a store (10^6 nodes) through the protocol.
 */
export async function bulk(
  conns: readonly LoadConnection[],
  count: number,
  frameOf: (i: number) => Buffer,
  depth = 64,
): Promise<{ errors: number; first?: string }> {
  const shared = { next: 0, errors: 0, first: undefined as string | undefined };
  await Promise.all(conns.map((c) => new BulkSink(c, shared, count, frameOf, depth).done));
  return shared.first === undefined ? { errors: shared.errors } : { errors: shared.errors, first: shared.first };
}

class BulkSink implements ReplySink {
  private inFlight = 0;
  private resolve!: () => void;
  readonly done = new Promise<void>((r) => (this.resolve = r));

  constructor(
    private readonly conn: LoadConnection,
    private readonly shared: { next: number; errors: number; first: string | undefined },
    private readonly count: number,
    private readonly frameOf: (i: number) => Buffer,
    depth: number,
  ) {
    conn.setSink(this);
    conn.socket.once('close', () => this.resolve());
    for (let i = 0; i < depth; i++) this.issue();
    conn.flush();
    if (this.inFlight === 0) this.resolve();
  }

  reply(_c: LoadConnection, type: number, _r: number, _t: number, payload: Buffer): void {
    this.inFlight--;
    if (type === Op.ERROR) {
      this.shared.errors++;
      this.shared.first ??= payload.toString('latin1');
    }
    this.issue();
    if (this.inFlight === 0) this.resolve();
  }

  private issue(): void {
    if (this.shared.next >= this.count) return;
    const i = this.shared.next++;
    this.conn.queue(this.frameOf(i), i + 1, 0);
    this.inFlight++;
  }
}
