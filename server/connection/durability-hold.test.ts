import { describe, expect, it } from 'vitest';
import type { XsErrorCode } from '../../store/index.js';
import { DurabilityHold, type OutputGate } from './durability-hold.js';

/** A journal whose durability the test moves by hand. */
class Gate implements OutputGate {
  appended = 0;
  durable = 0;
  private waiters: { gen: number; release: (lost?: XsErrorCode) => void }[] = [];
  pending(): number | undefined {
    return this.appended > this.durable ? this.appended : undefined;
  }
  after(gen: number, release: (lost?: XsErrorCode) => void): void {
    this.waiters.push({ gen, release });
  }
  sync(upTo = this.appended): void {
    this.durable = upTo;
    const ready = this.waiters.filter((w) => w.gen <= upTo);
    this.waiters = this.waiters.filter((w) => w.gen > upTo);
    for (const w of ready) w.release();
  }
  /** What the journal does when a batch cannot be written: back to `durable`, everyone told. */
  lose(code: XsErrorCode): void {
    this.appended = this.durable;
    for (const w of this.waiters.splice(0)) w.release(code);
  }
}

function setup() {
  const gate = new Gate();
  const sent: string[] = [];
  const input = { paused: false, resumes: 0, pause() { this.paused = true; }, resume() { this.paused = false; this.resumes++; } };
  const transport = { writableNeedDrain: false };
  const hold = new DurabilityHold<Buffer>(
    gate,
    input,
    transport,
    (frame, event) => sent.push(`${event ? 'event' : 'reply'} ${frame.toString('latin1')}`),
    { size: (frame) => frame.length, lost: (frame, code) => Buffer.from(`${code} for ${frame.toString('latin1')}`, 'latin1') },
  );
  return { gate, sent, input, transport, hold };
}

const frame = (s: string) => Buffer.from(s, 'latin1');

describe('DurabilityHold', () => {
  it('lets output through while every commit is durable', () => {
    const { hold } = setup();
    expect(hold.holdForDisk(frame('a'), false)).toBe(false);
    expect(hold.bytes).toBe(0);
  });

  it('holds output behind a commit not yet durable, and what follows it, then sends it in order', () => {
    const { gate, sent, hold } = setup();
    gate.appended = 1;
    expect(hold.holdForDisk(frame('ack'), false)).toBe(true);
    expect(hold.holdForDisk(frame('ev'), true)).toBe(true);
    gate.appended = 2;
    expect(hold.holdForDisk(frame('r2'), false)).toBe(true);
    expect(hold.bytes).toBe(7);
    gate.sync(1);
    expect(sent).toEqual(['reply ack', 'event ev']);
    expect(hold.bytes).toBe(2);
    // Generation 2 is not durable: nothing overtakes r2, even with nothing pending anew.
    gate.durable = 2;
    expect(hold.holdForDisk(frame('late'), false)).toBe(true);
    gate.sync(2);
    expect(sent).toEqual(['reply ack', 'event ev', 'reply r2', 'reply late']);
    expect(hold.bytes).toBe(0);
    expect(hold.holdForDisk(frame('now'), false)).toBe(false);
  });

  it('sends everything held when its commits are lost: replies of lost commits as the error, events as they are', () => {
    const { gate, sent, hold } = setup();
    gate.appended = 1;
    gate.sync(1);
    gate.appended = 2;
    hold.holdForDisk(frame('r2'), false);
    hold.holdForDisk(frame('ev'), true);
    gate.appended = 3;
    hold.holdForDisk(frame('r3'), false);
    gate.lose('ENOSPC');
    expect(sent).toEqual(['reply ENOSPC for r2', 'event ev', 'reply ENOSPC for r3']);
    expect(hold.bytes).toBe(0);
    // Nothing pending any more: output flows, and a new commit is waited for again.
    expect(hold.holdForDisk(frame('now'), false)).toBe(false);
    gate.appended = 2;
    expect(hold.holdForDisk(frame('r4'), false)).toBe(true);
    gate.sync();
    expect(sent.at(-1)).toBe('reply r4');
  });

  it('pauses the input at 1024 held frames and resumes it once they are sent', () => {
    const { gate, input, hold } = setup();
    gate.appended = 1;
    for (let i = 0; i < 1023; i++) hold.holdForDisk(frame('x'), false);
    expect(input.paused).toBe(false);
    hold.holdForDisk(frame('x'), false);
    expect(input.paused).toBe(true);
    gate.sync();
    expect(input.paused).toBe(false);
    expect(input.resumes).toBe(1);
  });

  it('leaves the input paused when the socket is full too: its drain resumes it', () => {
    const { gate, input, transport, hold } = setup();
    gate.appended = 1;
    for (let i = 0; i < 1024; i++) hold.holdForDisk(frame('x'), false);
    transport.writableNeedDrain = true;
    gate.sync();
    expect(input.paused).toBe(true);
    expect(input.resumes).toBe(0);
  });

  it('does not resume an input it did not pause', () => {
    const { gate, input, hold } = setup();
    input.paused = true; // the socket is full
    gate.appended = 1;
    for (let i = 0; i < 1024; i++) hold.holdForDisk(frame('x'), false);
    gate.sync();
    expect(input.resumes).toBe(0);
  });
});
