/**
 * The records of a turn's plain writes are written when the turn ends (store/history.ts
 * `settle`); when they cannot be (the host out of memory), the window starts again from the
 * latest version and the daemon says so. Memory that fails every turn must not make that a log
 * line a turn, whoever writes: one line when they first cannot be written, one when they are again.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HistoryRing } from '../../store/history-ring.js';
import { answered, daemonWithClient, write } from '../helpers/kept-daemon.js';

describe("history's records that cannot be written", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('are logged once however many turns fail, and once more when they are written again', async () => {
    const { daemon, client, logged } = daemonWithClient();
    client.emit('data', write('/a', 'made', 1));
    await answered(client, 1);
    const end = HistoryRing.prototype.end;
    const failing = vi.spyOn(HistoryRing.prototype, 'end').mockImplementation(() => {
      throw new RangeError('Array buffer allocation failed');
    });
    // Fifty turns, each a rewrite whose record cannot be written when its turn ends.
    for (let i = 0; i < 50; i++) {
      client.emit('data', write('/a', `v${i}`, 10 + i));
      await answered(client, 2 + i);
    }
    expect(failing).toHaveBeenCalledTimes(50);
    const lines = (re: RegExp): number => logged.join('').split('\n').filter((l) => re.test(l)).length;
    expect(lines(/ERROR.*history: records could not be written/)).toBe(1);
    failing.mockImplementation(function (this: HistoryRing, time: number) {
      return end.call(this, time);
    });
    client.emit('data', write('/a', 'back', 100));
    await answered(client, 52);
    expect(lines(/WARN.*history: records are written again/)).toBe(1);
    expect(logged.join('')).toMatch(/failedTurns.*50|50.*failedTurns/s);
    // And history goes on from there.
    expect(daemon.history!.all().map((r) => r.changes[0]!.new)).toEqual(['back']);
  });
});
