'use strict';
/**
 * In place of thread-stream in the daemon's bundle (src/bundle/bundle.mjs): pino uses it only for
 * transports (`pino.transport`, a worker thread per destination), which the daemon does not use:
 * it writes its records itself (server/logger.ts). Loading the real one (and `worker_threads`)
 * cost a few ms of every cold start (issue 16). Should a transport ever be asked for, this says so
 * rather than losing the records.
 */
module.exports = class ThreadStream {
  constructor() {
    throw new Error('nxenstored: pino transports are not part of the daemon (thread-stream is left out of the bundle: src/bundle/bundle.mjs)');
  }
};
