import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { InputSuspension } from './input-suspension.js';
import type { Transport } from '../transport/index.js';

/** A transport that reads below the streams (as SocketTransport), or a gateway's (no socket). */
class Below extends EventEmitter implements Transport {
  readonly writableLength = 0;
  readonly writableNeedDrain = false;
  calls: string[] = [];
  constructor(readonly socket: Socket | undefined) {
    super();
  }
  write(): boolean {
    return true;
  }
  pause(): void {
    this.calls.push('pause');
  }
  resume(): void {
    this.calls.push('resume');
  }
  destroy(): void {}
  suspend(): void {
    this.calls.push('suspend');
  }
  unsuspend(): void {
    this.calls.push('unsuspend');
  }
}

const input = { paused: false, pause() {}, resume() {} };

describe('InputSuspension', () => {
  it('stops a socket once, and undoes only its own stop', () => {
    const t = new Below({} as Socket);
    const s = new InputSuspension(t, input);
    s.unsuspend(); // not suspended: nothing to undo
    s.suspend();
    s.suspend();
    s.unsuspend();
    s.unsuspend();
    expect(t.calls).toEqual(['suspend', 'unsuspend']);
  });

  it('leaves a transport without a socket (a gateway client) alone: it has nothing to hand on', () => {
    const t = new Below(undefined);
    const s = new InputSuspension(t, input);
    s.suspend();
    s.unsuspend();
    expect(t.calls).toEqual([]);
  });
});
