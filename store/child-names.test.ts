import { describe, expect, it } from 'vitest';
import { KEPT_SORTED } from './child-names.js';
import { XsNode } from './node.js';
import type { Perms } from './perms.js';

const perms: Perms = [{ domid: 0, access: 'n' }];
const leaf = (v = ''): XsNode => XsNode.leaf(v, perms);
const sorted = (n: XsNode): string[] => [...n.children.keys()].sort();

/** A deterministic pseudo-random sequence (xorshift32). */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('child names of a large directory follow its writes (issue 18)', () => {
  it('lists every version in byte order, whichever versions were listed, after random adds, removals and rewrites', () => {
    const r = rng(18);
    let dir = leaf();
    const versions: XsNode[] = [];
    // Latin1 names, including bytes above 0x7f: byte order, not locale order.
    const name = (): string => `n${String.fromCharCode(0x20 + Math.floor(r() * 0xdf))}${Math.floor(r() * 3000)}`;
    for (let step = 0; step < 6000; step++) {
      const x = r();
      const keys = dir.children.size;
      if (x < 0.6 || keys === 0) dir = dir.withChild(name(), leaf());
      else if (x < 0.8) dir = dir.withoutChild([...dir.children.keys()][Math.floor(r() * keys)]!);
      else dir = dir.withChild([...dir.children.keys()][Math.floor(r() * keys)]!, leaf(String(step)));
      // List some versions as they are made, and keep others to list later, out of order.
      if (r() < 0.01) expect(dir.childNames()).toEqual(sorted(dir));
      if (r() < 0.01) versions.push(dir);
    }
    expect(dir.children.size).toBeGreaterThan(KEPT_SORTED);
    for (const v of versions.reverse()) expect(v.childNames()).toEqual(sorted(v));
    expect(dir.childNames()).toEqual(sorted(dir));
  });

  it('keeps the same listing when a child is rewritten, and makes a new one when one is added or removed', () => {
    let dir = leaf();
    for (let i = 0; i < KEPT_SORTED + 10; i++) dir = dir.withChild(`c${i}`, leaf());
    const names = dir.childNames();
    const rewritten = dir.withChild('c5', leaf('new value'));
    expect(rewritten).not.toBe(dir);
    expect(rewritten.childNames()).toBe(names);
    const added = dir.withChild('c-new', leaf());
    expect(added.childNames()).toEqual(sorted(added));
    expect(added.childNames()).not.toBe(names);
    const removed = added.withoutChild('c7').withoutChild('c-new');
    expect(removed.childNames()).toEqual(sorted(removed));
    expect(Object.isFrozen(removed.childNames())).toBe(true);
    // The older version's listing is untouched.
    expect(dir.childNames()).toBe(names);
    expect(names).toEqual(sorted(dir));
  });
});
