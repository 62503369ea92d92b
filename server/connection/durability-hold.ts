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

/** Answers held for the disk before the connection's input is paused (cf. `outstanding`). */
const HELD_MAX = 1024;

interface Held<T> {
  readonly gen: number;
  readonly item: T;
  readonly bytes: number;
  readonly event: boolean;
}

/** How a hold handles what it holds: frames (a socket client) or answers (a gateway session). */
export interface HeldKind<T> {
  /** Its size, for `bytes` (what the connection holds, against its domain's memory). */
  size(item: T): number;
  /** What a held reply becomes when its commits are lost (answer.ts `lostAnswer`, frames.ts `lostReply`). */
  lost(item: T, code: XsErrorCode): T;
}

/**
 * A connection's output held until the journal says it is durable: a reply or event sent while a
 * commit is not yet durable may reflect it, so it waits, in order, behind that commit; so does
 * anything sent after it, so that this connection's output never overtakes itself (spec §1.2).
 */
export class DurabilityHold<T> {
  private held: Held<T>[] = [];
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
    /** Sends a released item on, past this hold. */
    private readonly deliver: (item: T, event: boolean) => void,
    private readonly kind: HeldKind<T>,
  ) {}

  /** True while what is sent now would be held: a commit is not yet durable, or items wait already. */
  get holding(): boolean {
    return this.held.length > 0 || this.gate.pending() !== undefined;
  }

  /** `holdForDisk(item, event)` keeps the item (true) when a commit is not yet durable or items wait already; false: send it now. */
  holdForDisk(item: T, event: boolean): boolean {
    const gate = this.gate;
    const gen = gate.pending();
    if (gen === undefined && this.held.length === 0) return false;
    const bytes = this.kind.size(item);
    this.held.push({ gen: gen ?? gate.durable, item, bytes, event });
    this.heldBytes += bytes;
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

  /** Sends on, in order, everything whose commit is now durable; after a loss, all of it. */
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
    for (const h of ready) this.heldBytes -= h.bytes;
    for (const h of ready) this.deliver(!h.event && lost !== undefined && h.gen > durable ? this.kind.lost(h.item, lost) : h.item, h.event);
    if (this.pausedInput && this.held.length < HELD_MAX) {
      this.pausedInput = false;
      // Still paused if the socket itself is full: its 'drain' resumes input then.
      if (this.input.paused && !this.transport.writableNeedDrain) this.input.resume();
    }
  }
}
