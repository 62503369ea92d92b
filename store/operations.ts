import { ImmMap } from './imm-map.js';
import type { Caller } from './caller.js';
import { XsError } from '../protocol/index.js';
import type { Limits } from './limits.js';
import { XsNode } from './node.js';
import { isSpecialName, parseNodePath, type NodePath, type SpecialName } from './path.js';
import { check, grantable, lacks, Need, parsePerms, samePerms, withOwner, type Perms } from './perms.js';
import { addAll, adjust, owned } from './quota.js';
import { OK, type Change, type StoreReply, type StoreRequest } from './request.js';
import type { Store } from './store.js';
import { countOwners, negate } from './subtree.js';
import { deepestExisting, lookup, replace, update } from './tree.js';

/**
 * The tree operations (spec §7), as pure functions from a store version to the next. Each one
 * checks, in Xen's order (spec §5): path validity, permission, existence, quota. A violation is a
 * thrown `XsError`; nothing else is ever thrown. Unchanged stores are returned as the same object.
 */
export interface Outcome {
  readonly store: Store;
  readonly reply: StoreReply;
  readonly changes: readonly Change[];
  /**
   * How many nodes each domain gained or lost (absent: none). A transaction adds these up, so
   * that grafting it onto the live version costs the domains it touched, not all domains.
   */
  readonly counts?: ReadonlyMap<number, number> | undefined;
  /**
   * The one subtree an update changed, as it found it (absent when nothing changed): history
   * records the commit from it without walking the trees again (store/history-commit.ts; issue
   * 14: that walk was most of what recording a plain write cost).
   */
  readonly touched?: Touched | undefined;
}

/**
 * `path`'s node before and after an update (undefined: there was none / there is none). For a
 * creation, `path` is the topmost node created. Nodes elsewhere differ only in their children.
 */
export interface Touched {
  readonly path: string;
  readonly before: XsNode | undefined;
  readonly after: XsNode | undefined;
}

/**
 * `parsed` is `req.path` already resolved by the caller for this caller and limits (a transaction
 * parses it once to record what the request observes), or undefined to parse it here.
 */
type Operation<R extends StoreRequest> = (s: Store, caller: Caller, limits: Limits, req: R, parsed: NodePath | undefined) => Outcome;

const NO_CHANGES: readonly Change[] = Object.freeze([]);

const answer = (s: Store, reply: StoreReply): Outcome => ({ store: s, reply, changes: NO_CHANGES });

const updated = (s: Store, root: XsNode, quota = s.quota, special = s.special): Store =>
  root === s.root && quota === s.quota && special === s.special
    ? s
    : { root, quota, special, generation: s.generation };

/**
 * The error for a node that is not there: ENOENT, unless the caller lacks the requested access to
 * the nearest existing ancestor, in which case EACCES — so a guest cannot probe for nodes below a
 * directory it may not see (cxenstored `errno_from_parents`, spec §6.2).
 */
function missing(s: Store, caller: Caller, p: NodePath, need: number): XsError {
  const nearest = lookup(s.root, p.segs, deepestExisting(s.root, p.segs))!;
  return new XsError(lacks(nearest.perms, caller, need) ? 'EACCES' : 'ENOENT', `no node ${p.path}`);
}

/** The node at `path`, readable by the caller, or the error Xen gives. */
function readable(s: Store, caller: Caller, limits: Limits, path: string, parsed: NodePath | undefined): XsNode {
  const p = parsed ?? parseNodePath(path, caller.domid, limits.pathMax);
  const node = lookup(s.root, p.segs);
  if (node === undefined) throw missing(s, caller, p, Need.READ);
  check(node.perms, caller, Need.READ);
  return node;
}

function special(path: string): SpecialName | undefined {
  if (path.charCodeAt(0) !== 0x40 /* @ */) return undefined;
  if (!isSpecialName(path)) throw new XsError('EINVAL', `no special node ${path}`);
  return path;
}

const read: Operation<{ op: 'read'; path: string }> = (s, caller, limits, req, parsed) =>
  answer(s, { kind: 'value', value: readable(s, caller, limits, req.path, parsed).value });

const directory: Operation<{ op: 'directory'; path: string }> = (s, caller, limits, req, parsed) =>
  answer(s, { kind: 'names', names: readable(s, caller, limits, req.path, parsed).childNames() });

