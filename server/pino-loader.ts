/**
 * pino, loaded when the logger first needs it (server/logger.ts) rather than when the daemon's
 * code is: evaluating pino and making its logger cost ~6-10 ms of a cold start's CPU on Node 22
 * and 24, spent before the first reply for lines nobody waits for (issue 16).
 *
 * An ES `import` is evaluated with the module that holds it, so this takes the CommonJS `require`
 * instead. In the bundled daemon (src/bundle/bundle.mjs) this file's body is replaced by
 * `require('pino')`, which esbuild turns into a call of the bundled pino: the same code, bundled
 * as before, only run later. Unbundled (tests, benches), Node's `require` reads
 * `node_modules/pino`.
 */
import { createRequire } from 'node:module';

export function loadPino(): typeof import('pino') {
  return createRequire(import.meta.url)('pino') as typeof import('pino');
}
