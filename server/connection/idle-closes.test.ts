import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { IdleCloses } from './idle-closes.js';
import type { Transport } from '../transport/index.js';

class Peer extends EventEmitter {
  readonly writableLength = 0;
  readonly writableNeedDrain = false;
  destroyed = false;
  error: Error | undefined;
  write(): boolean {
    return true;
  }
  pause(): void {}
  resume(): void {}
  destroy(e?: Error): void {
    this.destroyed = true;
    this.error = e;
  }
}

function logger(): { log: Logger; lines: { obj: Record<string, unknown>; msg: string }[] } {
  const lines: { obj: Record<string, unknown>; msg: string }[] = [];
  const log = { warn: (obj: Record<string, unknown>, msg: string) => lines.push({ obj, msg }) } as unknown as Logger;
  return { log, lines };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('IdleCloses (issue 18: 1,000 slow-loris connections timing out together)', () => {
  it('closes at most perTurn connections per turn of the loop, in order, without an Error', async () => {
    const { log } = logger();
    const closes = new IdleCloses(log, 1000, 60_000, 10);
    const peers = Array.from({ length: 25 }, () => new Peer());
    for (const p of peers) closes.close(p as unknown as Transport);
    // Queued and counted: nothing closed in the timer's own callback.
    expect(closes.total).toBe(25);
    expect(peers.filter((p) => p.destroyed)).toHaveLength(0);
    const closedAfter: number[] = [];
    for (let i = 0; i < 4; i++) {
      await turn();
      closedAfter.push(peers.filter((p) => p.destroyed).length);
    }
    expect(closedAfter).toEqual([10, 20, 25, 25]);
    expect(peers.every((p) => p.error === undefined)).toBe(true);
    // Closed in the order they timed out.
    expect(peers.findIndex((p) => !p.destroyed)).toBe(-1);
    closes.report();
  });

  it('logs one line per interval for all the connections it closed, never one per connection', async () => {
    const { log, lines } = logger();
    const closes = new IdleCloses(log, 1000, 50);
    for (let i = 0; i < 100; i++) closes.close(new Peer() as unknown as Transport);
    await new Promise((r) => setTimeout(r, 120));
    expect(lines).toHaveLength(1);
    expect(lines[0]!.obj).toMatchObject({ closed: 100, total: 100, idleMs: 1000 });
    expect(lines[0]!.msg).toMatch(/100 connections closed: a request left half-sent for 1000 ms/);
    // The next interval starts with the next close, and its line counts only its own.
    for (let i = 0; i < 3; i++) closes.close(new Peer() as unknown as Transport);
    await new Promise((r) => setTimeout(r, 120));
    expect(lines).toHaveLength(2);
    expect(lines[1]!.obj).toMatchObject({ closed: 3, total: 103 });
  });
});
