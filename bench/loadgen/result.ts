import { Histogram } from './histogram.js';

/** What one load run against one daemon measured; printed as one JSON line by `main.ts`. */
export interface LoadResult {
  readonly load: string;
  readonly label: string;
  readonly seconds: number;
  /** Completed operations in the window: requests, commits (transaction loads) or events (watch). */
  readonly ops: number;
  readonly opsPerSec: number;
  /** Request latency, microseconds (watch: write-to-last-event). */
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  /** Replies that were ERROR, other than EAGAIN. */
  readonly errors: number;
  readonly eagain: number;
  /** EAGAIN / (commits + EAGAIN) for transaction loads; 0 elsewhere. */
  readonly eagainRate: number;
  /** Most EAGAINs any one transaction saw before committing (or still failing at the end). */
  readonly worstRetries: number;
  /** Transaction latency from start to successful commit, retries included. */
  readonly txP50Us?: number;
  readonly txP99Us?: number;
  readonly firstError?: string;
}

/**
 * Counters of one run. Nothing counts until `open()` (the warm-up is discarded) and nothing after
 * `close()`, so every daemon is measured over the same window.
 */
export class Recorder {
  readonly latency = new Histogram();
  readonly txLatency = new Histogram();
  ops = 0;
  errors = 0;
  eagain = 0;
  worstRetries = 0;
  firstError: string | undefined;
  private openedAt = 0;
  private closedAt = 0;
  recording = false;

  open(): void {
    this.recording = true;
    this.openedAt = performance.now();
  }

  close(): void {
    if (!this.recording) return;
    this.recording = false;
    this.closedAt = performance.now();
  }

  error(what: string): void {
    if (!this.recording) return;
    this.errors++;
    this.firstError ??= what;
  }

  result(load: string, label: string, transactional: boolean): LoadResult {
    const seconds = (this.closedAt - this.openedAt) / 1000;
    const tx = transactional && this.txLatency.count > 0;
    return {
      load,
      label,
      seconds: round(seconds, 3),
      ops: this.ops,
      opsPerSec: round(this.ops / seconds, 1),
      p50Us: this.latency.percentile(50),
      p99Us: this.latency.percentile(99),
      maxUs: this.latency.max,
      errors: this.errors,
      eagain: this.eagain,
      eagainRate: transactional && this.ops + this.eagain > 0 ? round(this.eagain / (this.ops + this.eagain), 4) : 0,
      worstRetries: this.worstRetries,
      ...(tx ? { txP50Us: this.txLatency.percentile(50), txP99Us: this.txLatency.percentile(99) } : {}),
      ...(this.firstError !== undefined ? { firstError: this.firstError } : {}),
    };
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
