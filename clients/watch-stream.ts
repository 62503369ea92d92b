/**
 * One watch registration as an async iterator of its events (model: nats.js
 * `queued_iterator.ts`). XsClient feeds it; the consumer pulls:
 *
 *     const w = await client.watch('/local/domain/5/device');
 *     for await (const { path } of w) { ...re-read state... }   // `break` sends UNWATCH
 *
 * The first event is the one the daemon sends right after registering (spec §8.1), so a
 * consumer can do its initial scan in the same loop as the later ones.
 *
 * Bounded queue: if the consumer falls behind, at most `maxQueue` events are kept and the
 * OLDEST are dropped, counted in `dropped`. Dropping the oldest is safe because an event is
 * only a hint to re-read (spec §8.8: "watches may be triggered spuriously", clients re-read
 * state on every event): the newest events name the latest changes, and one late event
 * still prompts the re-read that the dropped ones would have. A consumer that needs to know
 * it missed paths checks `dropped` and rescans the subtree. The default 1024 is oxenstored's
 * per-watch event limit (`quota-maxwatchevents`, spec §8.8).
 */

export interface WatchEvent {
  /** The path that changed (or the watch path itself: initial event, recursive removal, §8.3). */
  readonly path: string;
  /** The token the watch was registered with. */
  readonly token: string;
}

export const DEFAULT_WATCH_QUEUE = 1024;

interface Waiter {
  resolve(result: IteratorResult<WatchEvent>): void;
  reject(error: Error): void;
}

export class WatchStream implements AsyncIterable<WatchEvent> {
  private readonly queue: WatchEvent[] = [];
  private readonly waiters: Waiter[] = [];
  private droppedEvents = 0;
  private ended = false;
  private failure: Error | undefined = undefined;
  private closing: Promise<void> | undefined = undefined;

  /**
   * @param unwatch called once by `close()`: stops routing events here and sends UNWATCH.
   * @param maxQueue events kept for a slow consumer before the oldest are dropped (≥ 1).
   */
  constructor(
    readonly path: string,
    readonly token: string,
    private readonly unwatch: () => Promise<void>,
    private readonly maxQueue: number = DEFAULT_WATCH_QUEUE,
  ) {
    if (!Number.isInteger(maxQueue) || maxQueue < 1) throw new RangeError(`maxQueue must be a positive integer, got ${maxQueue}`);
  }

  /** Events dropped because the queue was full (oldest first). */
  get dropped(): number {
    return this.droppedEvents;
  }

  /** Events received and not yet taken by the consumer. */
  get pending(): number {
    return this.queue.length;
  }

  /** True once the stream delivers no more new events (closed, unwatched, or connection gone). */
  get done(): boolean {
    return this.ended;
  }

  /** Feeds one event (XsClient only). Ignored after the stream ended. */
  push(event: WatchEvent): void {
    if (this.ended) return;
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      waiter.resolve({ done: false, value: event });
      return;
    }
    if (this.queue.length >= this.maxQueue) {
      this.queue.shift();
      this.droppedEvents++;
    }
    this.queue.push(event);
  }

  /**
   * Ends the stream (XsClient only): the consumer still gets the queued events, then the end —
   * or `error`, when the watch died with its connection rather than by the consumer's choice.
   */
  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = error;
    for (const waiter of this.waiters.splice(0)) {
      if (error === undefined) waiter.resolve({ done: true, value: undefined });
      else waiter.reject(error);
    }
  }

  /**
   * `close()` ends the stream and unregisters the watch (UNWATCH); queued events are still
   * delivered. Idempotent: every call returns the same promise.
   */
  close(): Promise<void> {
    if (this.closing === undefined) {
      const wasEnded = this.ended;
      this.end();
      this.closing = wasEnded ? Promise.resolve() : this.unwatch();
    }
    return this.closing;
  }

  /** The next event; `done` once the stream ended and the queue is drained. */
  next(): Promise<IteratorResult<WatchEvent>> {
    const event = this.queue.shift();
    if (event !== undefined) return Promise.resolve({ done: false, value: event });
    if (this.ended) {
      return this.failure === undefined ? Promise.resolve({ done: true, value: undefined }) : Promise.reject(this.failure);
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Leaving a `for await` loop early (`break`, `return`, a throw) closes the watch. */
  [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }
}
