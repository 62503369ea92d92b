import { describe, expect, it } from 'vitest';
import { advance, createStore, DEFAULT_LIMITS, DOM0, execute, guest, type Caller, type Store, type StoreRequest } from '../../store/index.js';
import { deliveries, NO_DELIVERIES, specialDeliveries, WatchRegistry, type Watcher } from './index.js';
import { DOM0_ONLY } from '../../store/index.js';

const watcher = (caller: Caller): Watcher => ({ caller });
const watch = (owner: Watcher, path: string, token = 't', depth?: number) => ({ owner, path, canonical: path, token, relative: false, depth });

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

describe('Xen 4.22 watch depth', () => {
  it('a watch hears of nodes at most `depth` levels below it (0: itself); from / level 1 is /x', () => {
    const watches = new WatchRegistry<Watcher>();
    const dom0 = watcher(DOM0);
    watches.add(watch(dom0, '/a', 'd0', 0));
    watches.add(watch(dom0, '/a', 'd1', 1));
    watches.add(watch(dom0, '/', 'r1', 1));
    watches.add(watch(dom0, '/a', 'any'));
    const heard = (path: string) => {
      const c = change(createStore(), { op: 'write', path, value: 'x' });
      return deliveries(watches, c.changes, c.before, c.after).map((d) => d.watch.token).sort();
    };
    expect(heard('/a')).toEqual(['any', 'd0', 'd1', 'r1']);
    expect(heard('/a/b')).toEqual(['any', 'd1']);
    expect(heard('/a/b/c')).toEqual(['any']);
  });

  it('special watches: no depth gets the name, depth >= 1 <name>/<domid>, depth 0 nothing, <name>/<domid> only its domain', () => {
    const watches = new WatchRegistry<Watcher>();
    const dom0 = watcher(DOM0);
    watches.add(watch(dom0, '@releaseDomain', 'plain'));
    watches.add(watch(dom0, '@releaseDomain', 'd0', 0));
    watches.add(watch(dom0, '@releaseDomain', 'd1', 1));
    watches.add(watch(dom0, '@releaseDomain/7', 'only7'));
    const got = (domid: number) => specialDeliveries(watches, '@releaseDomain', domid, DOM0_ONLY).map((d) => `${d.watch.token} ${d.path}`);
    expect(got(7)).toEqual(['plain @releaseDomain', 'd1 @releaseDomain/7', 'only7 @releaseDomain/7']);
    expect(got(8)).toEqual(['plain @releaseDomain', 'd1 @releaseDomain/8']);
    const g = watcher(guest(5));
    const guests = new WatchRegistry<Watcher>();
    guests.add(watch(g, '@releaseDomain/7', 'g'));
    expect(specialDeliveries(guests, '@releaseDomain', 7, DOM0_ONLY)).toEqual([]);
  });
});
