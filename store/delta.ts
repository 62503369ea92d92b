import { XsError } from '../protocol/index.js';
import { addedSubtree, diff, type Difference } from './diff.js';
import { permsBits, XsNode } from './node.js';
import { SPECIAL_NAMES, type SpecialName } from './path.js';
import { samePerms, type Perms } from './perms.js';
import { adjust, addAll } from './quota.js';
import type { SpecialPerms, Store } from './store.js';
import { countOwners, negate } from './subtree.js';
import { lookup, replace } from './tree.js';

/**
 * A delta is what one commit did to the store, stated as results rather than requests: the new
 * value and permissions of every node it created or changed (implicitly created parents included,
 * parents before children), the paths of the subtrees it removed, the special names' new
 * permissions, and the generation it produced. Replaying deltas in generation order onto the
 * version before the first one gives exactly the version after the last (the write-ahead log,
 * `server/persistence/`). It is computed by `diff`, which skips unchanged subtrees by reference,
 * so its cost is what the commit touched, whatever the request (a transaction, a domain release).
 */
export type DeltaOp =
  | { readonly kind: 'set'; readonly path: string; readonly value: string; readonly perms: Perms }
  | { readonly kind: 'remove'; readonly path: string }
  | { readonly kind: 'special'; readonly name: SpecialName; readonly perms: Perms };

export interface Delta {
  readonly generation: number;
  readonly ops: readonly DeltaOp[];
}

/**
 * `deltaOf(before, after, hints?)` is the delta that turns `before` into `after`. Without hints
 * every differing subtree is walked (`diff`); that compares the children of every node on a
 * changed path, which for a directory of 1 000 entries costs 1 000 lookups per commit. `hints`,
 * the changed paths a commit reports for watches (`Change.path`), narrow the walk: only the hinted
 * paths are followed from the root, ancestors compared on the way (implicit creation), and the
 * subtree at each hinted path diffed whole. The hints must cover every difference (every changed
 * node is on or below a hinted path): true of requests and transaction commits; not of a domain
 * release, whose ACL clean-up touches nodes it does not report, so that goes unhinted.
 */
export function deltaOf(before: Store, after: Store, hints?: readonly string[]): Delta {
  const ops: DeltaOp[] = [];
  for (const d of differencesOf(before.root, after.root, hints)) {
    if (d.kind === 'removed') {
      ops.push({ kind: 'remove', path: d.path });
    } else {
      const node = lookup(after.root, segsOf(d.path))!;
      ops.push({ kind: 'set', path: d.path, value: node.value, perms: node.perms });
    }
  }
  for (const name of SPECIAL_NAMES) {
    if (!samePerms(before.special[name], after.special[name])) {
      ops.push({ kind: 'special', name, perms: after.special[name] });
    }
  }
  return { generation: after.generation, ops };
}

/**
 * `differencesOf(a, b, hints?)`: the nodes that differ between two trees (`diff`), walking only
 * the hinted paths when hints are given (see `deltaOf`). Shared with the history's records
 * (history-record.ts), which need the same differences with old values too.
 */
export function differencesOf(a: XsNode, b: XsNode, hints?: readonly string[]): Difference[] {
  return hints === undefined ? diff(a, b) : guidedDiff(a, b, hints);
}

/** A trie of hinted paths; `end` marks a hinted path itself. */
interface Hint {
  end: boolean;
  /** The hinted path itself when `end`: reused, so a difference at it does not build a copy. */
  path?: string;
  readonly next: Map<string, Hint>;
}

