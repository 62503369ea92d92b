import { describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import type { XsErrorCode } from '../../store/index.js';
import type { Answer } from './answer.js';
import { AnswerOutlet } from './answer-outlet.js';
import type { OutputGate } from './durability-hold.js';

/** A journal whose durability the test moves by hand. */
class Gate implements OutputGate {
  appended = 0;
  durable = 0;
  private waiters: ((lost?: XsErrorCode) => void)[] = [];
  pending(): number | undefined {
    return this.appended > this.durable ? this.appended : undefined;
  }
  after(_gen: number, release: (lost?: XsErrorCode) => void): void {
    this.waiters.push(release);
  }
  sync(): void {
    this.durable = this.appended;
    for (const w of this.waiters.splice(0)) w();
  }
  lose(code: XsErrorCode): void {
    this.appended = this.durable;
    for (const w of this.waiters.splice(0)) w(code);
  }
}

function setup(gate?: Gate) {
  const got: Answer[] = [];
  const owner = { state: 'open' as 'open' | 'closed' };
  const input = { paused: false, pause() {}, resume() {} };
  const outlet = new AnswerOutlet(owner, { writableNeedDrain: false } as never, input, gate, (a) => got.push(a));
  return { got, owner, outlet };
}

const read = { type: Op.READ, reqId: 1, txId: 0 };
const watch = { type: Op.WATCH, reqId: 2, txId: 0 };

describe('AnswerOutlet', () => {
  it('hands answers over as they are, in order, at once', () => {
    const { got, outlet } = setup();
    outlet.event('/a', 'tok');
    outlet.reply(read, 'value');
    outlet.fail(watch, 'EACCES');
    expect(got).toEqual([
      { kind: 'event', path: '/a', token: 'tok' },
      { kind: 'reply', request: read, payload: 'value' },
      { kind: 'error', request: watch, code: 'EACCES' },
    ]);
  });

  it('holds them until the commit they may reflect is durable, counting their size', () => {
    const gate = new Gate();
    const { got, outlet } = setup(gate);
    gate.appended = 1;
    outlet.reply(read, 'value');
    outlet.event('/a', 'tok');
    expect(got).toEqual([]);
    expect(outlet.heldBytes).toBe(16 + 5 + 16 + 2 + 3 + 2);
    gate.sync();
    expect(got.map((a) => a.kind)).toEqual(['reply', 'event']);
    expect(outlet.heldBytes).toBe(0);
  });

  it('answers a held reply with the error when its commit is lost; watch replies and events stay', () => {
    const gate = new Gate();
    const { got, outlet } = setup(gate);
    gate.appended = 1;
    outlet.reply(read, 'value');
    outlet.reply(watch, 'OK\0');
    outlet.event('/a', 'tok');
    gate.lose('ENOSPC');
    expect(got).toEqual([
      { kind: 'error', request: read, code: 'ENOSPC' },
      { kind: 'reply', request: watch, payload: 'OK\0' },
      { kind: 'event', path: '/a', token: 'tok' },
    ]);
  });

  it('sends nothing held for a connection that closed meanwhile', () => {
    const gate = new Gate();
    const { got, owner, outlet } = setup(gate);
    gate.appended = 1;
    outlet.reply(read, 'value');
    owner.state = 'closed';
    gate.sync();
    expect(got).toEqual([]);
  });
});
