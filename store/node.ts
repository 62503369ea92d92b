import { carry, childNames, KEPT_SORTED } from './child-names.js';
import { ImmMap } from './imm-map.js';
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

/**
 * The children of a node decoded from a snapshot and not yet read (snapshot.ts `Subtree`):
 * `read()` builds them. The snapshot encoder copies them from the bytes instead, unread.
 */
export interface Unread {
  /** How many children there are (the encoder writes the count without reading them). */
  readonly count: number;
  read(): Children;
  /**
   * `find(name)`: that one child without reading the others (issue 16: the first READ below a
   * directory of 1,000 children built all of them, 15-20 ms of code V8 had not compiled yet);
   * `null` when there is none; `undefined` when it is not answered alone (`read` them all).
   * The child found is the one `read` then puts in the map: a node keeps its identity.
   */
  find?(name: string): XsNode | null | undefined;
}

const NO_CHILDREN: Children = ImmMap<string, XsNode>();

/**
 * The bits standing for domain `domid` in a node's `domains` summary (a Bloom filter of 31 bits,
 * so it stays a small unboxed integer): two of them, from the domid's two base-31 digits, so that
 * a summary holding one domain says "maybe" for about 1 in 240 others rather than 1 in 31. Dom0
 * has none: it is named almost everywhere and is never released, so its bits would only make
 * every summary say "maybe".
 */
export function domainBit(domid: number): number {
  return domid === 0 ? 0 : (1 << domid % 31) | (1 << Math.floor(domid / 31) % 31);
}

/** The bits of the domains a permission list names (owner and ACL entries). */
export function permsBits(perms: Perms): number {
  let bits = 0;
  for (let i = 0; i < perms.length; i++) bits |= domainBit(perms[i]!.domid);
  return bits;
}

export class XsNode {
  /**
   * A summary of the domains named by any permission list in this subtree: if a domain's
   * `domainBit` is clear, no node below names it. Releasing a domain (domain-cleanup.ts, XSA-322)
   * must find every node that names it; with the summary it skips the subtrees that cannot, instead
   * of walking the whole store. It may over-approximate (a removed child's bits stay until the node
   * is rebuilt), never under-approximate, and updates keep it in O(1): a new child ORs its summary in.
   */
  readonly domains: number;
  /**
   * Bytes of this node's child list as Xen keeps it (each name and its NUL: cxenstored's
   * `childlen`), which counts against the node-size quota (spec §10; `limits.ts` `valueSize`).
   * Kept up to date in O(1) by `withChild` / `withoutChild`.
   */
  readonly childBytes: number;

  /** The children; undefined while they are still in a snapshot's bytes (`later`). */
  private kids: Children | undefined;
  /**
   * For a node decoded from a snapshot with its children not yet read: where they are (issue 16:
   * a start decodes what requests touch, not the whole store). Dropped once read.
   */
  private later: Unread | undefined;

  constructor(
    readonly value: string,
    readonly perms: Perms,
    children: Children,
    domains?: number,
    childBytes?: number,
  ) {
    this.kids = children;
    this.later = undefined;
    if (domains === undefined || childBytes === undefined) {
      // Built whole (snapshot load, a new path): once per node, so a bulk build stays O(nodes).
      let bits = permsBits(perms);
      let bytes = 0;
      for (const [name, child] of children) {
        bits |= child.domains;
        bytes += name.length + 1;
      }
      domains ??= bits;
      childBytes ??= bytes;
    }
    this.domains = domains;
    this.childBytes = childBytes;
  }

  /**
   * `unloaded(value, perms, domains, childBytes, unread)` is a node whose children `unread.read()`
   * builds on first use, once; the summaries a node answers without its children are given. A
   * node is immutable, so reading its children late changes nothing anyone can see but the time.
   */
  static unloaded(value: string, perms: Perms, domains: number, childBytes: number, unread: Unread): XsNode {
    const node = new XsNode(value, perms, NO_CHILDREN, domains, childBytes);
    node.kids = undefined;
    node.later = unread;
    return node;
  }

  get children(): Children {
    return this.kids ?? this.load();
  }

  /** `child(name)`: the child of that name, or undefined; reads one record when it can (`Unread.find`). */
  child(name: string): XsNode | undefined {
    const kids = this.kids;
    if (kids !== undefined) return kids.get(name);
    const one = this.later!.find?.(name);
    return one === undefined ? this.load().get(name) : (one ?? undefined);
  }

  /** Where the children are while they have not been read, else undefined. */
  get unread(): Unread | undefined {
    return this.later;
  }

  private load(): Children {
    const kids = this.later!.read();
    this.kids = kids;
    this.later = undefined;
    return kids;
  }

  /** `leaf(value, perms)` is a node without children; all such nodes share one empty map. */
  static leaf(value: string, perms: Perms): XsNode {
    return new XsNode(value, perms, NO_CHILDREN, permsBits(perms), 0);
  }

  /** Same node when the value is unchanged. */
  withValue(value: string): XsNode {
    return value === this.value ? this : new XsNode(value, this.perms, this.children, this.domains, this.childBytes);
  }

  /** Same node when the list is the same object (callers pass shared lists when unchanged). */
  withPerms(perms: Perms): XsNode {
    return perms === this.perms ? this : new XsNode(this.value, perms, this.children, this.domains | permsBits(perms), this.childBytes);
  }

  /** Same node when `child` is already there, by reference. */
  withChild(name: string, child: XsNode): XsNode {
    const before = this.children;
    const children = before.set(name, child);
    if (children === before) return this;
    // A large directory's sorted names follow it (child-names.ts); one comparison for the others.
    if (children.size >= KEPT_SORTED) carry(before, children, name, true);
    const bytes = children.size === before.size ? this.childBytes : this.childBytes + name.length + 1;
    return new XsNode(this.value, this.perms, children, this.domains | child.domains, bytes);
  }

  /** Same node when there is no such child. */
  withoutChild(name: string): XsNode {
    const before = this.children;
    const children = before.delete(name);
    if (children === before) return this;
    if (before.size >= KEPT_SORTED) carry(before, children, name, false);
    return new XsNode(this.value, this.perms, children, this.domains, this.childBytes - name.length - 1);
  }

  /**
   * Child names in the order DIRECTORY lists them: sorted by byte value, as oxenstored (Debian's
   * default daemon) does (spec §4.1). An order that is a function of the set, not of history,
   * means merged transactions never have to reconcile two insertion orders. Made once per child
   * map, and carried across writes for a large directory (child-names.ts).
   */
  childNames(): readonly string[] {
    return childNames(this.children);
  }
}
