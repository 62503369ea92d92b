import type { XsErrorCode } from '../../store/index.js';
import type { RequestId } from './answer.js';
import type { PausableInput } from './connection-input.js';
import { ConnectionOutput } from './connection-output.js';
import type { Lifecycle } from './connection-state.js';
import { DurabilityHold, type HeldKind, type OutputGate } from './durability-hold.js';
import type { FlushScheduler } from './flush-scheduler.js';
import { errorFrame, eventFrame, lostReply, replyFrame } from './frames.js';
import type { Outlet } from './outlet.js';
import type { Transport } from '../transport/index.js';

const FRAMES: HeldKind<Buffer> = { size: (frame) => frame.length, lost: lostReply };

/**
 * A byte stream's outlet: each answer becomes one frame (frames.ts), held for the disk when a
 * commit it may reflect is not durable yet, then queued on the connection's output.
 */
export class FrameOutlet implements Outlet {
  private readonly output: ConnectionOutput;
  private readonly disk: DurabilityHold<Buffer> | undefined;

  constructor(owner: Lifecycle, transport: Transport, input: PausableInput, flushes: FlushScheduler, maxEvents: () => number, gate: OutputGate | undefined) {
    const output = (this.output = new ConnectionOutput(owner, transport, input, flushes, maxEvents));
    this.disk =
      gate === undefined
        ? undefined
        : new DurabilityHold<Buffer>(gate, input, transport, (frame, event) => {
            if (owner.state !== 'open') return;
            if (event) output.queueEvent(frame);
            else output.queue(frame);
          }, FRAMES);
  }

  reply(request: RequestId, payload: Buffer | string): void {
    this.send(replyFrame(request, payload));
  }

  fail(request: RequestId, code: XsErrorCode): void {
    this.send(errorFrame(request, code));
  }

  event(path: string, token: string): boolean {
    const disk = this.disk;
    if (disk !== undefined && disk.holding) return disk.holdForDisk(eventFrame(path, token), true);
    // Decided before the frame is made: an event dropped for a client that does not read costs nothing.
    if (!this.output.admitEvent()) return false;
    this.output.queue(eventFrame(path, token));
    return true;
  }

  raw(bytes: Buffer): void {
    if (bytes.length > 0) this.output.queue(bytes);
  }

  private send(frame: Buffer): void {
    if (this.disk !== undefined && this.disk.holdForDisk(frame, false)) return;
    this.output.queue(frame);
  }

  flush(): void {
    this.output.flush();
  }

  drained(): void {
    this.output.drained();
  }

  get droppedEvents(): number {
    return this.output.droppedEvents;
  }

  set droppedEvents(n: number) {
    this.output.droppedEvents = n;
  }

  get queuedBytes(): number {
    return this.output.queuedBytes;
  }

  get heldBytes(): number {
    return this.disk?.bytes ?? 0;
  }

  get isBacklogged(): boolean {
    return this.output.isBacklogged;
  }
}
