import { expect } from 'vitest';
import { XsNode } from '../../store/node.js';

/**
 * Two trie nodes are equal when their value, permissions and children are: `domains` (node.ts) is
 * a derived summary that may over-approximate after removals, so a tree rebuilt from a snapshot or
 * a log can carry fewer stale bits than the live tree it equals. Tests compare trees by content.
 */
expect.addEqualityTesters([
  function xsNodeEquality(this: { equals(a: unknown, b: unknown, testers?: unknown[]): boolean }, a: unknown, b: unknown, testers: unknown[]) {
    if (!(a instanceof XsNode) || !(b instanceof XsNode)) return undefined;
    return a.value === b.value && this.equals(a.perms, b.perms, testers) && this.equals(a.children, b.children, testers);
  },
]);
