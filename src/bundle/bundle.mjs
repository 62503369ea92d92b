/**
 * `npm run bundle`: the daemon's executable and its chunks (dist/src), one esbuild pass over
 * src/nxenstored.ts (issue 16: one file to load rather than a package's thirty; see
 * store/imm-map.ts and server/logger.ts). Packages the daemon loads only on request (the gateway's
 * fastify, ws, zod) and the native addon stay outside the bundle.
 *
 * Three modules pino pulls in at start-up are replaced by small files of ours (shims/),
 * because loading them cost ~5-10 ms of every cold start's CPU on Node 22 and 24 while the
 * daemon never uses them: thread-stream (pino's transports, run in a worker thread: the daemon
 * writes its records itself, server/logger.ts) with the `worker_threads` it loads, the
 * `worker_threads` pino's tools.js reads `isMainThread` from, and sonic-boom's `assert`. pino
 * itself is unchanged, and so is every byte it writes.
 *
 * What a cold start does not need before its first reply is not evaluated, or not loaded, then
 * (issue 16): pino is evaluated when the log is first written (`pinoLoaderPlugin`); built-ins
 * are read without Node's ES facades (`builtinPlugin`); of immutable only what `Map` needs is
 * bundled (`immutablePlugin`); and the output is ASCII (`ascii`).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';

const root = join(import.meta.dirname, '..', '..');
const shims = join(import.meta.dirname, 'shims');

for (const d of ['dist/src/chunks', 'dist/.compile-cache']) rmSync(join(root, d), { recursive: true, force: true });

/** `[module asked for, the package asking (its folder under node_modules), our file]`. */
const REPLACED = [
  ['thread-stream', 'pino', 'thread-stream.cjs'],
  ['worker_threads', 'pino', 'worker-threads.cjs'],
  ['assert', 'sonic-boom', 'assert.cjs'],
];

/** Replaces exactly those imports, and fails the build if one is no longer there to replace. */
const shimPlugin = {
  name: 'nxs-shims',
  setup(b) {
    const used = new Set();
    for (const [request, pkg, file] of REPLACED) {
      const filter = new RegExp(`^${request}$`);
      b.onResolve({ filter }, (args) => {
        if (!args.importer.includes(`/node_modules/${pkg}/`)) return undefined;
        used.add(file);
        return { path: join(shims, file) };
      });
    }
    b.onEnd((result) => {
      if (result.errors.length > 0) return;
      const missing = REPLACED.filter(([, , f]) => !used.has(f));
      if (missing.length > 0) throw new Error(`bundle: nothing asked for ${missing.map(([r, p]) => `${r} (from ${p})`).join(', ')}: check src/bundle/bundle.mjs against the packages`);
    });
  },
};

/**
 * Node's built-ins taken with `process.getBuiltinModule` rather than `import`: for an imported
 * built-in Node builds an ES facade that reads every export once, and node:fs's exports include
 * getters that load what they name (`promises` loads fs/promises and with it readline, fs.Dir and
 * the watchers; `ReadStream`, `Utf8Stream` theirs): ~2.5 ms of a cold start's CPU on Node 24
 * spent on modules the daemon does not use before its first reply (issue 16). Each built-in our
 * code imports becomes a module of ours that reads only the exports asked for (esbuild drops the
 * others: each is a pure read), the same values an import would give. Accessors are not offered
 * (an import of one fails the build) and neither are exports this Node lacks.
 */
const BUILTIN = /^node:/;
const builtinPlugin = {
  name: 'nxs-builtins',
  setup(b) {
    b.onResolve({ filter: BUILTIN }, (args) => {
      if (args.kind !== 'import-statement' || args.importer.includes('/node_modules/')) return undefined;
      return { path: args.path, namespace: 'nxs-builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'nxs-builtin' }, (args) => {
      const mod = process.getBuiltinModule(args.path);
      const names = Object.keys(mod).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== 'default' && 'value' in Object.getOwnPropertyDescriptor(mod, k));
      const lines = [`const m = process.getBuiltinModule(${JSON.stringify(args.path)});`, 'export default m;'];
      for (const k of names) lines.push(`export const ${k} = /* @__PURE__ */ (() => m.${k})();`);
      return { contents: lines.join('\n'), loader: 'js' };
    });
  },
};

/**
 * immutable ships one CommonJS (UMD) file for `require` and an ES module for bundlers. The store
 * takes one value from it, `Map` (store/imm-map.ts, a default import, because Node cannot list
 * the UMD file's names for the unbundled build); here that import is given the ES module instead,
 * from which esbuild keeps what `Map` needs: evaluating it costs a start ~1.5 ms less than the
 * whole UMD file (issue 16, Node 24). Any other file of ours importing immutable fails the build.
 */
