/**
 * The Node lines nxenstored runs on: 22 and 24 (the LTS lines), tested in CI; 20 too, past its end
 * of life (April 2026) but still the Node of some hosts, so it starts with a warning and CI runs
 * the suite on it as well. Older lines lack what the code uses (`import.meta.dirname`, the stable
 * `util.parseArgs`), so they are refused here with a message instead of a stack trace later.
 *
 * Imported first by the executables: ES modules evaluate their imports in order, so this check runs
 * before anything else is evaluated. Only the executable imports this file (the daemon asks
 * node-line.ts): the bundled build (package.json `bundle`) then keeps it in the executable's own
 * file, `dist/src/nxenstored.js`, so that `import.meta.dirname` below is `dist/src` there too.
 *
 * Source maps are not turned on here (`NODE_OPTIONS=--enable-source-maps` does): a stack trace
 * from the bundle names `dist/src/chunks/*.js` and our function names, and with maps Node names
 * our `.ts` files. Node 20 and 22 parse every loaded module's map as it loads (a quarter more CPU
 * to start); Node 24 defers the map but still scans each loaded module's whole source for its
 * line lengths (`lineLengths`, ~10 ms of a start, measured): on every line the price is paid at
 * start, not when a trace is formatted (issue 16: cold start within 2x of `node -e 0`).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { compileCacheOnDisk, nodeMajor } from './node-line.js';

// `process.getBuiltinModule` (20.16+, 22.3+) loads a built-in without the ES facade an `import`
// builds, which reads every export (issue 16: node:crypto's cost 5-14 ms of a start); the daemon
// takes several built-ins that way, the first of them to read its options.
if (nodeMajor < 20 || typeof process.getBuiltinModule !== 'function') {
  process.stderr.write(`nxenstored: Node ${process.version} is not supported: run Node 22 or 24 (LTS; 20.16 or later still starts)\n`);
  process.exit(1);
}

/**
 * The V8 compile cache (Node 22.1+; absent on 20, where start-up compiles every module anew):
 * the second and later starts skip most of the compiling. In `<dist>/.compile-cache`, next to the
 * code it caches and writable by whoever installed it, not in the shared temporary directory
 * that is Node's default: the daemon runs as root, and a cache another user could write would be
 * code it runs. `NODE_COMPILE_CACHE` (a directory) overrides; `NODE_DISABLE_COMPILE_CACHE=1` turns
 * it off. A cache that cannot be written is no error: the daemon compiles as without one.
 */
// Taken here, not imported: the bundle's built-ins are read when the code runs (src/bundle), and
// this Node's `module` has functions the Node that built the bundle may lack.
const enableCompileCache = (process.getBuiltinModule('node:module') as { enableCompileCache?: (dir?: string) => unknown }).enableCompileCache;
if (enableCompileCache !== undefined && process.env['NODE_DISABLE_COMPILE_CACHE'] === undefined) {
  const dir = process.env['NODE_COMPILE_CACHE'] ?? join(import.meta.dirname, '..', '.compile-cache');
  try {
    if (writtenBefore(dir)) compileCacheOnDisk();
    enableCompileCache(dir);
  } catch {
    /* start without it */
  }
}

/**
 * Whether a start on this Node has written the cache in `dir` already: Node keeps a folder per
 * Node version and architecture in it (`v24.22.3-x64-<hash>-<uid>`). `npm run build` empties
 * `<dist>/.compile-cache`, so in the default place a written folder is this build's.
 */
function writtenBefore(dir: string): boolean {
  try {
    return readdirSync(dir, { withFileTypes: true }).some(
      (e) => e.isDirectory() && e.name.startsWith(`${process.version}-${process.arch}-`) && readdirSync(join(dir, e.name)).length > 0,
    );
  } catch {
    return false;
  }
}
