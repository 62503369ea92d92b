/**
 * The Node lines nxenstored runs on: 22 and 24 (the LTS lines), tested in CI; 20 too, past its end
 * of life (April 2026) but still the Node of some hosts, so it starts with a warning and CI runs
 * the suite on it as well. Older lines lack what the code uses (`import.meta.dirname`, the stable
 * `util.parseArgs`), so they are refused here with a message instead of a stack trace later.
 *
 * Imported first by the executables: ES modules evaluate their imports in order, so this check runs
 * before anything else is evaluated.
 */
import * as module from 'node:module';
import { join } from 'node:path';

const major = Number(process.versions.node.split('.')[0]);

if (major < 20) {
  process.stderr.write(`nxenstored: Node ${process.version} is not supported: run Node 22 or 24 (LTS)\n`);
  process.exit(1);
}

/** A line for the log when this Node is past its end of life, else undefined. */
export const runtimeWarning: string | undefined =
  major === 20 ? `Node ${process.version} is past its end of life (April 2026); nxenstored is supported on Node 22 and 24` : undefined;

/**
 * The V8 compile cache (Node 22.1+; absent on 20, where start-up compiles every module anew):
 * the second and later starts skip most of the compiling. In `<dist>/.compile-cache`, next to the
 * code it caches and writable by whoever installed it, not in the shared temporary directory
 * that is Node's default: the daemon runs as root, and a cache another user could write would be
 * code it runs. `NODE_COMPILE_CACHE` (a directory) overrides; `NODE_DISABLE_COMPILE_CACHE=1` turns
 * it off. A cache that cannot be written is no error: the daemon compiles as without one.
 */
const enableCompileCache = (module as { enableCompileCache?: (dir?: string) => unknown }).enableCompileCache;
if (enableCompileCache !== undefined && process.env['NODE_DISABLE_COMPILE_CACHE'] === undefined) {
  try {
    enableCompileCache(process.env['NODE_COMPILE_CACHE'] ?? join(import.meta.dirname, '..', '.compile-cache'));
  } catch {
    /* start without it */
  }
}