function guidedDiff(a: XsNode, b: XsNode, paths: readonly string[]): Difference[] {
  const top: Hint = { end: false, next: new Map() };
  for (const p of paths) {
    if (p.charCodeAt(0) !== 0x2f /* / */) continue; // special names: compared separately
    let h = top;
    for (const seg of segsOf(p)) {
      let n = h.next.get(seg);
      if (n === undefined) h.next.set(seg, (n = { end: false, next: new Map() }));
      h = n;
    }
    h.end = true;
    h.path = p;
  }
  const out: Difference[] = [];
  // Iterative, parents before children (XSA-418; replay needs parents first).
  const stack: [string, XsNode, XsNode, Hint][] = [['/', a, b, top]];
  while (stack.length > 0) {
    const [path, x, y, h] = stack.pop()!;
    if (x === y) continue;
    if (h.end) {
      // The hinted path's own string (history keeps it in its record for as long as the window).
      const at = h.path ?? path;
      for (const d of diff(x, y)) out.push({ path: d.path === '/' ? at : at === '/' ? d.path : at + d.path, kind: d.kind });
      continue;
    }
    if (x.value !== y.value || !samePerms(x.perms, y.perms)) out.push({ path, kind: 'changed' });
    const prefix = path === '/' ? '/' : `${path}/`;
    const below: [string, XsNode, XsNode, Hint][] = [];
    for (const [name, hint] of h.next) {
      const cx = x.children.get(name);
      const cy = y.children.get(name);
      if (cx === undefined && cy === undefined) continue;
      if (cx === undefined) addedSubtree(prefix + name, cy!, out);
      else if (cy === undefined) out.push({ path: prefix + name, kind: 'removed' });
      else below.push([prefix + name, cx, cy, hint]);
    }
    for (let i = below.length - 1; i >= 0; i--) stack.push(below[i]!);
  }
  return out;
}

/**
 * `applyDeltas(store, deltas)` replays deltas in order. Each must carry the next generation
 * (a gap means a lost record: EIO). The quota follows the ops (a created node counts for its
 * owner, a changed owner moves, a removed subtree is counted once as it goes), so replaying costs
 * what the deltas touched, not a recount of the whole store (issue 16: recovery at 10⁶ nodes).
 */
export function applyDeltas(store: Store, deltas: Iterable<Delta>): Store {
  const r = new Replay(store);
  for (const d of deltas) r.apply(d);
  return r.result();
}

/**
 * `applySpan(store, delta)` applies one delta that spans several generations: everything from
 * `store` to a later version `deltaOf(store, later)` (a live update's pre-copy: the next process
 * holds the version it loaded while the old one served, and gets only what changed since).
 */
export function applySpan(store: Store, delta: Delta): Store {
  if (!(delta.generation > store.generation)) {
    throw new XsError('EIO', `delta for generation ${delta.generation} does not follow ${store.generation}`);
  }
  const r = new Replay(store, false);
  r.apply(delta);
  return r.result();
}

/**
 * A replay in progress: `apply(delta)` for each delta in order, then `result()`, the store they
 * make (`applyDeltas`). Recovery drives one itself, applying each log record as it decodes it,
 * so that no record's delta outlives its turn (server/persistence/journal.ts).
 */
export class Replay {
  private root: XsNode;
  private special: SpecialPerms;
  private generation: number;
  private quota: Store['quota'];
  private applied = false;
  /**
   * Consecutive ops under one parent (a log of writes to one directory, issue 16's recovery at
   * 10⁶ nodes) change its children together and copy the path above it once, when an op
   * elsewhere (or the end) needs the tree: not once per op.
   */
  private batch: Batch | undefined;

  /** `consecutive`: each delta must be the next generation (a log); else later will do (a span). */
  constructor(
    private readonly store: Store,
    private readonly consecutive = true,
  ) {
    this.root = store.root;
    this.special = store.special;
    this.generation = store.generation;
    this.quota = store.quota;
  }