const getPerms: Operation<{ op: 'get-perms'; path: string }> = (s, caller, limits, req, parsed) => {
  const name = special(req.path);
  if (name !== undefined) {
    check(s.special[name], caller, Need.READ);
    return answer(s, { kind: 'perms', perms: s.special[name] });
  }
  return answer(s, { kind: 'perms', perms: readable(s, caller, limits, req.path, parsed).perms });
};

/**
 * Creates the missing part of `p` below its deepest existing ancestor (`k` segments deep), the
 * leaf holding `value`. New nodes copy the ancestor's permissions; an unprivileged creator becomes
 * their owner and is charged for them (spec §6.3, cxenstored — it closes oxenstored's quota hole).
 */
function create(
  s: Store,
  caller: Caller,
  limits: Limits,
  p: NodePath,
  k: number,
  value: string,
): { store: Store; counts: ReadonlyMap<number, number>; touched: Touched } {
  const ancestor = lookup(s.root, p.segs, k)!;
  check(ancestor.perms, caller, Need.WRITE);
  checkValue(caller, limits, value);
  // A first child is let in whatever its name's length: any valid path (spec §3.3) can be made.
  if (ancestor.childBytes > 0) checkRecord(caller, limits, ancestor.value.length, ancestor.childBytes + p.segs[k]!.length + 1);
  const created = p.segs.length - k;
  if (!caller.privileged && owned(s.quota, caller.domid) + created > limits.nodes) {
    throw new XsError('ENOSPC', `domain ${caller.domid} owns ${limits.nodes} nodes`);
  }
  const perms = caller.privileged ? ancestor.perms : withOwner(ancestor.perms, caller.domid);
  let node = XsNode.leaf(value, perms);
  for (let i = p.segs.length - 1; i > k; i--) node = new XsNode('', perms, ImmMap([[p.segs[i]!, node]]));
  const root = update(s.root, p.segs, k, (a) => a.withChild(p.segs[k]!, node))!;
  const owner = perms[0]!.domid;
  const top = k + 1 === p.segs.length ? p.path : `/${p.segs.slice(0, k + 1).join('/')}`;
  return { store: updated(s, root, adjust(s.quota, owner, created)), counts: new Map([[owner, created]]), touched: { path: top, before: undefined, after: node } };
}

function checkValue(caller: Caller, limits: Limits, value: string): void {
  if (!caller.privileged && value.length > limits.valueSize) {
    throw new XsError('E2BIG', `value longer than ${limits.valueSize} bytes`);
  }
}

/**
 * A node's record, its value and its child names, must fit the node-size quota when an
 * unprivileged domain makes it grow: cxenstored counts `childlen` in the 2 KB record it checks
 * (`write_node_raw`, ENOSPC; spec §10). Issue 18: without it, 990 children with 1,994-byte names
 * made one node a 2 MB listing within every other quota.
 */
function checkRecord(caller: Caller, limits: Limits, valueBytes: number, childBytes: number): void {
  if (!caller.privileged && valueBytes + childBytes > limits.valueSize) {
    throw new XsError('ENOSPC', `node larger than ${limits.valueSize} bytes with its child names`);
  }
}

const write: Operation<{ op: 'write'; path: string; value: string }> = (s, caller, limits, req, parsed) => {
  const p = parsed ?? parseNodePath(req.path, caller.domid, limits.pathMax);
  const changes: readonly Change[] = [{ path: p.path, kind: 'set' }];
  // Most writes rewrite a node that exists: one walk down finds it (the second walk, of a
  // create, only when it does not).
  const node = lookup(s.root, p.segs);
  if (node === undefined) return { ...create(s, caller, limits, p, deepestExisting(s.root, p.segs), req.value), reply: OK, changes };
  check(node.perms, caller, Need.WRITE);
  checkValue(caller, limits, req.value);
  if (node.childBytes > 0) checkRecord(caller, limits, req.value.length, node.childBytes);
  // Writing the same value again still fires (spec §7.2), though the store is unchanged.
  const after = node.withValue(req.value);
  if (after === node) return { store: s, reply: OK, changes };
  return { store: updated(s, update(s.root, p.segs, p.segs.length, () => after)!), reply: OK, changes, touched: { path: p.path, before: node, after } };
};

const mkdir: Operation<{ op: 'mkdir'; path: string }> = (s, caller, limits, req, parsed) => {
  const p = parsed ?? parseNodePath(req.path, caller.domid, limits.pathMax);
  const k = deepestExisting(s.root, p.segs);
  if (k === p.segs.length) {
    // Existing node: no change and no event, but still needs write access (spec §7.3).
    check(lookup(s.root, p.segs)!.perms, caller, Need.WRITE);
    return answer(s, OK);
  }
  return { ...create(s, caller, limits, p, k, ''), reply: OK, changes: [{ path: p.path, kind: 'set' }] };
};

