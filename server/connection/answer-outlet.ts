import type { XsErrorCode } from '../../store/index.js';
import { answerBytes, lostAnswer, type Answer, type AnswerReceiver, type RequestId } from './answer.js';
import type { PausableInput } from './connection-input.js';
import type { Lifecycle } from './connection-state.js';
import { DurabilityHold, type HeldKind, type OutputGate } from './durability-hold.js';
import type { Outlet } from './outlet.js';
import type { Transport } from '../transport/index.js';

const ANSWERS: HeldKind<Answer> = { size: answerBytes, lost: lostAnswer };

/**
 * A gateway session's outlet: answers go to the session as they are, at once, in order (no byte
 * stream, so nothing to batch or to flush), after waiting for the disk as a socket client's
 * frames do: an HTTP 200 for a write is an acknowledgement too.
 */
export class AnswerOutlet implements Outlet {
  droppedEvents = 0;
  readonly queuedBytes = 0;
  readonly isBacklogged = false;

  /** A gateway session was never another daemon's connection: it has no bytes to carry over. */
  raw(): void {
    throw new Error('a gateway session has no byte stream');
  }
  private readonly disk: DurabilityHold<Answer> | undefined;

  constructor(
    owner: Lifecycle,
    transport: Transport,
    input: PausableInput,
    gate: OutputGate | undefined,
    private readonly receive: AnswerReceiver,
  ) {
    this.disk =
      gate === undefined
        ? undefined
        : new DurabilityHold<Answer>(gate, input, transport, (answer) => {
            if (owner.state === 'open') receive(answer);
          }, ANSWERS);
  }

  reply(request: RequestId, payload: Buffer | string): void {
    this.send({ kind: 'reply', request, payload }, false);
  }

  fail(request: RequestId, code: XsErrorCode): void {
    this.send({ kind: 'error', request, code }, false);
  }

  event(path: string, token: string): boolean {
    this.send({ kind: 'event', path, token }, true);
    return true;
  }

  private send(answer: Answer, event: boolean): void {
    if (this.disk !== undefined && this.disk.holdForDisk(answer, event)) return;
    this.receive(answer);
  }

  flush(): void {}

  drained(): void {}

  get heldBytes(): number {
    return this.disk?.bytes ?? 0;
  }
}
