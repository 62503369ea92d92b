/**
 * The import graph of the checkout's own TypeScript, read from the sources (not the build): every
 * `import`/`export ... from` (type-only ones too: a type cycle is the same coupling), and every
 * `import('...')` with a literal specifier. Edges to our own files are resolved to repository paths
 * (`server/daemon.ts`); bare specifiers (`zod`, `node:fs`) are kept as they are. Test files are
 * left out: they may import across layers to check them.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** `import ... from '...'`, `export ... from '...'`, `import '...'`; group 1 is `type ` if type-only. */
const STATIC = /\b(?:import|export)\s+(type\s+)?(?:[^'";]*?\bfrom\s*)?['"]([^'"]+)['"]/g;
/** `import('...')`, loaded when called: a runtime edge all the same. */
const DYNAMIC = /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;

export interface Edge {
  /** A repository path of ours (`server/daemon.ts`), or a bare specifier as written (`zod`). */
  readonly target: string;
  /** `import type` / `export type`: coupling, but nothing is loaded at run time. */
  readonly typeOnly: boolean;
  /** `import('...')`: loaded when the code that calls it runs, not when its file loads. */
  readonly dynamic?: boolean;
}

export interface ImportGraph {
  readonly edges: ReadonlyMap<string, readonly Edge[]>;
}

function sources(root: string, dir: string, out: string[]): string[] {
  for (const name of readdirSync(join(root, dir))) {
    const rel = join(dir, name);
    if (statSync(join(root, rel)).isDirectory()) sources(root, rel, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Strips comments, so that an example in a doc comment is not taken for an import. */
export function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

/** `importGraph(root, folders)` reads every non-test `.ts` file under the folders. */
export function importGraph(root: string, folders: readonly string[]): ImportGraph {
  const edges = new Map<string, Edge[]>();
  for (const folder of folders) {
    for (const file of sources(root, folder, [])) {
      const text = code(readFileSync(join(root, file), 'utf8'));
      const found: [string, boolean, boolean][] = [
        ...[...text.matchAll(STATIC)].map((m): [string, boolean, boolean] => [m[2]!, m[1] !== undefined, false]),
        ...[...text.matchAll(DYNAMIC)].map((m): [string, boolean, boolean] => [m[1]!, false, true]),
      ];
      edges.set(
        file,
        found.map(([spec, typeOnly, dynamic]) => {
          if (!spec.startsWith('.')) return dynamic ? { target: spec, typeOnly, dynamic } : { target: spec, typeOnly };
          // The sources import their siblings by the built name (`./x.js`); the file is `./x.ts`.
          const ts = join(dirname(file), spec).replace(/\.js$/, '.ts');
          if (!existsSync(join(root, ts))) throw new Error(`${file}: import '${spec}' does not resolve to ${ts}`);
          return dynamic ? { target: ts, typeOnly, dynamic } : { target: ts, typeOnly };
        }),
      );
    }
  }
  return { edges };
}

/** `cycles(graph)` is every strongly connected set of files larger than one (Tarjan). */
export function cycles(graph: ImportGraph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const { target: w } of graph.edges.get(v) ?? []) {
      if (!graph.edges.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.edges.get(v) ?? []).some((e) => e.target === v)) found.push(scc.sort());
    }
  };
  for (const v of graph.edges.keys()) if (!index.has(v)) visit(v);
  return found;
}

/**
 * `reaches(graph, from)` is every bare specifier (a package) that loading `from` loads at run time
 * (type-only edges load nothing), with one chain of files that leads to it (for the message).
 * With `eager`, only what loading `from` loads before any of its code runs: `import('...')` edges
 * are not followed.
 */
export function reaches(graph: ImportGraph, from: string, eager = false): Map<string, string[]> {
  const packages = new Map<string, string[]>();
  const seen = new Set<string>([from]);
  const queue: [string, string[]][] = [[from, [from]]];
  while (queue.length > 0) {
    const [file, chain] = queue.shift()!;
    for (const { target: t, typeOnly, dynamic } of graph.edges.get(file) ?? []) {
      if (typeOnly || (eager && dynamic === true)) continue;
      if (graph.edges.has(t)) {
        if (!seen.has(t)) {
          seen.add(t);
          queue.push([t, [...chain, t]]);
        }
      } else if (!packages.has(t)) packages.set(t, chain);
    }
  }
  return packages;
}
