#!/usr/bin/env node
/**
 * Where a write's instructions and first-level instruction-cache misses go, by function, JIT code
 * included (issue 14). Valgrind names V8's compiled code only by address; Node's
 * `--perf-basic-prof` writes the names (`/tmp/perf-PID.map`: start, size, name per line), and
 * this joins the two. `bench/history-cost.sh attribute` runs the in-process write load under
 * callgrind at two lengths and calls this with both: the difference, per write, is the steady
 * state's cost without start-up and compiles.
 *
 * The collector's work is shown apart: whether a mark-compact falls between the two lengths
 * differs from build to build, and its marking came to ~2,600 instructions a write in one build
 * and none in the other in the same command (bench/RESULTS.md, "History", eighth pass; the write
 * barrier's slower form while marking runs is counted in its stub's row): in a total it passes
 * for the build's cost.
 *
 *     node dist/bench/callgrind-symbols.js WRITES NAME LO.callgrind LO.map HI.callgrind HI.map [NAME ...]
 *
 * prints each build's totals and its top functions, then each later build's difference from the
 * first by function.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** Instructions and first-level instruction misses (valgrind's `Ir`, `I1mr`). */
export interface Cost {
  ir: number;
  i1: number;
}

interface Span {
  readonly start: number;
  readonly end: number;
  readonly name: string;
}

/** A perf map's spans, sorted by start (a later line for the same start wins: code moved or recompiled there). */
export function parsePerfMap(text: string): Span[] {
  const byStart = new Map<number, Span>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-fA-F]+) ([0-9a-fA-F]+) (.*)$/.exec(line);
    if (m === null) continue;
    const start = parseInt(m[1]!, 16);
    byStart.set(start, { start, end: start + parseInt(m[2]!, 16), name: m[3]! });
  }
  return [...byStart.values()].sort((a, b) => a.start - b.start);
}

function spanAt(spans: readonly Span[], address: number): Span | undefined {
  let lo = 0;
  let hi = spans.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (spans[mid]!.start <= address) lo = mid + 1;
    else hi = mid - 1;
  }
  const s = spans[hi];
  return s !== undefined && address < s.end ? s : undefined;
}

/**
 * A function's name without what differs between two builds of the same code: the checkout's
 * path up to `dist/` and the line and column (`JS:*written file:///tmp/v/dist/store/history.js:132:12`
 * is `JS:*written store/history.js`).
 */