const immutablePlugin = {
  name: 'nxs-immutable',
  setup(b) {
    b.onResolve({ filter: /^immutable$/ }, (args) => {
      if (args.importer.includes('/node_modules/') || args.namespace === 'nxs-immutable') return undefined;
      if (!/[\\/]store[\\/]imm-map\.ts$/.test(args.importer)) throw new Error(`bundle: ${args.importer} imports immutable: take ImmMap from store/imm-map.ts`);
      return { path: 'immutable', namespace: 'nxs-immutable' };
    });
    b.onLoad({ filter: /.*/, namespace: 'nxs-immutable' }, async () => {
      const dir = join(root, 'node_modules', 'immutable');
      const { module: esm } = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
      if (typeof esm !== 'string') throw new Error('bundle: immutable no longer names its ES module in package.json');
      return { contents: `import { Map } from ${JSON.stringify(join(dir, esm))};\nexport default { Map };\n`, loader: 'js', resolveDir: root };
    });
  },
};

/**
 * server/pino-loader.ts loads pino with Node's `require` when the log is first written; in the
 * bundle its body becomes a plain `require('pino')`, which esbuild bundles as a call of the
 * bundled pino where it stands: pino stays in the daemon's chunk, evaluated only when called
 * (issue 16). The build fails if the file no longer has the function this replaces. (pino in a
 * file of its own, not even read before it is needed, measured no faster: 0.5-2 ms, in the noise.)
 */
const pinoLoaderPlugin = {
  name: 'nxs-pino-loader',
  setup(b) {
    b.onLoad({ filter: /[\\/]server[\\/]pino-loader\.ts$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!/export function loadPino\(\)/.test(source)) throw new Error(`bundle: ${args.path} no longer exports loadPino(): check src/bundle/bundle.mjs`);
      return { contents: "export function loadPino() {\n  return require('pino');\n}\n", loader: 'js' };
    });
  },
};

/**
 * A JavaScript file with a single character outside ASCII is decoded by Node's ES loader as
 * UTF-8 into a two-byte string: ~16 ms of a cold start's CPU on Node 24 for the three chunks a
 * start loads, against well under a millisecond for the same bytes in ASCII (issue 16, measured
 * with `--cpu-prof`: `decodeUTF8` under the loader's `stringify`). esbuild already escapes such
 * characters in strings, identifiers and regular expressions (its default `charset`), but copies
 * the comments it keeps (the `§` of a spec reference, an em dash) as they are. They are
 * rewritten here in ASCII. Only whole comment lines may hold them: anything else fails the build,
 * since a character in code cannot be rewritten without changing what the code means.
 */
const SPELLED = { '§': 'S', '—': '--', '–': '-', '−': '-', '…': '...', '·': '.', '×': 'x', '⇒': '=>', '→': '->', 'µ': 'u', '≤': '<=', '≥': '>=' };
/** Exponents and indices as runs: 2²⁴ is 2^24, entry₁ is entry_1. */
const DIGITS = [
  [/[⁰¹²³⁴⁵⁶⁷⁸⁹]+/gu, '^', '⁰¹²³⁴⁵⁶⁷⁸⁹'],
  [/[₀₁₂₃₄₅₆₇₈₉]+/gu, '_', '₀₁₂₃₄₅₆₇₈₉'],
];
const COMMENT_LINE = /^\s*(\/\/|\/\*|\*)/;
function ascii(file, text) {
  if (!/[^\x00-\x7f]/.test(text)) return text;
  return text
    .split('\n')
    .map((line, i) => {
      if (!/[^\x00-\x7f]/.test(line)) return line;
      if (!COMMENT_LINE.test(line)) throw new Error(`bundle: ${file}:${i + 1}: a character outside ASCII in code, not in a comment: ${line.trim().slice(0, 80)}`);
      for (const [run, mark, digits] of DIGITS) line = line.replace(run, (r) => mark + [...r].map((c) => digits.indexOf(c)).join(''));
      return line.replace(/[^\x00-\x7f]/gu, (c) => SPELLED[c] ?? `\\u{${c.codePointAt(0).toString(16)}}`);
    })
    .join('\n');
}

const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/nxenstored.ts'],
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['fastify', '@fastify/*', 'ws', 'zod', 'unix-dgram'],
  // The CommonJS code bundled (pino) calls `require`; an ES module has none of its own.
  banner: { js: "import { createRequire as __nxsRequireFrom } from 'node:module'; const require = __nxsRequireFrom(import.meta.url);" },
  sourcemap: true,
  outdir: 'dist/src',
  chunkNames: 'chunks/[name]-[hash]',
  logLevel: 'warning',
  // An import esbuild cannot find is undefined at run time: a build error instead (a built-in
  // export this Node lacks, see builtinPlugin).
  logOverride: { 'import-is-undefined': 'error' },
  plugins: [shimPlugin, pinoLoaderPlugin, builtinPlugin, immutablePlugin],
  write: false,
});
for (const out of result.outputFiles) {
  mkdirSync(dirname(out.path), { recursive: true });
  writeFileSync(out.path, out.path.endsWith('.js') ? ascii(out.path, out.text) : out.contents);
}
