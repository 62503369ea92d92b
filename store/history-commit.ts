import { differencesOf } from './delta.js';
import { diff, type Difference } from './diff.js';
import { firstChangePath, writeChange, writeHeader } from './history-codec.js';
import type { RecordWriter } from './history-ring.js';
import { REQUESTS_KEPT, segsOf, type RecordMeta, type Version } from './history-record.js';
import type { XsNode } from './node.js';
import { SPECIAL_NAMES } from './path.js';
import { samePerms } from './perms.js';
import { lookup } from './tree.js';
import type { Touched } from './operations.js';

/**
 * `writeCommit(w, before, after, meta, hints, time?)` writes the record of the commit from `before` to
 * `after` (history-codec.ts's form), straight from the two trees: no change object is made.
 * Its changes are the commit's differences (`differencesOf`, guided by the changed paths the
 * commit reported, as the journal's delta is), never a walk of the tree: the cost is what the
 * commit touched. A removed subtree is listed node by node; that is the size of what the commit
 * removed, which the removal itself already paid for (its quota recount).
 *
 * A plain request reports one path: that case walks the path once in both trees (issue 14: the
 * guided diff's trie of hints, its difference objects and a lookup from the root per difference
 * were a third of a write's cost with history on). A plain request that says what it touched
 * (operations.ts `Touched`) is not walked at all: most of the walk's cost was the trie's lookups.
 * Same changes, in the same order.
 */
export function writeCommit(
  w: RecordWriter,
  before: Version,
  after: Version,
  meta: RecordMeta,
  hints: readonly string[] | undefined,
  time = meta.time,
  touched?: Touched,
): void {
  const kept = meta.requests.length > REQUESTS_KEPT ? meta.requests.slice(0, REQUESTS_KEPT) : meta.requests;
  const more = kept.length < meta.requests.length;
  const one = hints?.length === 1 ? hints[0]! : undefined;
  const along = touched === undefined && one !== undefined && one.length > 1 && one.charCodeAt(0) === 0x2f; /* / */
  // A commit's differences are listed before its header is written: the first one's path says
  // whether a request is named by it (a transaction's usually is).
  const diffs = touched === undefined && !along ? differencesOf(before.root, after.root, hints) : undefined;
  let first = touched === undefined ? diffs?.[0]?.path : firstOf(touched);
  if (first !== undefined && !kept.some((r) => r.path === first)) first = undefined;
  const at = writeBody(w, before, after, meta.who, kept, more, time, touched, along ? one : undefined, diffs, first);
  // Settled when the first change was known before the header: a touched path, or a difference.
  if (first !== undefined || (diffs !== undefined && diffs.length > 0) || (touched !== undefined && firstOf(touched) !== undefined)) return;
  // One form per record whoever wrote it (history-codec.ts `writeInto` names a request on the first
  // change's path once; records read back from disk must keep their size): when the first change
  // turns out to be on a request's path, the record is written again in that form. Only the
  // rarer commits get here (one hinted path walked, a special name's permissions, a request
  // that touched a subtree), and only they pay it.
  const path = firstChangePath(w, at);
  if (path !== undefined && kept.some((r) => r.path === path)) {
    w.pos = w.start;
    writeBody(w, before, after, meta.who, kept, more, time, touched, along ? one : undefined, diffs, path);
  }
}

function writeBody(
  w: RecordWriter,
  before: Version,
  after: Version,
  who: RecordMeta['who'],
  kept: RecordMeta['requests'],
  more: boolean,
  time: number,
  touched: Touched | undefined,
  along: string | undefined,
  diffs: readonly Difference[] | undefined,
  first: string | undefined,
): number {
  const at = writeHeader(w, after.generation, time, who, kept, more, first);
  let n: number;
  if (touched !== undefined) {
    n = ofTouched(w, touched);
  } else if (along !== undefined) {
    n = alongPath(w, before.root, after.root, along);
  } else {
    n = 0;
    for (const d of diffs!) {
      const segs = segsOf(d.path);
      n += change(w, d.path, d.kind, d.kind === 'added' ? undefined : lookup(before.root, segs), d.kind === 'removed' ? undefined : lookup(after.root, segs));
    }
  }
  // The special names' permissions change only by SET_PERMS on them (rare): most commits keep the same object.
  if (before.special !== after.special) {
    for (const name of SPECIAL_NAMES) {
      if (!samePerms(before.special[name], after.special[name])) {
        writeChange(w, name, 'perms', '', before.special[name], '', after.special[name]);
        n++;
      }
    }
  }
  w.patchU32(at, n);
  return at;
}

