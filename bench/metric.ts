import * as os from 'node:os';

/**
 * One measured figure with the context it was taken in (after nats.js bench's `Metric`): a figure
 * without the date, the runtime, the CPU and the command line that produced it cannot be compared
 * with another one. `toJSON` is the machine-readable line the benchmarks print.
 */
export interface RunContext {
  readonly date: string;
  readonly node: string;
  readonly v8: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly platform: string;
  readonly command: string;
}

export function runContext(): RunContext {
  const cpus = os.cpus();
  const script = process.env['npm_lifecycle_event'];
  const argv = process.argv.map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ');
  const command = script === undefined ? argv : `npm run ${script}  (${argv} ${process.execArgv.join(' ')})`;
  return {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    command,
  };
}

export class Metric {
  constructor(
    /** What was measured, e.g. `read`. */
    readonly name: string,
    /** The column: store size in nodes, or another parameter (`k=10`). */
    readonly column: string,
    readonly unit: string,
    /** The reported figure (the median of `samples` for rates). */
    readonly value: number,
    /** Every round's figure, for the spread. */
    readonly samples: readonly number[],
    /** Anything that qualifies the figure: a failed path check, a relaxed op count. */
    readonly note = '',
  ) {}

  /** Relative spread of the rounds, (max - min) / median. */
  get spread(): number {
    if (this.samples.length < 2 || this.value === 0) return 0;
    return (Math.max(...this.samples) - Math.min(...this.samples)) / this.value;
  }

  toJSON(ctx: RunContext): Record<string, unknown> {
    return {
      bench: 'store',
      metric: this.name,
      column: this.column,
      unit: this.unit,
      value: this.value,
      samples: this.samples,
      note: this.note || undefined,
      date: ctx.date,
      node: ctx.node,
      cpu: ctx.cpu,
    };
  }
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** `fmt(x)`: a figure with about three significant digits and thousands separators. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 100) return Math.round(x).toLocaleString('en-US');
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(2);
}

/** A GitHub markdown table; the first column is left-aligned, the others right-aligned. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}
