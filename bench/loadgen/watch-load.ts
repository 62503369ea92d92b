import { Op } from '../../protocol/index.js';
import { frame, LoadConnection, type ReplySink } from './load-connection.js';
import type { Recorder } from './result.js';

export const WATCH_DIR = '/bench/watch';
const WINDOW = 4; // writes whose events may be outstanding at once

/**
 * Watch fan-out: `watchers` connections hold `perConn` watches each on one subtree; one writer
 * changes a node below it, and every write fires one event per watch. The writer keeps at most
 * WINDOW writes whose events have not all arrived, so the daemon is measured delivering events,
 * not queueing (or dropping) them. The figure is events delivered per second; the latency is from
 * a write's request to the last of its events.
 */
export class WatchLoad {
  private readonly sinks: WatcherSink[] = [];
  private writer!: WriterSink;
  events = 0;

  constructor(
    private readonly rec: Recorder,
    readonly watches: number,
  ) {}

  async setUp(path: string, conns: readonly LoadConnection[], writerConn: LoadConnection): Promise<void> {
    const perConn = Math.ceil(this.watches / conns.length);
    let left = this.watches;
    const initial: Promise<void>[] = [];
    for (const [c, conn] of conns.entries()) {
      const n = Math.min(perConn, left);
      left -= n;
      const sink = new WatcherSink(this, n);
      this.sinks.push(sink);
      conn.setSink(sink);
      for (let j = 0; j < n; j++) conn.queue(frame(Op.WATCH, `${WATCH_DIR}\0w${c}-${j}\0`), j + 1, 0);
      conn.flush();
      initial.push(sink.ready);
    }
    // Every daemon fires one event per new watch (spec §8.1); they are not part of the figure.
    await Promise.race([Promise.all(initial), new Promise((r) => setTimeout(r, 5000))]);
    this.events = 0;
    this.writer = new WriterSink(this, writerConn, path);
  }

  start(): void {
    this.writer.pump();
  }

  stop(): Promise<void> {
    this.writer.stopping = true;
    return new Promise((r) => setTimeout(r, 200));
  }

  /** Called by watchers per event. */
  delivered(): void {
    this.events++;
    if (this.rec.recording) this.rec.ops++;
    this.writer?.progress();
  }

  get recorder(): Recorder {
    return this.rec;
  }
}

class WatcherSink implements ReplySink {
  private initialLeft: number;
  private resolveReady!: () => void;
  readonly ready = new Promise<void>((r) => (this.resolveReady = r));

  constructor(
    private readonly load: WatchLoad,
    n: number,
  ) {
    this.initialLeft = n;
    if (n === 0) this.resolveReady();
  }

  reply(_c: LoadConnection, type: number, _reqId: number, _txId: number, payload: Buffer): void {
    if (type === Op.WATCH_EVENT) {
      if (this.initialLeft > 0) {
        if (--this.initialLeft === 0) this.resolveReady();
        return;
      }
      this.load.delivered();
    } else if (type === Op.ERROR) {
      this.load.recorder.error(`WATCH: ${payload.toString('latin1')}`);
    }
  }
}

class WriterSink implements ReplySink {
  stopping = false;
  private sent = 0;
  private readonly sentAt: number[] = [];
  private readonly frames: Buffer[];
  private lastProgress = performance.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly load: WatchLoad,
    private readonly conn: LoadConnection,
    path: string,
  ) {
    conn.setSink(this);
    this.frames = [frame(Op.WRITE, `${path}\0aaaaaaaaaaaaaaaa`), frame(Op.WRITE, `${path}\0bbbbbbbbbbbbbbbb`)];
    // A daemon that drops events must not stall the run: after 1 s without progress, treat the
    // outstanding writes as done (the events that did arrive still count).
    this.timer = setInterval(() => {
      if (this.stopping) return clearInterval(this.timer);
      if (performance.now() - this.lastProgress > 1000) {
        this.load.events = this.sent * this.load.watches;
        this.sentAt.length = 0;
        this.lastProgress = performance.now();
        this.pump();
      }
    }, 250);
  }

  reply(_c: LoadConnection, type: number, _reqId: number, _txId: number, payload: Buffer): void {
    if (type === Op.ERROR) this.load.recorder.error(`WRITE: ${payload.toString('latin1')}`);
  }

  /** Events arrived: complete the writes whose events are all in, and send more. */
  progress(): void {
    this.lastProgress = performance.now();
    const done = Math.floor(this.load.events / this.load.watches);
    const completedBefore = this.sent - this.sentAt.length;
    if (done > completedBefore) {
      const rec = this.load.recorder;
      const now = performance.now();
      for (let i = completedBefore; i < done && this.sentAt.length > 0; i++) {
        const t = this.sentAt.shift()!;
        if (rec.recording) rec.latency.record((now - t) * 1000);
      }
      this.pump();
    }
  }

  pump(): void {
    if (this.stopping) return;
    while (this.sentAt.length < WINDOW) {
      this.conn.queue(this.frames[this.sent & 1]!, this.sent + 1, 0);
      this.sentAt.push(performance.now());
      this.sent++;
    }
    this.conn.flush();
  }
}
