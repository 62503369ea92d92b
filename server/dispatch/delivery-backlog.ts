import type { Connection } from '../connection/index.js';
import type { ConnDelivery } from './outcome.js';

/** The most watch events one request delivers in its own turn; the rest go `DELIVERIES_PER_TURN` a turn. */
export const DELIVERIES_PER_TURN = 512;

/** The deferred events of one request, and who waits for them all to be sent. */
interface Batch {
  left: number;
  done: () => void;
}

interface Waiting {
  readonly items: (ConnDelivery | undefined)[];
  readonly batches: (Batch | undefined)[];
  head: number;
}

/**
 * The watch events of a request that causes many (a commit of many nodes under many watches):
 * `perTurn` are sent at once, the rest at most `perTurn` per turn of the event loop
 * (`setImmediate`, after every other client's pending I/O), so that one request cannot hold the
 * loop for all of them while others wait (issue 18: measure the longest turn under each attack).
 *
 * Nobody can tell: each connection's output stays in order (spec §8.8: FIFO per connection, and
 * a request's events queued before the next request is processed). Once a connection has events
 * waiting here, its later events wait behind them, and anything else sent to it (a reply, an
 * error, WATCH's first event) first sends what waits for it (`before`). So a client sees the events
 * of a change before the reply to any request it makes after the change, as if they had all been
 * sent at once. The requester's reply waits for all of its request's events, and it takes no other
 * request meanwhile (as oxenstored holds a source whose events overflow, §8.8): what waits here is
 * at most one request's events per connection.
 */
export class DeliveryBacklog {
  /** Events sent in a later turn than the request that caused them, since start (CONTROL `stats`). */
  deferred = 0;
  private readonly waiting = new Map<Connection, Waiting>();
  private scheduled = false;
  private readonly run = (): void => this.drain();

  constructor(
    /** Sends one event (or drops it: dispatch/process.ts `deliver`). */
    private readonly deliver: (d: ConnDelivery) => void,
    private readonly perTurn = DELIVERIES_PER_TURN,
  ) {}

  /**
   * `send(events)` sends the first `perTurn` now (to connections with nothing waiting) and the rest
   * in later turns, in order: undefined when all went now, else a promise settled once all are sent.
   */
  send(events: readonly ConnDelivery[]): Promise<void> | undefined {
    let budget = this.perTurn;
    const waiting = this.waiting;
    let batch: Batch | undefined;
    let later: Promise<void> | undefined;
    for (let i = 0; i < events.length; i++) {
      const d = events[i]!;
      let w = waiting.size === 0 ? undefined : waiting.get(d.conn);
      if (w === undefined) {
        if (budget > 0) {
          budget--;
          this.deliver(d);
          continue;
        }
        waiting.set(d.conn, (w = { items: [], batches: [], head: 0 }));
      }
      if (batch === undefined) {
        const b: Batch = (batch = { left: 0, done: () => undefined });
        later = new Promise<void>((resolve) => (b.done = resolve));
      }
      batch.left++;
      w.items.push(d);
      w.batches.push(batch);
      this.deferred++;
    }
    if (waiting.size > 0 && !this.scheduled) {
      // From a request read in the poll phase, one `setImmediate` would send the next share in
      // this same turn's check phase: two hops, so that the next share waits for the next poll.
      this.scheduled = true;
      setImmediate(() => setImmediate(this.run));
    }
    return later;
  }

  /** `before(conn)`: sends now what waits for `conn`, before anything else is sent to it. */
  before(conn: Connection): void {
    if (this.waiting.size === 0) return;
    const w = this.waiting.get(conn);
    if (w === undefined) return;
    this.waiting.delete(conn);
    for (let i = w.head; i < w.items.length; i++) this.sent(w.items[i]!, w.batches[i]!, true);
  }

  /** Events waiting, for every connection. */
  get size(): number {
    let n = 0;
    for (const w of this.waiting.values()) n += w.items.length - w.head;
    return n;
  }

  /** One turn's share: `perTurn` events, connection after connection; the rest at the next turn. */
  private drain(): void {
    this.scheduled = false;
    let budget = this.perTurn;
    for (const [conn, w] of this.waiting) {
      // A connection closed meanwhile takes its events with it (as its socket would have).
      const open = conn.state === 'open';
      const { items, batches } = w;
      while (w.head < items.length && (budget > 0 || !open)) {
        const d = items[w.head]!;
        const b = batches[w.head]!;
        items[w.head] = batches[w.head] = undefined;
        w.head++;
        if (open) budget--;
        this.sent(d, b, open);
      }
      if (w.head === items.length) this.waiting.delete(conn);
      if (budget === 0) break;
    }
    if (this.waiting.size > 0) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  private sent(d: ConnDelivery, b: Batch, deliver: boolean): void {
    if (deliver) this.deliver(d);
    if (--b.left === 0) b.done();
  }
}
