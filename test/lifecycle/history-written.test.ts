import { afterEach, describe, expect, it, vi } from 'vitest';
import { Op } from '../../protocol/index.js';
import { HistoryRing } from '../../store/history-ring.js';
import { answered, daemonWithClient, replies, turn, write } from '../helpers/kept-daemon.js';

/**
 * The daemon writes each commit's history record as it installs the commit (issue 14), a
 * pipelined input's as well as a lone request's, and a record that cannot be written costs the
 * window, not the daemon nor the commit.
 */

describe("history's records in the daemon", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('are in the window as their commits are answered, a pipelined turn of them too', async () => {
    const { daemon, client } = daemonWithClient();
    const h = daemon.history!;
    client.emit('data', Buffer.concat(['/a', '/b', '/c'].map((p, i) => write(p, 'made', i + 1))));
    await answered(client, 3);
    expect(h.size).toBe(3);
    // One pipelined input: twenty values rewritten, taken in a turn (or a few: slices).
    client.emit('data', Buffer.concat(Array.from({ length: 20 }, (_, i) => write(['/a', '/b', '/c'][i % 3]!, `v${i}`, 10 + i))));
    await answered(client, 23);
    expect(h.all().map((r) => r.generation)).toEqual(Array.from({ length: 23 }, (_, i) => i + 1));
    expect(h.recordAt(23)!.changes).toEqual([expect.objectContaining({ path: '/b', kind: 'changed', old: 'v16', new: 'v19' })]);
  });

  it('cost the window, not the daemon, when they cannot be written', async () => {
    const { daemon, client, logged } = daemonWithClient();
    const h = daemon.history!;
    client.emit('data', write('/a', 'made', 1));
    await answered(client, 1);
    const end = HistoryRing.prototype.end;
    let calls = 0;
    // From the third record on none can be written, whichever turns the five writes are taken in.
    vi.spyOn(HistoryRing.prototype, 'end').mockImplementation(function (this: HistoryRing, time: number) {
      if (++calls >= 3) throw new RangeError('Array buffer allocation failed');
      return end.call(this, time);
    });
    client.emit('data', Buffer.concat(Array.from({ length: 5 }, (_, i) => write('/a', `v${i}`, 10 + i))));
    await answered(client, 6);
    await turn();
    vi.restoreAllMocks();
    expect(logged.join('')).toMatch(/history: records could not be written/);
    // Every write was answered, the store has them all, and history goes on from the latest.
    expect(replies(client).every((type) => type === Op.WRITE)).toBe(true);
    expect(daemon.store.generation).toBe(6);
    expect(h.size).toBe(0);
    expect(h.oldest().generation).toBe(6);
    client.emit('data', write('/a', 'after', 20));
    await answered(client, 7);
    expect(h.all().map((r) => r.generation)).toEqual([7]);
  });
});
