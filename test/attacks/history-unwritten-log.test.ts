/**
 * History's records are written at their commits; when one cannot be (the host out of memory),
 * the window starts again from the latest version and the daemon says so. Memory that fails every
 * commit must not make that a log line a commit, whoever writes: one line when they first cannot
 * be written, one when they are again. And the commit is answered as it was made: a record that
 * cannot be written never turns a write into an error (it is live already), nor the writes after
 * it.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encodeFrame, Op } from '../../protocol/index.js';
import { HistoryRing } from '../../store/history-ring.js';
import { answered, daemonWithClient, replies, write } from '../helpers/kept-daemon.js';

describe("history's records that cannot be written", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('are logged once however many commits fail, and once more when they are written again', async () => {
    const { daemon, client, logged } = daemonWithClient();
    client.emit('data', write('/a', 'made', 1));
    await answered(client, 1);
    const end = HistoryRing.prototype.end;
    const failing = vi.spyOn(HistoryRing.prototype, 'end').mockImplementation(() => {
      throw new RangeError('Array buffer allocation failed');
    });
    // Fifty turns, each a rewrite whose record cannot be written.
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
    expect(logged.join('')).toMatch(/failures.*50|50.*failures/s);
    // And history goes on from there.
    expect(daemon.history!.all().map((r) => r.changes[0]!.new)).toEqual(['back']);
  });

  it('leave a commit whose record fails answered as made, and the commits after it recorded', async () => {
    const { daemon, client, logged } = daemonWithClient();
    client.emit('data', write('/a', 'made', 1));
    await answered(client, 1);
    vi.spyOn(HistoryRing.prototype, 'end').mockImplementationOnce(() => {
      throw new RangeError('Array buffer allocation failed');
    });
    client.emit('data', encodeFrame(Op.MKDIR, 2, 0, Buffer.from('/b\0', 'latin1')));
    await answered(client, 2);
    client.emit('data', encodeFrame(Op.MKDIR, 3, 0, Buffer.from('/c\0', 'latin1')));
    await answered(client, 3);
    client.emit('data', write('/a', 'after', 4));
    await answered(client, 4);
    expect(replies(client)).toEqual([Op.WRITE, Op.MKDIR, Op.MKDIR, Op.WRITE]);
    expect(daemon.store.root.children.has('b')).toBe(true);
    // The window starts after the commit it could not record.
    expect(daemon.history!.all().map((r) => r.changes[0]!.path)).toEqual(['/c', '/a']);
    expect(daemon.history!.oldest().generation).toBe(2);
    const text = logged.join('');
    expect(text.match(/history: records could not be written/g)).toHaveLength(1);
    expect(text).toMatch(/history: records are written again/);
    expect(text).not.toMatch(/request failed unexpectedly/);
  });
});
