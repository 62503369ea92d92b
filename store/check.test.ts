import { describe, expect, it } from 'vitest';
import { DOM0, guest } from './caller.js';
import { checkStore } from './check.js';
import { DEFAULT_LIMITS } from './limits.js';
import { execute } from './operations.js';
import { adjust } from './quota.js';
import { advance, createStore, type Store } from './store.js';

const run = (s: Store, req: Parameters<typeof execute>[3], caller = DOM0): Store =>
  advance(execute(s, caller, DEFAULT_LIMITS, req).store, s);

describe('checkStore', () => {
  it('finds nothing wrong in stores built by operations', () => {
    let s = createStore();
    s = run(s, { op: 'write', path: '/local/domain/5/a/b', value: 'x' });
    s = run(s, { op: 'set-perms', path: '/local/domain/5', perms: ['n5'] });
    s = run(s, { op: 'write', path: '/local/domain/5/c', value: 'y' }, guest(5));
    s = run(s, { op: 'rm', path: '/local/domain/5/a' });
    expect(checkStore(s)).toEqual([]);
  });

  it('reports a node count that disagrees with the tree', () => {
    const s = createStore();
    const broken: Store = { ...s, quota: adjust(s.quota, 3, 2) };
    expect(checkStore(broken)).toEqual(['domain 3: quota records 2 nodes, tree has 0']);
    const short: Store = { ...s, quota: adjust(s.quota, 0, -1) };
    expect(checkStore(short)).toEqual(['domain 0: quota records 3 nodes, tree has 4']);
  });
});