export function symbolKey(name: string): string {
  // Code neither valgrind nor the map names (an address, a copy number): one row, not one per address.
  if (/^0x[0-9a-f]+(?:'\d+)?$/i.test(name)) return '(code without a name)';
  return name.replace(/(?:file:\/\/)?\/\S*?\/dist\//, '').replace(/(\.[cm]?js):\d+:\d+$/, '$1');
}

const GC = /v8::internal::(Scavenge|MarkCompact|Marking|MainMarkingVisitor|ConcurrentMarking|IncrementalMarking|MinorMarkCompact|Sweeper|Evacuat|RememberedSet|SlotSet|BodyDescriptorBase::IteratePointers|HeapObject::SizeFromMap|RootScavengeVisitor)|heap::base::|Scavenger|MarkingBarrier/;

/** Whether a function is the collector's (its share moves with where a collection falls, not with the code measured). */
export function isCollector(name: string): boolean {
  return GC.test(name);
}

/**
 * `attribute(callgrind, spans)`: the costs of a callgrind output file written with
 * `--dump-instr=yes --compress-strings=no --compress-pos=no` by function; code valgrind cannot
 * name (V8's) by the perf map's spans. A `calls=` line's next line is the call's inclusive cost,
 * already counted in the callee, so it is skipped.
 */
export function attribute(callgrind: string, spans: readonly Span[]): Map<string, Cost> {
  const costs = new Map<string, Cost>();
  let positions = 1;
  let ir = -1;
  let i1 = -1;
  let fn = '?';
  let skipNext = false;
  for (const line of callgrind.split('\n')) {
    if (line.startsWith('positions:')) positions = line.split(/\s+/).length - 1;
    else if (line.startsWith('events:')) {
      const events = line.split(/\s+/).slice(1);
      ir = events.indexOf('Ir');
      i1 = events.indexOf('I1mr');
    } else if (line.startsWith('fn=')) fn = line.slice(3).trim();
    else if (line.startsWith('calls=')) skipNext = true;
    else if (line.startsWith('0x')) {
      if (skipNext) {
        skipNext = false;
        continue;
      }
      const parts = line.split(/\s+/);
      const values = parts.slice(positions);
      let name = fn;
      if (/^0x[0-9a-f]+(?:'\d+)?$/i.test(fn) || fn === '???' || fn.includes('unknown')) name = spanAt(spans, parseInt(parts[0]!, 16))?.name ?? fn;
      const key = symbolKey(name);
      const c = costs.get(key) ?? { ir: 0, i1: 0 };
      c.ir += Number(values[ir] ?? 0);
      c.i1 += i1 < 0 ? 0 : Number(values[i1] ?? 0);
      costs.set(key, c);
    } else skipNext = false;
  }
  if (ir < 0) throw new Error('not a callgrind output file (no "events:" line with Ir)');
  return costs;
}

/** `(hi - lo) / writes` per function: the steady state's cost of one write. */
export function perWrite(lo: ReadonlyMap<string, Cost>, hi: ReadonlyMap<string, Cost>, writes: number): Map<string, Cost> {
  const out = new Map<string, Cost>();
  for (const key of new Set([...lo.keys(), ...hi.keys()])) {
    const a = lo.get(key) ?? { ir: 0, i1: 0 };
    const b = hi.get(key) ?? { ir: 0, i1: 0 };
    out.set(key, { ir: (b.ir - a.ir) / writes, i1: (b.i1 - a.i1) / writes });
  }
  return out;
}

/** Totals: all, the collector's, the rest. */
export function totals(costs: ReadonlyMap<string, Cost>): { all: Cost; gc: Cost; rest: Cost } {
  const all = { ir: 0, i1: 0 };
  const gc = { ir: 0, i1: 0 };
  for (const [key, c] of costs) {
    all.ir += c.ir;
    all.i1 += c.i1;
    if (isCollector(key)) {
      gc.ir += c.ir;
      gc.i1 += c.i1;
    }
  }
  return { all, gc, rest: { ir: all.ir - gc.ir, i1: all.i1 - gc.i1 } };
}

function row(c: Cost, name: string): string {
  return `${c.ir.toFixed(1).padStart(9)} ${c.i1.toFixed(2).padStart(8)}  ${name.slice(0, 110)}`;
}

function main(argv: readonly string[]): void {
  const [writesArg, ...rest] = argv;
  const writes = Number(writesArg);
  if (!(Number.isInteger(writes) && writes >= 1) || rest.length === 0 || rest.length % 5 !== 0) {
    throw new Error('usage: callgrind-symbols.js WRITES NAME LO.callgrind LO.map HI.callgrind HI.map [NAME ...]');
  }
  const builds: { name: string; costs: Map<string, Cost> }[] = [];
  for (let k = 0; k < rest.length; k += 5) {
    const [name, loOut, loMap, hiOut, hiMap] = rest.slice(k, k + 5) as [string, string, string, string, string];
    const lo = attribute(readFileSync(loOut, 'utf8'), parsePerfMap(readFileSync(loMap, 'utf8')));
    const hi = attribute(readFileSync(hiOut, 'utf8'), parsePerfMap(readFileSync(hiMap, 'utf8')));
    builds.push({ name, costs: perWrite(lo, hi, writes) });
  }
  for (const { name, costs } of builds) {
    const t = totals(costs);
    console.log(`${name}: per write, instructions / I1 misses: all ${t.all.ir.toFixed(0)} / ${t.all.i1.toFixed(1)}, collector ${t.gc.ir.toFixed(0)} / ${t.gc.i1.toFixed(1)}, the rest ${t.rest.ir.toFixed(0)} / ${t.rest.i1.toFixed(1)}`);
    const top = [...costs].filter(([key]) => !isCollector(key)).sort((a, b) => b[1].ir - a[1].ir).slice(0, 25);
    for (const [key, c] of top) console.log(row(c, key));
  }
  const [first, ...later] = builds;
  for (const b of later) {
    console.log(`${b.name} - ${first!.name}, by function (the collector's apart), largest first:`);
    const keys = new Set([...first!.costs.keys(), ...b.costs.keys()]);
    const diff = [...keys]
      .filter((key) => !isCollector(key))
      .map((key): [string, Cost] => {
        const x = b.costs.get(key) ?? { ir: 0, i1: 0 };
        const y = first!.costs.get(key) ?? { ir: 0, i1: 0 };
        return [key, { ir: x.ir - y.ir, i1: x.i1 - y.i1 }];
      })
      .filter(([, c]) => Math.abs(c.ir) >= 20 || Math.abs(c.i1) >= 1)
      .sort((p, q) => Math.abs(q[1].ir) - Math.abs(p[1].ir));
    for (const [key, c] of diff.slice(0, 40)) console.log(row(c, key));
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    // A tool's refusal (usage, a missing or foreign file) is a line, not a stack.
    process.stderr.write(`callgrind-symbols: ${(e as Error).message}\n`);
    process.exitCode = 2;
  }
}
