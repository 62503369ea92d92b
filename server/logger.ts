/**
 * pino is CommonJS, bundled into the daemon with the rest of its code (package.json `bundle`;
 * issue 16: one file to load rather than pino's thirty, see store/imm-map.ts).
 */
import { pino, type Logger } from 'pino';

export type LogFormat = 'pretty' | 'json';

/**
 * The daemon's logger: structured JSON with `--log-format json` (for journald or a collector), or
 * one readable line per record on a terminal: `HH:MM:SS.mmm LEVEL message key=value ...`. The
 * readable form is a small writer of ours rather than pino-pretty: a few lines that format pino's
 * own records, with no worker thread or extra dependency in a daemon that must start fast.
 */
export function createLogger(format: LogFormat, level: string, destination: NodeJS.WritableStream = process.stderr): Logger {
  const options = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (format === 'json') return pino(options, pino.destination({ fd: fdOf(destination), sync: true }));
  return pino(options, { write: (line: string) => destination.write(prettyLine(line)) });
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
