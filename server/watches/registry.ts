import type { Watch } from './watch.js';

/**
 * Every watch of every connection, indexed by path in a trie (oxenstored `connections.ml`), so that
 * firing for a change at P costs P's depth plus the watches that match, never the number of watches:
 * the ancestors' watches lie on the walk from the root to P, and on a subtree removal the watches
 * below P are the trie's subtree at P. Special `@` names live in their own table: they match exactly
 * (spec §8.6). Removal of a connection's watches cleans every index (XSA-330).
 */
interface TrieNode<C> {
  watches: Watch<C>[];
  children: Map<string, TrieNode<C>>;
}

const newNode = <C>(): TrieNode<C> => ({ watches: [], children: new Map() });

/** Bytes a watch holds besides its strings: the object, its slots in the indexes, a trie node. */
const WATCH_OVERHEAD = 160;

/**
 * `watchBytes(w)` is what a watch costs the daemon: its token and paths (byte strings, one byte a
 * character; the path as sent is the canonical one when absolute) and the entry itself. Charged to
 * the owner's domain memory budget (spec §10.2 `memory`).
 */
export function watchBytes(w: Pick<Watch<unknown>, 'path' | 'canonical' | 'token'>): number {
  return WATCH_OVERHEAD + w.canonical.length + w.token.length + (w.path === w.canonical ? 0 : w.path.length);
}

export class WatchRegistry<C> {
  private readonly root: TrieNode<C> = newNode();
  private readonly special = new Map<string, Watch<C>[]>();
  private readonly byOwner = new Map<C, Set<Watch<C>>>();
  private readonly bytesByOwner = new Map<C, number>();

  /** `add(w)` registers a watch; the caller has checked for duplicates and quota. */
  add(w: Watch<C>): void {
    this.bucket(w.canonical, true)!.push(w);
    let set = this.byOwner.get(w.owner);
    if (set === undefined) this.byOwner.set(w.owner, (set = new Set()));
    set.add(w);
    this.bytesByOwner.set(w.owner, (this.bytesByOwner.get(w.owner) ?? 0) + watchBytes(w));
  }

  /** `find(owner, canonical, token)` is the owner's watch on that path with that token. */
  find(owner: C, canonical: string, token: string): Watch<C> | undefined {
    for (const w of this.bucket(canonical, false) ?? []) {
      if (w.owner === owner && w.token === token) return w;
    }
    return undefined;
  }

  /** `remove(w)` unregisters one watch, pruning empty trie nodes. */
  remove(w: Watch<C>): void {
    const list = this.bucket(w.canonical, false);
    if (list !== undefined) {
      const i = list.indexOf(w);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.prune(w.canonical);
    }
    const set = this.byOwner.get(w.owner);
    if (set?.delete(w) !== true) return;
    if (set.size === 0) {
      this.byOwner.delete(w.owner);
      this.bytesByOwner.delete(w.owner);
    } else {
      this.bytesByOwner.set(w.owner, this.bytesByOwner.get(w.owner)! - watchBytes(w));
    }
  }

  /** `removeOwner(owner)` drops all of one connection's watches. */
  removeOwner(owner: C): void {
    for (const w of [...(this.byOwner.get(owner) ?? [])]) this.remove(w);
  }

  /** `ownedBy(owner)` is one connection's watches, in the order they were added. */
  ownedBy(owner: C): Watch<C>[] {
    return [...(this.byOwner.get(owner) ?? [])];
  }

  /** Number of watches of one owner (for the quota), or of everyone. */
  count(owner?: C): number {
    if (owner !== undefined) return this.byOwner.get(owner)?.size ?? 0;
    let n = 0;
    for (const set of this.byOwner.values()) n += set.size;
    return n;
  }

  /** Bytes one owner's watches hold (`watchBytes` summed), for its domain's memory budget. */
  bytes(owner: C): number {
    return this.bytesByOwner.get(owner) ?? 0;
  }

  /** `forEachAbove(path, fn)` calls fn for every watch on `path` or one of its ancestors. */
  forEachAbove(path: string, fn: (w: Watch<C>) => void): void {
    let node: TrieNode<C> | undefined = this.root;
    for (const w of node.watches) fn(w);
    if (path === '/') return;
    let start = 1;
    while (node !== undefined) {
      const end = path.indexOf('/', start);
      const name = path.slice(start, end < 0 ? undefined : end);
      node = node.children.get(name);
      if (node === undefined) return;
      for (const w of node.watches) fn(w);
      if (end < 0) return;
      start = end + 1;
    }
  }

  /** `forEachBelow(path, fn)` calls fn for every watch strictly below `path` (iterative). */
  forEachBelow(path: string, fn: (w: Watch<C>) => void): void {
    const top = this.node(path, false);
    if (top === undefined) return;
    const stack = [...top.children.values()];
    while (stack.length > 0) {
      const n = stack.pop()!;
      for (const w of n.watches) fn(w);
      for (const c of n.children.values()) stack.push(c);
    }
  }

  /** `forEachSpecial(name, fn)` calls fn for every watch on exactly that `@` name. */
  forEachSpecial(name: string, fn: (w: Watch<C>) => void): void {
    for (const w of this.special.get(name) ?? []) fn(w);
  }

  private bucket(canonical: string, create: boolean): Watch<C>[] | undefined {
    if (canonical.charCodeAt(0) === 0x40 /* @ */) {
      let list = this.special.get(canonical);
      if (list === undefined && create) this.special.set(canonical, (list = []));
      return list;
    }
    return this.node(canonical, create)?.watches;
  }

  private node(path: string, create: boolean): TrieNode<C> | undefined {
    let node = this.root;
    if (path === '/') return node;
    for (const name of path.slice(1).split('/')) {
      let next = node.children.get(name);
      if (next === undefined) {
        if (!create) return undefined;
        node.children.set(name, (next = newNode()));
      }
      node = next;
    }
    return node;
  }

  private prune(canonical: string): void {
    if (canonical.charCodeAt(0) === 0x40) {
      this.special.delete(canonical);
      return;
    }
    if (canonical === '/') return;
    const names = canonical.slice(1).split('/');
    const chain: TrieNode<C>[] = [this.root];
    for (const name of names) {
      const next = chain[chain.length - 1]!.children.get(name);
      if (next === undefined) return;
      chain.push(next);
    }
    for (let i = names.length; i > 0; i--) {
      const n = chain[i]!;
      if (n.watches.length > 0 || n.children.size > 0) return;
      chain[i - 1]!.children.delete(names[i - 1]!);
    }
  }
}
