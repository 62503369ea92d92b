import { describe, expect, it } from 'vitest';
import { advance, createStore, DEFAULT_LIMITS, DOM0, execute, guest, type Caller, type Store, type StoreRequest } from '../../store/index.js';
import { deliveries, NO_DELIVERIES, WatchRegistry, type Watcher } from './index.js';

const watcher = (caller: Caller): Watcher => ({ caller });
const watch = (owner: Watcher, path: string, token = 't') => ({ owner, path, canonical: path, token, relative: false });

/** Runs `req` as dom0 and returns the store before, the store after and the changes. */
function change(s: Store, req: StoreRequest, caller: Caller = DOM0) {
  const out = execute(s, caller, DEFAULT_LIMITS, req);
  return { before: s, after: advance(out.store, s), changes: out.changes };
}

describe('deliveries: a change matched against the watches (spec §8.2-8.5)', () => {
  it('allocates nothing when no watch matches', () => {
    const watches = new WatchRegistry<Watcher>();
    watches.add(watch(watcher(DOM0), '/elsewhere'));
    const c = change(createStore(), { op: 'write', path: '/a/b', value: 'x' });
    expect(deliveries(watches, c.changes, c.before, c.after)).toBe(NO_DELIVERIES);
  });

  it('tells the node\'s and its ancestors\' watches the changed path, and on removal the watches below their own', () => {
    const watches = new WatchRegistry<Watcher>();
    const dom0 = watcher(DOM0);
    const s = change(createStore(), { op: 'write', path: '/a/b/c', value: 'x' }).after;
    watches.add(watch(dom0, '/a', 'above'));
    watches.add(watch(dom0, '/a/b/c', 'below'));
    const c = change(s, { op: 'rm', path: '/a/b' });
    expect(deliveries(watches, c.changes, c.before, c.after).map((d) => [d.watch.token, d.path])).toEqual([
      ['above', '/a/b'],
      ['below', '/a/b/c'],
    ]);
  });

  it('tells an unprivileged watcher only of nodes it could read, or whose parent it could read (XSA-115)', () => {
    const watches = new WatchRegistry<Watcher>();
    const guest5 = watcher(guest(5));
    watches.add(watch(guest5, '/', 'root'));
    const c = change(createStore(), { op: 'write', path: '/secret/x', value: 'x' });
    expect(deliveries(watches, c.changes, c.before, c.after)).toEqual([]);
    const mine = change(c.after, { op: 'set-perms', path: '/secret/x', perms: ['n0', 'r5'] });
    expect(deliveries(watches, mine.changes, mine.before, mine.after).map((d) => d.path)).toEqual(['/secret/x']);
  });
});
