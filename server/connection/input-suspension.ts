import { restartStreamReading, stopStreamReading, netSocketOf, type Transport } from '../transport/index.js';
import type { PausableInput } from './connection-input.js';

/**
 * Live update's stop of a connection's reading. What Node already read moves into the decoder;
 * what the client sends from then on stays in the kernel's socket buffer, where the next process,
 * which inherits the descriptor, reads it. Only a Unix socket is suspended: a gateway client has
 * no descriptor to hand on. Independent of `PausableInput.paused` (flow control): each undoes only
 * its own stop.
 */
export class InputSuspension {
  private stopped = false;

  constructor(
    private readonly transport: Transport,
    private readonly input: PausableInput,
  ) {}

  /** True from `suspend()` to `unsuspend()`. */
  get suspended(): boolean {
    return this.stopped;
  }

  /** `suspend()` stops reading the socket at its descriptor. */
  suspend(): void {
    const socket = netSocketOf(this.transport);
    if (this.stopped || socket === undefined) return;
    this.stopped = true;
    if (this.transport.suspend !== undefined) {
      // Nothing is buffered above the handle on this path: stopping the handle is all.
      this.transport.suspend();
      return;
    }
    stopStreamReading(socket);
  }

  /** `unsuspend()` undoes `suspend()` (the update failed, or this is the next process). */
  unsuspend(): void {
    const socket = netSocketOf(this.transport);
    if (!this.stopped || socket === undefined) return;
    this.stopped = false;
    if (this.transport.unsuspend !== undefined) {
      this.transport.unsuspend(); // still paused if the input is (its own flag)
      return;
    }
    restartStreamReading(socket);
    if (!this.input.paused) this.transport.resume();
  }
}
