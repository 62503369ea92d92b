'use strict';
/**
 * In place of `worker_threads` for pino's lib/tools.js in the daemon's bundle (src/bundle/bundle.mjs),
 * which reads only `isMainThread` (to register an exit flush for asynchronous destinations). The
 * bundle is the daemon's executable, run as a process's main thread: it starts no worker, and is
 * never loaded into one. Loading the real module cost ~1.5-2 ms of every cold start (issue 16).
 */
module.exports = { isMainThread: true };
