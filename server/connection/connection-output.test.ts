import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { PausableInput } from './connection-input.js';
import { ConnectionOutput } from './connection-output.js';
import type { ConnectionState } from './connection-state.js';
import { FlushScheduler } from './flush-scheduler.js';
import type { Transport } from '../transport/index.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

/** A transport whose kernel takes what `accept` says: `writableLength` is what it refused. */
class Kernel extends EventEmitter implements Transport {
  writes: Buffer[] = [];
  writableLength = 0;
  full = false;
  get writableNeedDrain(): boolean {
    return this.full;
  }
  write(frame: Buffer): boolean {
    this.writes.push(frame);
    if (this.full) this.writableLength += frame.length;
    return !this.full;
  }
  pause(): void {}
  resume(): void {}
  destroy(): void {}
}

function setup(maxEvents = 2) {
  const owner = { state: 'open' as ConnectionState };
  const kernel = new Kernel();
  const input = { paused: false, pauses: 0, pause() { this.paused = true; this.pauses++; }, resume() { this.paused = false; } };
  const output = new ConnectionOutput(owner, kernel, input satisfies PausableInput, new FlushScheduler(), () => maxEvents);
  return { owner, kernel, input, output };
}

const frame = (s: string) => Buffer.from(s, 'latin1');

describe('ConnectionOutput', () => {
  it('sends a turn\'s frames in one write, in order', async () => {
    const { kernel, output } = setup();
    output.queue(frame('a'));
    output.queueEvent(frame('b'));
    output.queue(frame('c'));
    expect(output.queuedBytes).toBe(3);
    expect(kernel.writes).toEqual([]);
    await turn();
    expect(kernel.writes.map((b) => b.toString('latin1'))).toEqual(['abc']);
    expect(output.queuedBytes).toBe(0);
  });

  it('flushes at once past 16 KiB queued', () => {
    const { kernel, output } = setup();
    output.queue(Buffer.alloc(10 * 1024));
    expect(kernel.writes).toHaveLength(0);
    output.queue(Buffer.alloc(6 * 1024));
    expect(kernel.writes).toHaveLength(1);
    expect(kernel.writes[0]!.length).toBe(16 * 1024);
  });

  it('pauses the input, once, when the transport is full', async () => {
    const { kernel, input, output } = setup();
    kernel.full = true;
    output.queue(frame('a'));
    await turn();
    output.queue(frame('b'));
    await turn();
    expect(input.paused).toBe(true);
    expect(input.pauses).toBe(1);
  });

  it('counts and drops events beyond maxEvents once a flush left bytes unsent, until drained', async () => {
    const { kernel, output } = setup(2);
    kernel.full = true;
    expect(output.queueEvent(frame('1'))).toBe(true); // not backlogged yet: never dropped
    await turn();
    expect(output.isBacklogged).toBe(true);
    expect([output.queueEvent(frame('2')), output.queueEvent(frame('3')), output.queueEvent(frame('4'))]).toEqual([true, true, false]);
    expect(output.droppedEvents).toBe(1);
    output.queue(frame('r')); // replies are never dropped
    expect(output.queuedBytes).toBe(3);
    kernel.full = false;
    kernel.writableLength = 0;
    output.drained();
    expect(output.isBacklogged).toBe(false);
    expect([output.queueEvent(frame('5')), output.queueEvent(frame('6')), output.queueEvent(frame('7'))]).toEqual([true, true, true]);
    expect(output.droppedEvents).toBe(1);
    // Behind again: the count starts afresh.
    kernel.full = true;
    await turn();
    expect(output.isBacklogged).toBe(true);
    expect([output.queueEvent(frame('8')), output.queueEvent(frame('9')), output.queueEvent(frame('0'))]).toEqual([true, true, false]);
    expect(output.droppedEvents).toBe(2);
  });

  it('never drops for a client that reads, however many events a turn brings', async () => {
    const { output } = setup(2);
    for (let i = 0; i < 100; i++) expect(output.queueEvent(frame('e'))).toBe(true);
    await turn();
    for (let i = 0; i < 100; i++) expect(output.queueEvent(frame('e'))).toBe(true);
    expect(output.droppedEvents).toBe(0);
  });

  it('writes nothing once the connection is closed', async () => {
    const { owner, kernel, output } = setup();
    output.queue(frame('a'));
    owner.state = 'closed';
    await turn();
    expect(kernel.writes).toEqual([]);
  });
});