/**
 * The path of `ofTouched`'s first change, when it is sure to be the touched path itself (a
 * request's record then names that path once: history-codec.ts); undefined otherwise.
 */
function firstOf(t: Touched): string | undefined {
  const { before: o, after: n } = t;
  if (o === undefined || n === undefined) return o === n ? undefined : t.path;
  return o.children === n.children && (o.value !== n.value || !samePerms(o.perms, n.perms)) ? t.path : undefined;
}

/** The differences of a request that changed one subtree, from the nodes it found there. */
function ofTouched(w: RecordWriter, t: Touched): number {
  const { path, before: o, after: n } = t;
  if (o === undefined) return n === undefined ? 0 : addedTree(w, path, n);
  if (n === undefined) return change(w, path, 'removed', o, undefined);
  if (o.children === n.children) return o.value !== n.value || !samePerms(o.perms, n.perms) ? change(w, path, 'changed', o, n) : 0;
  let count = 0;
  for (const d of diff(o, n)) {
    const segs = segsOf(d.path);
    count += change(w, d.path === '/' ? path : path + d.path, d.kind, d.kind === 'added' ? undefined : lookup(o, segs), d.kind === 'removed' ? undefined : lookup(n, segs));
  }
  return count;
}

/**
 * The differences on and below one hinted path, as `differencesOf(a, b, [path])` lists them:
 * ancestors whose own value or permissions differ, then the hinted subtree's differences.
 */
function alongPath(w: RecordWriter, x: XsNode, y: XsNode, path: string): number {
  let n = 0;
  let start = 1;
  if (x === y) return 0;
  if (x.value !== y.value || !samePerms(x.perms, y.perms)) n += change(w, '/', 'changed', x, y);
  for (;;) {
    const end = path.indexOf('/', start);
    const last = end < 0;
    const name = last ? path.slice(start) : path.slice(start, end);
    const here = last ? path : path.slice(0, end);
    const cx = x.children.get(name);
    const cy = y.children.get(name);
    if (cx === cy) return n;
    if (cx === undefined) return n + addedTree(w, here, cy!);
    if (cy === undefined) return n + change(w, here, 'removed', cx, undefined);
    if (last) {
      if (cx.children === cy.children) {
        return cx.value !== cy.value || !samePerms(cx.perms, cy.perms) ? n + change(w, here, 'changed', cx, cy) : n;
      }
      for (const d of diff(cx, cy)) {
        const segs = segsOf(d.path);
        const p = d.path === '/' ? here : here + d.path;
        n += change(w, p, d.kind, d.kind === 'added' ? undefined : lookup(cx, segs), d.kind === 'removed' ? undefined : lookup(cy, segs));
      }
      return n;
    }
    if (cx.value !== cy.value || !samePerms(cx.perms, cy.perms)) n += change(w, here, 'changed', cx, cy);
    x = cx;
    y = cy;
    start = end + 1;
  }
}

/**
 * One difference (`diff.ts`'s: an added node alone, a removed subtree by its top) as history
 * records it, with old and new value and permissions; a removed subtree is listed node by node,
 * parents first (undo puts them back in that order). Returns the changes written.
 */
function change(w: RecordWriter, path: string, kind: 'added' | 'removed' | 'changed', o: XsNode | undefined, n: XsNode | undefined): number {
  if (kind === 'changed') {
    writeChange(w, path, o!.value !== n!.value ? 'changed' : 'perms', o!.value, o!.perms, n!.value, n!.perms);
    return 1;
  }
  if (kind === 'added') {
    writeChange(w, path, 'added', undefined, undefined, n!.value, n!.perms);
    return 1;
  }
  // Iterative (XSA-418): a subtree may be as deep as paths allow.
  let count = 0;
  const stack: [string, XsNode][] = [[path, o!]];
  while (stack.length > 0) {
    const [p, node] = stack.pop()!;
    count++;
    writeChange(w, p, 'removed', node.value, node.perms, undefined, undefined);
    const names = [...node.children.keys()];
    for (let i = names.length - 1; i >= 0; i--) stack.push([`${p}/${names[i]!}`, node.children.get(names[i]!)!]);
  }
  return count;
}

/** Every node of a new subtree, in diff.ts `addedSubtree`'s order. */
function addedTree(w: RecordWriter, path: string, top: XsNode): number {
  if (top.children.size === 0) return change(w, path, 'added', undefined, top);
  let count = 0;
  const stack: [string, XsNode][] = [[path, top]];
  while (stack.length > 0) {
    const [p, node] = stack.pop()!;
    count += change(w, p, 'added', undefined, node);
    for (const [name, child] of node.children) stack.push([`${p}/${name}`, child]);
  }
  return count;
}