const rm: Operation<{ op: 'rm'; path: string }> = (s, caller, limits, req, parsed) => {
  const p = parsed ?? parseNodePath(req.path, caller.domid, limits.pathMax);
  // cxenstored refuses to remove the root; oxenstored wipes the whole tree (spec §7.4).
  if (p.segs.length === 0) throw new XsError('EINVAL', 'cannot remove /');
  const node = lookup(s.root, p.segs);
  if (node === undefined) {
    const k = deepestExisting(s.root, p.segs);
    if (lacks(lookup(s.root, p.segs, k)!.perms, caller, Need.WRITE)) throw new XsError('EACCES');
    // A missing node whose parent exists is already removed: OK, and no event (spec §7.4).
    if (k < p.segs.length - 1) throw new XsError('ENOENT', `no parent for ${p.path}`);
    return answer(s, OK);
  }
  check(node.perms, caller, Need.WRITE);
  const root = replace(s.root, p.segs, undefined);
  const counts = negate(countOwners(node));
  const quota = addAll(s.quota, counts);
  return { store: updated(s, root, quota), reply: OK, changes: [{ path: p.path, kind: 'remove' }], counts, touched: { path: p.path, before: node, after: undefined } };
};

const setPerms: Operation<{ op: 'set-perms'; path: string; perms: readonly string[] }> = (s, caller, limits, req, parsed) => {
  const name = special(req.path);
  const p = name === undefined ? (parsed ?? parseNodePath(req.path, caller.domid, limits.pathMax)) : undefined;
  const wanted = grantable(parsePerms(req.perms), caller);
  const node = p === undefined ? undefined : lookup(s.root, p.segs);
  if (p !== undefined && node === undefined) throw missing(s, caller, p, Need.WRITE);
  const current = node?.perms ?? s.special[name!];
  check(current, caller, Need.WRITE | Need.OWNER);
  // Only the privileged may give a node away (XSA-352); cxenstored's code for it is EPERM.
  if (!caller.privileged && wanted[0]!.domid !== current[0]!.domid) {
    throw new XsError('EPERM', 'only a privileged domain may change the owner');
  }
  if (!caller.privileged && wanted.length > limits.permissions) {
    throw new XsError('ENOSPC', `more than ${limits.permissions} permission entries`);
  }
  const perms: Perms = samePerms(wanted, current) ? current : wanted;
  const path = p?.path ?? name!;
  const changes: readonly Change[] = [{ path, kind: 'set' }];
  if (node === undefined) {
    const sp = perms === current ? s.special : Object.freeze({ ...s.special, [name!]: perms });
    return { store: updated(s, s.root, s.quota, sp), reply: OK, changes };
  }
  const after = node.withPerms(perms);
  const root = update(s.root, p!.segs, p!.segs.length, () => after)!;
  const touched: Touched | undefined = after === node ? undefined : { path: p!.path, before: node, after };
  const from = current[0]!.domid;
  const to = perms[0]!.domid;
  if (from === to) return { store: updated(s, root), reply: OK, changes, touched };
  const quota = adjust(adjust(s.quota, from, -1), to, 1);
  const counts = new Map([
    [from, -1],
    [to, 1],
  ]);
  return { store: updated(s, root, quota), reply: OK, changes, counts, touched };
};

const OPERATIONS: { readonly [K in StoreRequest['op']]: Operation<Extract<StoreRequest, { op: K }>> } = {
  read,
  directory,
  'get-perms': getPerms,
  write,
  mkdir,
  rm,
  'set-perms': setPerms,
};

/**
 * `execute(s, caller, limits, req, parsed?)` answers one request against version `s`: the next
 * version (`s` itself when nothing changed; generation untouched — see `advance`), the reply, and
 * the changes for watches. Throws only `XsError`. `parsed`, when given, must be
 * `parseNodePath(req.path, caller.domid, limits.pathMax)` (transaction.ts passes it so that a
 * request in a transaction parses its path once).
 */
export function execute(s: Store, caller: Caller, limits: Limits, req: StoreRequest, parsed?: NodePath): Outcome {
  return (OPERATIONS[req.op] as Operation<StoreRequest>)(s, caller, limits, req, parsed);
}

