import { Op } from '../../protocol/index.js';
import { frame, LoadConnection, type ReplySink } from './load-connection.js';
import type { Recorder } from './result.js';

/**
 * One transaction to run: `before` requests outside any transaction (e.g. tearing down the VM that
 * used this slot last time; their errors are ignored), then TRANSACTION_START, `steps` inside it,
 * and TRANSACTION_END T. EAGAIN on the end re-runs START+steps+END, as libxenstore's callers do.
 */
export interface TxScript {
  readonly before: readonly Buffer[];
  readonly steps: readonly Buffer[];
}

const START = frame(Op.TRANSACTION_START, '\0');
const COMMIT = frame(Op.TRANSACTION_END, 'T\0');

const enum Phase {
  Before,
  Start,
  Step,
  End,
}

/**
 * A sequential transaction client (like a toolstack: each request waits for its reply), on its
 * own connection. `next(i)` gives the i-th script it runs. Counts commits, EAGAINs, and the
 * longest run of EAGAINs any one transaction suffered before it committed — or, for a client
 * still failing when the window closes, the run it is in (a starving client must show up).
 */
export class TransactionClient implements ReplySink {
  private phase = Phase.Before;
  private index = 0;
  private script: TxScript;
  private n = 0;
  private txId = 0;
  private reqId = 1;
  private streak = 0;
  private sentAt = 0;
  private txStartedAt = 0;
  private stopping = false;
  private idle: (() => void) | undefined;
  private waiting = false;

  constructor(
    private readonly conn: LoadConnection,
    private readonly next: (i: number) => TxScript,
    private readonly rec: Recorder,
  ) {
    conn.setSink(this);
    this.script = next(0);
  }

  start(): void {
    this.begin();
    this.conn.flush();
  }

  /** Stops after the current request; the current failing streak counts toward the worst. */
  stop(): Promise<void> {
    this.stopping = true;
    this.noteStreak();
    if (!this.waiting) return Promise.resolve();
    return new Promise((resolve) => {
      this.idle = resolve;
      this.conn.socket.once('close', resolve);
    });
  }

  reply(_conn: LoadConnection, type: number, _reqId: number, _txId: number, payload: Buffer): void {
    const now = performance.now();
    this.waiting = false;
    const rec = this.rec;
    if (rec.recording) rec.latency.record((now - this.sentAt) * 1000);
    const failed = type === Op.ERROR;
    if (this.stopping) {
      this.idle?.();
      return;
    }
    switch (this.phase) {
      case Phase.Before:
        this.index++;
        break;
      case Phase.Start:
        if (failed) {
          rec.error(`TRANSACTION_START: ${text(payload)}`);
          this.phase = Phase.Start; // try again
          this.send(START, 0);
          return;
        }
        this.txId = Number(text(payload));
        this.phase = Phase.Step;
        this.index = 0;
        break;
      case Phase.Step:
        if (failed) rec.error(`step ${this.index}: ${text(payload)}`);
        this.index++;
        break;
      case Phase.End:
        if (!failed) {
          if (rec.recording) {
            rec.ops++;
            rec.txLatency.record((now - this.txStartedAt) * 1000);
          }
          this.noteStreak();
          this.streak = 0;
          this.script = this.next(++this.n);
          this.begin();
          return;
        }
        if (text(payload) === 'EAGAIN') {
          if (rec.recording) rec.eagain++;
          this.streak++;
        } else {
          rec.error(`TRANSACTION_END: ${text(payload)}`);
        }
        this.phase = Phase.Start;
        this.send(START, 0);
        return;
    }
    this.advance();
  }

  private begin(): void {
    this.phase = Phase.Before;
    this.index = 0;
    this.txStartedAt = performance.now();
    this.advance();
  }

  private advance(): void {
    const s = this.script;
    if (this.phase === Phase.Before) {
      if (this.index < s.before.length) return this.send(s.before[this.index]!, 0);
      this.phase = Phase.Start;
      this.txStartedAt = performance.now();
      return this.send(START, 0);
    }
    // Phase.Step
    if (this.index < s.steps.length) return this.send(s.steps[this.index]!, this.txId);
    this.phase = Phase.End;
    this.send(COMMIT, this.txId);
  }

  private send(template: Buffer, txId: number): void {
    this.waiting = true;
    this.sentAt = performance.now();
    this.conn.queue(template, this.reqId++, txId);
    if (!this.conn.handling) this.conn.flush();
  }

  private noteStreak(): void {
    if (this.rec.recording || this.stopping) {
      if (this.streak > this.rec.worstRetries) this.rec.worstRetries = this.streak;
    }
  }
}

function text(payload: Buffer): string {
  const end = payload.length > 0 && payload[payload.length - 1] === 0 ? payload.length - 1 : payload.length;
  return payload.toString('latin1', 0, end);
}
