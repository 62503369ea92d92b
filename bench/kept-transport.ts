import { EventEmitter } from 'node:events';
import type { Transport } from '../server/transport/index.js';

/**
 * A client's side of a connection with no socket: what the daemon writes to it is kept in `out`
 * (a turn's replies leave as one buffer), and reading never stops. For driving the real dispatch
 * in one process (`Daemon.attach`): bench/in-process.ts, and tests that need a turn's end.
 */
export class KeptTransport extends EventEmitter implements Transport {
  readonly writableLength = 0;
  readonly writableNeedDrain = false;
  readonly out: Buffer[] = [];
  write(frame: Buffer): boolean {
    this.out.push(frame);
    return true;
  }
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  destroy(): this {
    return this;
  }
}
