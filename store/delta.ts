import { XsError } from '../protocol/index.js';
import { addedSubtree, diff, type Difference } from './diff.js';
import { permsBits, XsNode, type Children } from './node.js';
import { isSpecialName, SPECIAL_NAMES, type SpecialName } from './path.js';
import { formatPerms, parsePerms, samePerms, type Perms } from './perms.js';
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
  return replay(store, deltas, true);
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
  return replay(store, [delta], false);
}

function replay(store: Store, deltas: Iterable<Delta>, consecutive: boolean): Store {
  let root = store.root;
  let special: SpecialPerms = store.special;
  let generation = store.generation;
  let quota = store.quota;
  let applied = false;
  // Consecutive ops under one parent (a log of writes to one directory, issue 16's recovery at
  // 10⁶ nodes) change its child map in place (an immutable-js transient) and copy the path above
  // it once, when an op elsewhere (or the end) needs the tree: not once per op.
  let batch: Batch | undefined;
  const flush = () => {
    if (batch === undefined) return;
    root = replace(root, batch.segs, batch.node());
    batch = undefined;
  };
  for (const delta of deltas) {
    if (consecutive && delta.generation !== generation + 1) {
      throw new XsError('EIO', `delta for generation ${delta.generation} does not follow ${generation}`);
    }
    for (const op of delta.ops) {
      if (op.kind === 'special') {
        special = Object.freeze({ ...special, [op.name]: op.perms });
        continue;
      }
      const slash = op.path.lastIndexOf('/');
      const parentPath = slash === 0 ? '/' : op.path.slice(0, slash);
      if (op.path === '/' || batch?.path !== parentPath) {
        flush();
        if (op.path === '/') {
          if (op.kind === 'remove') throw new XsError('EIO', `delta ${delta.generation}: removes the root`);
          const was = root;
          root = new XsNode(op.value, op.perms, was.children, was.domains | permsBits(op.perms), was.childBytes);
          const owner = op.perms[0]!.domid;
          if (was.perms[0]!.domid !== owner) quota = adjust(adjust(quota, was.perms[0]!.domid, -1), owner, 1);
          continue;
        }
        const segs = segsOf(parentPath);
        const parent = lookup(root, segs);
        if (parent === undefined) throw new XsError('EIO', `delta ${delta.generation}: no parent for ${op.path}`);
        batch = new Batch(parentPath, segs, parent);
      }
      const name = op.path.slice(slash + 1);
      const old = batch.get(name);
      if (op.kind === 'remove') {
        if (old !== undefined) {
          batch.remove(name);
          quota = addAll(quota, negate(countOwners(old)));
        }
      } else {
        const node = old === undefined ? XsNode.leaf(op.value, op.perms) : new XsNode(op.value, op.perms, old.children, old.domains | permsBits(op.perms), old.childBytes);
        batch.set(name, node, old === undefined);
        const owner = op.perms[0]!.domid;
        if (old === undefined) quota = adjust(quota, owner, 1);
        else if (old.perms[0]!.domid !== owner) quota = adjust(adjust(quota, old.perms[0]!.domid, -1), owner, 1);
      }
    }
    generation = delta.generation;
    applied = true;
  }
  flush();
  // The store's own invariant (quota = the tree's owners) holds by the bookkeeping above; the
  // property test in delta.test.ts checks it against a recount.
  return applied ? Object.freeze({ root, quota, special, generation }) : store;
}

/** A parent whose children replayed ops are changing in place (`replay`). */
class Batch {
  private readonly kids: Children;
  private domains: number;
  private childBytes: number;
  constructor(
    readonly path: string,
    readonly segs: readonly string[],
    private readonly parent: XsNode,
  ) {
    this.kids = parent.children.asMutable();
    this.domains = parent.domains;
    this.childBytes = parent.childBytes;
  }

  get(name: string): XsNode | undefined {
    return this.kids.get(name);
  }

  set(name: string, child: XsNode, added: boolean): void {
    this.kids.set(name, child);
    this.domains |= child.domains;
    if (added) this.childBytes += name.length + 1;
  }

  remove(name: string): void {
    this.kids.delete(name);
    this.childBytes -= name.length + 1;
  }

  /** The parent with its new children, as `withChild` / `withoutChild` one by one would make it. */
  node(): XsNode {
    return new XsNode(this.parent.value, this.parent.perms, this.kids.asImmutable(), this.domains, this.childBytes);
  }
}

/**
 * `encodeDelta(d)` / `decodeDelta(buf)`: one delta as JSON text (a commit touches few nodes, so
 * the record is small). Values are byte strings, which JSON carries exactly (one code unit per
 * byte, escaped or UTF-8 encoded). Decoding validates every field: a malformed record is EIO.
 */
export function encodeDelta(d: Delta): Buffer {
  const ops = d.ops.map((op) =>
    op.kind === 'set'
      ? ['s', op.path, op.value, formatPerms(op.perms)]
      : op.kind === 'remove'
        ? ['r', op.path]
        : ['p', op.name, formatPerms(op.perms)],
  );
  return Buffer.from(JSON.stringify({ g: d.generation, ops }), 'utf8');
}

const PATH = /^\/$|^(?:\/[A-Za-z0-9_@-]+)+$/;
const BYTES = /^[\u0000-\u00ff]*$/;

export function decodeDelta(buf: Buffer): Delta {
  let raw: unknown;
  try {
    raw = JSON.parse(buf.toString('utf8'));
  } catch {
    throw bad('not JSON');
  }
  if (typeof raw !== 'object' || raw === null) throw bad('not an object');
  const { g, ops } = raw as { g?: unknown; ops?: unknown };
  if (typeof g !== 'number' || !Number.isSafeInteger(g) || g < 1) throw bad(`bad generation ${String(g)}`);
  if (!Array.isArray(ops)) throw bad('no ops');
  return { generation: g, ops: ops.map(decodeOp) };
}

function decodeOp(op: unknown): DeltaOp {
  if (!Array.isArray(op)) throw bad('op is not a list');
  const [kind, a, b, c] = op as unknown[];
  const str = (x: unknown): string => {
    if (typeof x !== 'string') throw bad(`expected a string, got ${typeof x}`);
    return x;
  };
  const perms = (x: unknown): Perms => {
    if (!Array.isArray(x) || !x.every((e) => typeof e === 'string')) throw bad('bad permissions');
    try {
      return parsePerms(x as string[]);
    } catch (e) {
      throw bad((e as Error).message);
    }
  };
  if (kind === 's' && op.length === 4) {
    const path = str(a);
    const value = str(b);
    if (!PATH.test(path) || !BYTES.test(value)) throw bad(`bad set of ${path}`);
    return { kind: 'set', path, value, perms: perms(c) };
  }
  if (kind === 'r' && op.length === 2 && PATH.test(str(a))) return { kind: 'remove', path: a as string };
  if (kind === 'p' && op.length === 3) {
    const name = str(a);
    if (!isSpecialName(name)) throw bad(`bad special name ${name}`);
    return { kind: 'special', name, perms: perms(b) };
  }
  throw bad(`bad op ${JSON.stringify(kind)}`);
}

function bad(what: string): XsError {
  return new XsError('EIO', `corrupt delta: ${what}`);
}

function segsOf(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}
