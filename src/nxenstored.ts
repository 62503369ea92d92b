#!/usr/bin/env node
/**
 * nxenstored: the xenstore daemon. Wiring only: options, store, listeners, signals.
 */
import { chooseRundir, createLogger, Daemon, listen, prepareRundir, Quotas } from '../server/index.js';
import { parseOptions, USAGE } from './options.js';

async function main(): Promise<void> {
  let config;
  try {
    config = parseOptions(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`nxenstored: ${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (config === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const log = createLogger(config.logFormat, config.logLevel);
  const rundir = chooseRundir(config.rundir);
  prepareRundir(rundir);
  const daemon = new Daemon({
    rundir,
    log,
    quotas: new Quotas(config.limits),
    accessLog: config.accessLog, fairness: config.fairness,
    turnIdleMs: config.turnIdleMs,
  });
  const listeners = await listen(daemon, rundir);
  log.info({ rundir, socket: listeners.socket, socket_ro: listeners.socketRo, pid: process.pid }, 'ready');
  log.info(`clients: export XENSTORED_PATH=${listeners.socket}`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    daemon.shutdown();
    void listeners.close().then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((e: unknown) => {
  process.stderr.write(`nxenstored: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
