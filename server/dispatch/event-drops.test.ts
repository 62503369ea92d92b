import { describe, expect, it } from 'vitest';
import type { Logger } from 'pino';
import type { Connection } from '../connection/index.js';
import { EventDrops } from './event-drops.js';

function logger() {
  const lines: { obj: Record<string, unknown>; msg: string }[] = [];
  const log = { warn: (obj: Record<string, unknown>, msg: string) => lines.push({ obj, msg }) } as unknown as Logger;
  return { log, lines };
}

const conn = (id: number) => ({ id, caller: { domid: 7 }, droppedEvents: 0 }) as unknown as Connection;

describe('EventDrops (issue 18)', () => {
  it('logs one line per connection per interval, whatever the number of drops, and counts them all', async () => {
    const { log, lines } = logger();
    const drops = new EventDrops(log, 50);
    const a = conn(1);
    const b = conn(2);
    for (let i = 0; i < 100_000; i++) drops.note(a, '/local/domain/7/w/x', 'watcher is not reading; event dropped');
    drops.note(b, '/x', 'watch event too large for a message; dropped');
    expect(lines).toEqual([]);
    expect(drops.total).toBe(100_001);
    await new Promise((r) => setTimeout(r, 120));
    expect(lines.map((l) => [l.obj['conn'], l.obj['dropped']])).toEqual([
      [1, 100_000],
      [2, 1],
    ]);
    expect(lines[0]!.msg).toBe('watcher is not reading; event dropped: 100000 watch events dropped');
    // A quiet interval logs nothing; the next drop starts a new one.
    await new Promise((r) => setTimeout(r, 120));
    expect(lines).toHaveLength(2);
    drops.note(a, '/p', 'why');
    drops.report();
    expect(lines).toHaveLength(3);
    expect(drops.total).toBe(100_002);
  });
});
