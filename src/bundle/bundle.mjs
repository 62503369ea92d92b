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
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
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

await build({
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
  plugins: [shimPlugin],
});
