import type { XsErrorCode } from '../../store/index.js';
import type { PausableInput } from './connection-input.js';
import type { Transport } from '../transport/index.js';

/**
 * Persistence's output barrier (server/persistence/journal.ts): while commits are not yet durable,
 * `pending()` is the newest generation, and output sent now waits until `after` calls back.
 */
export interface OutputGate {
  pending(): number | undefined;
  readonly durable: number;
  /**
   * `release()` once `generation` is durable; `release(code)` when it never will be (the log
   * failed, and the store went back to `durable`): output held since is answered with `code`.
   */
  after(generation: number, release: (lost?: XsErrorCode) => void): void;
}

/** Frames held for the disk before the connection's input is paused (cf. `outstanding`). */
const HELD_MAX = 1024;

interface Held {
  readonly gen: number;
  readonly frame: Buffer;
  readonly event: boolean;
}

/**
 * A connection's output held until the journal says it is durable: a reply or event sent while a
 * commit is not yet durable may reflect it, so it waits, in order, behind that commit; so does
 * anything sent after it, so that this connection's output never overtakes itself (spec §1.2).
 */
export class DurabilityHold {
  private held: Held[] = [];
  private heldBytes = 0;
  private waitingFor = -1;
  /** Input paused because too much output waits for the disk (see `holdForDisk`). */
  private pausedInput = false;
  /** Bound once: the gate calls it back for every generation waited for. */
  private readonly onDurable = (lost?: XsErrorCode): void => this.release(lost);

  constructor(
    private readonly gate: OutputGate,
    private readonly input: PausableInput,
    private readonly transport: Pick<Transport, 'writableNeedDrain'>,
    /** Sends a released frame on, past this hold. */
    private readonly deliver: (frame: Buffer, event: boolean) => void,
    /** What a held reply becomes when its commits are lost (server/dispatch/frames.ts `lostReply`). */
    private readonly lostReply: (frame: Buffer, code: XsErrorCode) => Buffer,
  ) {}

  /** `holdForDisk(frame, event)` keeps the frame (true) when a commit is not yet durable or frames wait already; false: send it now. */
  holdForDisk(frame: Buffer, event: boolean): boolean {
    const gate = this.gate;
    const gen = gate.pending();
    if (gen === undefined && this.held.length === 0) return false;
    this.held.push({ gen: gen ?? gate.durable, frame, event });
    this.heldBytes += frame.length;
    if (gen !== undefined && gen > this.waitingFor) {
      this.waitingFor = gen;
      gate.after(gen, this.onDurable);
    }
    // A client pipelining faster than the disk syncs stops being read, as one whose socket is
    // full does (xb.ml `can_input`): held output cannot grow without bound.
    if (this.held.length >= HELD_MAX && !this.input.paused) {
      this.pausedInput = true;
      this.input.pause();
    }
    return true;
  }

  /** Bytes held for the disk. */
  get bytes(): number {
    return this.heldBytes;
  }

  /** Sends on, in order, every frame whose commit is now durable; after a loss, all of them. */
  private release(lost?: XsErrorCode): void {
    const durable = this.gate.durable;
    let n = 0;
    // After a loss nothing is pending any more: everything held goes, the lost part as errors.
    if (lost !== undefined) {
      n = this.held.length;
      this.waitingFor = -1;
    }
    while (n < this.held.length && this.held[n]!.gen <= durable) n++;
    const ready = this.held.splice(0, n);
    for (const h of ready) this.heldBytes -= h.frame.length;
    for (const h of ready) this.deliver(!h.event && lost !== undefined && h.gen > durable ? this.lostReply(h.frame, lost) : h.frame, h.event);
    if (this.pausedInput && this.held.length < HELD_MAX) {
      this.pausedInput = false;
      // Still paused if the socket itself is full: its 'drain' resumes input then.
      if (this.input.paused && !this.transport.writableNeedDrain) this.input.resume();
    }
  }
}
