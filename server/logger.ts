/**
 * pino is CommonJS, bundled into the daemon with the rest of its code (package.json `bundle`;
 * issue 16: one file to load rather than pino's thirty, see store/imm-map.ts), and loaded only
 * when the log is first written (server/pino-loader.ts, `DeferredLog` below).
 */
import type { LogFn, Logger } from 'pino';
import { loadPino } from './pino-loader.js';

export type LogFormat = 'pretty' | 'json';

/** What the daemon logs through: pino's six level methods (a pino `Logger` is one). */
export type Log = Pick<Logger, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'>;

/**
 * The daemon's logger: structured JSON with `--log-format json` (for journald or a collector), or
 * one readable line per record on a terminal: `HH:MM:SS.mmm LEVEL message key=value ...`. The
 * readable form is a small writer of ours rather than pino-pretty: a few lines that format pino's
 * own records, with no worker thread or extra dependency in a daemon that must start fast.
 */
export function createLogger(format: LogFormat, level: string, to?: NodeJS.WritableStream): DeferredLog {
  return new DeferredLog(level, (time) => {
    const { pino } = loadPino();
    // Not a default parameter: `process.stderr` makes its stream when first read (~1 ms).
    const destination = to ?? process.stderr;
    // pino's `stdTimeFunctions.isoTime`, with the time a held record was logged at.
    const options = { level, base: { pid: process.pid }, timestamp: () => `,"time":"${new Date(time()).toISOString()}"` };
    if (format === 'json') return pino(options, pino.destination({ fd: fdOf(destination), sync: true }));
    return pino(options, { write: (line: string) => destination.write(prettyLine(line)) });
  });
}

const LEVEL_VALUES: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };
type Method = keyof Log;

/**
 * A logger that makes its pino logger only when the log is first written: records at or above
 * the level are held (arguments and time) until `load()`, then written in order, each with the
 * time it was logged. The daemon calls `load()` a moment after it is ready, so that a
 * socket-activated start answers its first client before paying for pino (issue 16: only what
 * serving needs is loaded before the first reply). It loads at once, synchronously, for a record
 * at `error` or above (written before the process can exit after it), when `HELD` records wait,
 * and at the process's exit; so a record is lost only with the process (`kill -9`) in that
 * moment. A record below the level costs what it costs pino: a comparison.
 */
export class DeferredLog implements Log {
  /** Records held at most before pino is loaded anyway (bounds memory whatever a client does). */
  static readonly HELD = 256;
  private logger: Logger | undefined;
  private readonly held: [Method, number, unknown[]][] = [];
  private readonly threshold: number;
  private readonly onExit = () => this.load();

  constructor(
    level: string,
    private readonly make: (time: () => number) => Logger,
  ) {
    const threshold = LEVEL_VALUES[level];
    if (threshold === undefined) throw new Error(`unknown log level ${JSON.stringify(level)}`);
    this.threshold = threshold;
    if (threshold !== Infinity) process.once('exit', this.onExit);
  }

  readonly trace = this.method('trace');
  readonly debug = this.method('debug');
  readonly info = this.method('info');
  readonly warn = this.method('warn');
  readonly error = this.method('error');
  readonly fatal = this.method('fatal');

  /** Whether pino is loaded (the held records written). */
  get loaded(): boolean {
    return this.logger !== undefined;
  }

  /** Loads pino now and writes the records held, in order, each with the time it was logged. */
  load(): void {
    if (this.logger !== undefined) return;
    process.removeListener('exit', this.onExit);
    let replaying: number | undefined;
    const logger = this.make(() => replaying ?? Date.now());
    this.logger = logger;
    for (const [method, time, args] of this.held.splice(0)) {
      replaying = time;
      (logger[method] as (...a: unknown[]) => void)(...args);
    }
    replaying = undefined;
  }

  private method(method: Method): LogFn {
    const value = LEVEL_VALUES[method]!;
    return ((...args: unknown[]) => {
      if (value < this.threshold) return;
      const logger = this.logger;
      if (logger !== undefined) return void (logger[method] as (...a: unknown[]) => void)(...args);
      this.held.push([method, Date.now(), args]);
      if (value >= LEVEL_VALUES['error']! || this.held.length >= DeferredLog.HELD) this.load();
    }) as LogFn;
  }
}

function fdOf(stream: NodeJS.WritableStream): number {
  return stream === process.stdout ? 1 : 2;
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

/** `prettyLine(json)` renders one pino record as a line for a human. */
export function prettyLine(json: string): string {
  const rec = JSON.parse(json) as Record<string, unknown>;
  const time = typeof rec['time'] === 'string' ? rec['time'].slice(11, 23) : '';
  const level = LEVELS[rec['level'] as number] ?? String(rec['level']);
  const fields = Object.entries(rec)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return `${time} ${level.padEnd(5)} ${String(rec['msg'] ?? '')}${fields.length ? ' ' + fields.join(' ') : ''}\n`;
}
