import { Map as ImmMap } from 'immutable';
import type { Perms } from './perms.js';

/**
 * One node of the persistent trie. Immutable: every "update" returns a new node, or the same node
 * when nothing changed, so that `===` is a valid "unchanged" test all the way up to the root
 * (the habit of oxenstored's `Node.set_value` and immutable-js's `updateMap`).
 *
 * `value` is a byte string: one UTF-16 code unit per byte, 0..255 (latin1). Xen values may hold
 * any byte including NUL (spec §4); a one-byte JS string costs a fraction of a Buffer per node,
 * compares by value with `===`, and converts to wire bytes with `Buffer.from(v, 'latin1')`.
 */
export type Children = ImmMap<string, XsNode>;

const NO_CHILDREN: Children = ImmMap<string, XsNode>();

export class XsNode {
  constructor(
    readonly value: string,
    readonly perms: Perms,
    readonly children: Children,
  ) {}

  /** `leaf(value, perms)` is a node without children; all such nodes share one empty map. */
  static leaf(value: string, perms: Perms): XsNode {
    return new XsNode(value, perms, NO_CHILDREN);
  }

  /** Same node when the value is unchanged. */
  withValue(value: string): XsNode {
    return value === this.value ? this : new XsNode(value, this.perms, this.children);
  }

  /** Same node when the list is the same object (callers pass shared lists when unchanged). */
  withPerms(perms: Perms): XsNode {
    return perms === this.perms ? this : new XsNode(this.value, perms, this.children);
  }

  /** Same node when `child` is already there, by reference. */
  withChild(name: string, child: XsNode): XsNode {
    const children = this.children.set(name, child);
    return children === this.children ? this : new XsNode(this.value, this.perms, children);
  }

  /** Same node when there is no such child. */
  withoutChild(name: string): XsNode {
    const children = this.children.delete(name);
    return children === this.children ? this : new XsNode(this.value, this.perms, children);
  }

  /**
   * Child names in the order DIRECTORY lists them: sorted by byte value, as oxenstored (Debian's
   * default daemon) does (spec §4.1). An order that is a function of the set, not of history,
   * means merged transactions never have to reconcile two insertion orders.
   */
  childNames(): string[] {
    return [...this.children.keys()].sort(byteOrder);
  }
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
