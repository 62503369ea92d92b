import { describe, expect, it } from 'vitest';
import { XsError } from '../protocol/index.js';
import { DOM0 } from './caller.js';
import { checkStore } from './check.js';
import { fromNodeList, toNodeList } from './node-list.js';
import { execute } from './operations.js';
import { DEFAULT_LIMITS } from './limits.js';
import { parsePerms } from './perms.js';
import { advance, createStore } from './store.js';

const P = (...s: string[]) => parsePerms(s);

describe('node lists (Xen migration stream order)', () => {
  it('round-trips a store: parents first, values, permissions, counts', () => {
    let s = createStore();
    for (const [path, value] of [['/a/b', 'x'], ['/a/c', '\0\xff'], ['/local/domain/5/d', 'y']] as const) {
      s = advance(execute(s, DOM0, DEFAULT_LIMITS, { op: 'write', path, value }).store, s);
    }
    s = advance(execute(s, DOM0, DEFAULT_LIMITS, { op: 'set-perms', path: '/local/domain/5', perms: ['n5', 'r6'] }).store, s);
    const list = [...toNodeList(s)];
    expect(list[0]!.path).toBe('/');
    const seen = new Set<string>();
    for (const n of list) {
      if (n.path !== '/') expect(seen.has(n.path.slice(0, n.path.lastIndexOf('/')) || '/')).toBe(true);
      seen.add(n.path);
    }
    const back = fromNodeList(list, { '@releaseDomain': P('n0', 'r5') });
    expect([...toNodeList(back)]).toEqual(list);
    expect(back.quota).toEqual(s.quota);
    expect(back.special['@releaseDomain']).toEqual(P('n0', 'r5'));
    expect(back.special['@introduceDomain']).toEqual(P('n0'));
    expect(checkStore(back)).toEqual([]);
  });

  it('refuses a node before its parent, a bad path, no permissions', () => {
    const code = (f: () => unknown) => {
      try {
        f();
        return 'none';
      } catch (e) {
        return e instanceof XsError ? `${e.code} ${e.message}` : String(e);
      }
    };
    expect(code(() => fromNodeList([{ path: '/a/b', value: '', perms: P('n0') }]))).toBe('EINVAL node /a/b comes before its parent');
    expect(code(() => fromNodeList([{ path: 'a', value: '', perms: P('n0') }]))).toMatch(/^EINVAL bad node path/);
    expect(code(() => fromNodeList([{ path: '/a//b', value: '', perms: P('n0') }]))).toMatch(/^EINVAL bad node path/);
    expect(code(() => fromNodeList([{ path: '/a', value: '', perms: [] }]))).toBe('EINVAL node /a has no permissions');
  });

  it('builds a 1000-level path without recursion', () => {
    const list = [{ path: '/', value: '', perms: P('n0') }];
    let p = '';
    for (let i = 0; i < 1000; i++) list.push({ path: (p += '/a'), value: String(i), perms: P('n0') });
    expect([...toNodeList(fromNodeList(list))].length).toBe(1001);
  });
});
