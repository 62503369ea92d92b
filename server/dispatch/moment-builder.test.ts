import { describe, expect, it, vi } from 'vitest';
import { DOM0, DEFAULT_LIMITS, History, advance, createStore, execute, type Store } from '../../store/index.js';
import { historyCommandInTurns } from './handlers/history.js';
import { MomentBuilder } from './moment-builder.js';

/** A history of `n` rewrites of /k (generation g wrote `v<g>`), rebuilt `span` bytes a pass. */
function rewrites(n: number, span: number): History {
  let live: Store = createStore();
  const h = new History(live, { span }, 0);
  for (let i = 1; i <= n; i++) {
    const out = execute(live, DOM0, DEFAULT_LIMITS, { op: 'write', path: '/k', value: `v${i}` });
    const next = advance(out.store, live);
    h.record(live, next, { time: i, who: { domid: 0, connection: 'socket', id: 1 }, requests: [] }, ['/k']);
    live = next;
  }
  return h;
}

/** A pause the test lets go of: each call waits until `release()`. */
function heldPause(): { pause: () => Promise<void>; release: () => void; waiting: () => number } {
  const waiters: (() => void)[] = [];
  return {
    pause: () => new Promise<void>((resolve) => waiters.push(resolve)),
    release: () => waiters.splice(0).forEach((w) => w()),
    waiting: () => waiters.length,
  };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('MomentBuilder', () => {
  it('pauses between passes, and keeps the moment it built', async () => {
    const h = rewrites(50, 1);
    const pause = vi.fn(() => Promise.resolve());
    await new MomentBuilder(pause).build(h, 0);
    // One record a pass: 50 passes, a pause between each two.
    expect(pause).toHaveBeenCalledTimes(49);
    const reads = vi.spyOn(h, 'recordAt');
    expect(h.at(0).root.children.has('k')).toBe(false);
    expect(reads).not.toHaveBeenCalled();
  });

  it('builds one moment at a time, in the order asked', async () => {
    const h = rewrites(20, 1);
    const held = heldPause();
    const b = new MomentBuilder(held.pause);
    const rebuild = vi.spyOn(h, 'rebuild');
    let firstDone = false;
    const first = b.build(h, 0).then(() => (firstDone = true));
    const second = b.build(h, 5);
    await settle();
    expect(rebuild).toHaveBeenCalledTimes(1);
    while (!firstDone) {
      held.release();
      await settle();
    }
    await first;
    // The second starts from the first's moment (0, kept): 5 records redone, a pause between each two.
    expect(rebuild).toHaveBeenCalledTimes(2);
    while (held.waiting() > 0) {
      held.release();
      await settle();
    }
    await second;
    expect(rebuild).toHaveBeenCalledTimes(2);
  });

  it('rejects as at() throws, and goes on with the next', async () => {
    const h = rewrites(5, 1);
    const b = new MomentBuilder(() => Promise.resolve());
    await expect(b.build(h, 9)).rejects.toThrow(/after the latest/);
    await b.build(h, 2);
  });
});

describe('historyCommandInTurns', () => {
  it('builds the moments a command reads first, then answers as historyCommand does', async () => {
    const h = rewrites(30, 1);
    const pause = vi.fn(() => Promise.resolve());
    const port = { history: h, moments: new MomentBuilder(pause) };
    expect(await historyCommandInTurns(port, ['at', '3', 'read', '/k'])).toBe('v3');
    expect(pause).toHaveBeenCalledTimes(26);
    // diff's two moments: 10 redone from 3 (7 records), 20 undone from the live version, 30 (10 records).
    pause.mockClear();
    const d = JSON.parse(await historyCommandInTurns(port, ['diff', '10', '20'])) as { changes: { path: string; old: string; new: string }[] };
    expect(d.changes).toEqual([expect.objectContaining({ path: '/k', old: 'v10', new: 'v20' })]);
    expect(pause).toHaveBeenCalledTimes(6 + 9);
    // What does not parse is refused as before, with nothing built.
    pause.mockClear();
    await expect(historyCommandInTurns(port, ['at', 'yesterday', 'read', '/k'])).rejects.toThrow(/not a generation/);
    await expect(historyCommandInTurns(port, ['at', '1'])).rejects.toThrow(/history at G/);
    expect(pause).not.toHaveBeenCalled();
  });
});
