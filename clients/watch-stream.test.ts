import { describe, expect, it } from 'vitest';
import { WatchStream } from './watch-stream.js';

const ev = (path: string) => ({ path, token: 't' });

function stream(maxQueue?: number) {
  const calls = { unwatch: 0 };
  const s = new WatchStream('/w', 't', async () => void calls.unwatch++, maxQueue);
  return { s, calls };
}

describe('WatchStream', () => {
  it('hands a waiting consumer the next event directly', async () => {
    const { s } = stream();
    const next = s.next();
    s.push(ev('/w/1'));
    expect(await next).toEqual({ done: false, value: ev('/w/1') });
    expect(s.pending).toBe(0);
  });

  it('queues up to maxQueue events and then drops the oldest, counting them', async () => {
    const { s } = stream(2);
    for (const p of ['/1', '/2', '/3', '/4']) s.push(ev(p));
    expect(s.dropped).toBe(2);
    expect(s.pending).toBe(2);
    expect((await s.next()).value).toEqual(ev('/3'));
    expect((await s.next()).value).toEqual(ev('/4'));
  });

  it('delivers queued events before the end, then done', async () => {
    const { s } = stream();
    s.push(ev('/1'));
    s.end();
    s.push(ev('/ignored'));
    expect((await s.next()).value).toEqual(ev('/1'));
    expect(await s.next()).toEqual({ done: true, value: undefined });
  });

  it('delivers queued events before an error, then rejects every waiter with it', async () => {
    const { s } = stream();
    const boom = new Error('gone');
    s.push(ev('/1'));
    s.end(boom);
    expect((await s.next()).value).toEqual(ev('/1'));
    await expect(s.next()).rejects.toBe(boom);
    const { s: s2 } = stream();
    const waiting = [s2.next(), s2.next()];
    s2.end(boom);
    for (const w of waiting) await expect(w).rejects.toBe(boom);
  });

  it('close() unwatches once and ends the stream; a stream that already ended does not unwatch', async () => {
    const { s, calls } = stream();
    const waiting = s.next();
    await Promise.all([s.close(), s.close()]);
    expect(calls.unwatch).toBe(1);
    expect(await waiting).toEqual({ done: true, value: undefined });
    const { s: ended, calls: c2 } = stream();
    ended.end();
    await ended.close();
    expect(c2.unwatch).toBe(0);
  });

  it('breaking out of for-await closes it', async () => {
    const { s, calls } = stream();
    s.push(ev('/1'));
    s.push(ev('/2'));
    const seen = [];
    for await (const e of s) {
      seen.push(e.path);
      break;
    }
    expect(seen).toEqual(['/1']);
    expect(calls.unwatch).toBe(1);
    expect(s.done).toBe(true);
  });

  it('rejects a queue bound below 1', () => {
    expect(() => new WatchStream('/w', 't', async () => {}, 0)).toThrow(RangeError);
  });
});