  apply(delta: Delta): void {
    if (this.consecutive && delta.generation !== this.generation + 1) {
      throw new XsError('EIO', `delta for generation ${delta.generation} does not follow ${this.generation}`);
    }
    for (const op of delta.ops) {
      if (op.kind === 'special') {
        this.special = Object.freeze({ ...this.special, [op.name]: op.perms });
        continue;
      }
      const slash = op.path.lastIndexOf('/');
      const parentPath = slash === 0 ? '/' : op.path.slice(0, slash);
      let batch = this.batch;
      if (op.path === '/' || batch?.path !== parentPath) {
        this.flush();
        if (op.path === '/') {
          if (op.kind === 'remove') throw new XsError('EIO', `delta ${delta.generation}: removes the root`);
          const was = this.root;
          this.root = new XsNode(op.value, op.perms, was.children, was.domains | permsBits(op.perms), was.childBytes);
          const owner = op.perms[0]!.domid;
          if (was.perms[0]!.domid !== owner) this.quota = adjust(adjust(this.quota, was.perms[0]!.domid, -1), owner, 1);
          continue;
        }
        const segs = segsOf(parentPath);
        const parent = lookup(this.root, segs);
        if (parent === undefined) throw new XsError('EIO', `delta ${delta.generation}: no parent for ${op.path}`);
        batch = this.batch = new Batch(parentPath, segs, parent);
      }
      const name = op.path.slice(slash + 1);
      const old = batch.get(name);
      if (op.kind === 'remove') {
        if (old !== undefined) {
          batch.remove(name);
          this.quota = addAll(this.quota, negate(countOwners(old)));
        }
      } else {
        const node = old === undefined ? XsNode.leaf(op.value, op.perms) : new XsNode(op.value, op.perms, old.children, old.domains | permsBits(op.perms), old.childBytes);
        batch.set(name, node, old === undefined);
        const owner = op.perms[0]!.domid;
        if (old === undefined) this.quota = adjust(this.quota, owner, 1);
        else if (old.perms[0]!.domid !== owner) this.quota = adjust(adjust(this.quota, old.perms[0]!.domid, -1), owner, 1);
      }
    }
    this.generation = delta.generation;
    this.applied = true;
  }

  /**
   * The store the deltas applied so far make (the same object when there were none). The store's
   * own invariant (quota = the tree's owners) holds by the bookkeeping in `apply`; the property
   * test in delta.test.ts checks it against a recount.
   */
  result(): Store {
    this.flush();
    if (!this.applied) return this.store;
    return Object.freeze({ root: this.root, quota: this.quota, special: this.special, generation: this.generation });
  }

  private flush(): void {
    const batch = this.batch;
    if (batch === undefined) return;
    this.root = replace(this.root, batch.segs, batch.node());
    this.batch = undefined;
  }
}

/**
 * A parent whose children replayed ops are changing (`replay`). The changes gather in a plain
 * Map and go into the parent's child map once, at `node()`: a log rewrites the same few children
 * over and over (issue 16's recovery: 10⁴ records, 1,000 names), and a Map's lookup of a
 * name costs a fraction of an immutable map's (which hashes the name each time).
 */
class Batch {
  /** name -> its new node, or null once removed. */
  private readonly changed = new Map<string, XsNode | null>();
  private domains: number;
  private childBytes: number;
  constructor(
    readonly path: string,
    readonly segs: readonly string[],
    private readonly parent: XsNode,
  ) {
    this.domains = parent.domains;
    this.childBytes = parent.childBytes;
  }

  get(name: string): XsNode | undefined {
    const c = this.changed.get(name);
    return c === undefined ? this.parent.children.get(name) : (c ?? undefined);
  }

  set(name: string, child: XsNode, added: boolean): void {
    this.changed.set(name, child);
    this.domains |= child.domains;
    if (added) this.childBytes += name.length + 1;
  }

  remove(name: string): void {
    this.changed.set(name, null);
    this.childBytes -= name.length + 1;
  }

  /** The parent with its new children, as `withChild` / `withoutChild` one by one would make it. */
  node(): XsNode {
    const kids = this.parent.children.withMutations((m) => {
      for (const [name, child] of this.changed) {
        if (child === null) m.delete(name);
        else m.set(name, child);
      }
    });
    return new XsNode(this.parent.value, this.parent.perms, kids, this.domains, this.childBytes);
  }
}

function segsOf(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}
