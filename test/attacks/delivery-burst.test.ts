/**
 * Issue 18: no request holds the event loop for all the watch events it causes. A commit of
 * 2,000 nodes under two watches causes 4,000 events; the daemon sends 512 in the commit's turn and
 * the rest 512 a turn (server/dispatch/delivery-backlog.ts), and nobody can tell: the committer's
 * reply comes after all its events, and a watcher whose read sees the commit has every event of
 * it before that read's reply (spec §8.8: per connection, output in order).
 */
import { describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { sharedDaemon } from '../helpers/shared-daemon.js';

const shared = sharedDaemon();
const NODES = 2000;

const stat = async (name: string): Promise<number> => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(await shared.c.control('stats'))![1]);

describe('a request causing thousands of watch events (issue 18)', () => {
  it('sends them over several turns, and every connection still sees its events before any later answer', async () => {
    const { d, c } = shared;
    await c.write('/burst/flag', 'old');
    const committer = await d.connect();
    const watcher = await d.connect();
    await committer.watch('/burst', 'mine');
    await watcher.watch('/burst', 'theirs');
    await committer.sync();
    await watcher.sync();
    committer.events().length = 0;
    watcher.events().length = 0;
    const deferredBefore = await stat('events deferred');
    const firstFrame = { committer: committer.received.length, watcher: watcher.received.length };

    const tx = await committer.txStart();
    for (let i = 0; i < NODES; i++) await committer.write(`/burst/n${i}`, 'v', tx);
    await committer.write('/burst/flag', 'new', tx);
    // The watcher reads the flag over and over while the commit's events go out.
    let reading = true;
    const reads: { value: string; at: number }[] = [];
    const reader = (async () => {
      while (reading) {
        const value = await watcher.read('/burst/flag');
        reads.push({ value, at: watcher.received.length });
      }
    })();
    expect(await committer.txEnd(tx, true)).toBe('OK|');
    reading = false;
    await reader;
    // Spread over turns: the backlog took part of them.
    expect((await stat('events deferred')) - deferredBefore).toBeGreaterThan(0);

    // The committer: all its NODES + 1 events (and the transaction's own reply frames before
    // them), then the commit's reply.
    const mine = committer.received.slice(firstFrame.committer);
    const endAt = mine.findIndex((f) => f.header.type === Op.TRANSACTION_END);
    const eventsMine = mine.filter((f) => f.header.type === Op.WATCH_EVENT);
    expect(eventsMine).toHaveLength(NODES + 1);
    expect(mine.slice(endAt + 1).filter((f) => f.header.type === Op.WATCH_EVENT)).toEqual([]);

    // The watcher: every read that saw the commit came after all of the commit's events.
    const seen = reads.filter((r) => r.value === 'new');
    await watcher.sync();
    const frames = watcher.received.slice(firstFrame.watcher);
    expect(frames.filter((f) => f.header.type === Op.WATCH_EVENT)).toHaveLength(NODES + 1);
    for (const r of seen) {
      const before = watcher.received.slice(firstFrame.watcher, r.at).filter((f) => f.header.type === Op.WATCH_EVENT);
      expect(before).toHaveLength(NODES + 1);
    }
    // Events of one change come in the order of the commit's changes, for both watchers.
    const paths = (fs: typeof frames) => fs.filter((f) => f.header.type === Op.WATCH_EVENT).map((f) => f.payload.toString('latin1').split('\0')[0]);
    expect(paths(frames)).toEqual(paths(mine));
    committer.close();
    watcher.close();
  });
});
