import { DOMID_ANY, Feature, XsError } from '../protocol/index.js';
import type { Caller } from './caller.js';

/**
 * Xen permission lists (spec §6). Entry 0 names the owner and the access of every domain without
 * an entry of its own; later entries grant per-domain access. Letters: n none, r read, w write,
 * b both. Lists are immutable arrays shared by reference between nodes that inherited them.
 */
export type AccessLetter = 'n' | 'r' | 'w' | 'b';

export interface PermEntry {
  readonly access: AccessLetter;
  readonly domid: number;
}

export type Perms = readonly PermEntry[];

/** What an operation needs: read (1), write (2), or owner rights (4). */
export const Need = { READ: 1, WRITE: 2, OWNER: 4 } as const;
export type Need = (typeof Need)[keyof typeof Need];

const BITS: Record<AccessLetter, number> = { n: 0, r: Need.READ, w: Need.WRITE, b: Need.READ | Need.WRITE };
const FULL = Need.READ | Need.WRITE | Need.OWNER;
const DOMID_MAX = 65535;

/** The root's and the special nodes' permissions: owned by dom0, nobody else may do anything. */
export const DOM0_ONLY: Perms = Object.freeze([Object.freeze({ access: 'n', domid: 0 } as PermEntry)]);

/**
 * `rights(perms, caller)` is the set of `Need` bits the caller holds on a node (spec §6.2):
 * privileged callers and the owner (or the owner's controller after SET_TARGET) hold everything;
 * otherwise the first ACL entry naming the caller, its target or DOMID_ANY decides (cxenstored
 * 4.22 `perm_for_conn`: DOMID_ANY names every domain), else entry 0.
 * A read-only connection never holds WRITE (cxenstored up to 4.14).
 */
export function rights(perms: Perms, caller: Caller): number {
  let r: number;
  const owner = perms[0]!.domid;
  if (caller.privileged || owner === caller.domid || (caller.target !== undefined && owner === caller.target)) {
    r = FULL;
  } else {
    r = BITS[perms[0]!.access];
    for (let i = 1; i < perms.length; i++) {
      const e = perms[i]!;
      if (e.domid === caller.domid || e.domid === DOMID_ANY || (caller.target !== undefined && e.domid === caller.target)) {
        r = BITS[e.access];
        break;
      }
    }
  }
  return caller.readOnly ? r & ~Need.WRITE : r;
}

/** `lacks(perms, caller, need)` is true when the caller misses any bit of `need`. */
export function lacks(perms: Perms, caller: Caller, need: number): boolean {
  return (rights(perms, caller) & need) !== need;
}

/** `has(perms, caller, need)` is the negation of `lacks`. */
export function has(perms: Perms, caller: Caller, need: number): boolean {
  return !lacks(perms, caller, need);
}

/** `check(perms, caller, need)` throws EACCES when the caller lacks `need`. */
export function check(perms: Perms, caller: Caller, need: number): void {
  if (lacks(perms, caller, need)) throw new XsError('EACCES');
}

const ENTRY = /^([nrwb])(\d{1,5})$/;

/**
 * `parsePerms(strings)` reads the wire form (`['n0', 'r5']`). Plain decimal domids 0..65535 only
 * (spec §6.1 recommends it over Xen's strtol/int_of_string leniency); an empty list, a bad letter
 * or a bad domid is EINVAL.
 */
export function parsePerms(strings: readonly string[]): Perms {
  if (strings.length === 0) throw new XsError('EINVAL', 'empty permission list');
  return Object.freeze(
    strings.map((s) => {
      const m = ENTRY.exec(s);
      const domid = m ? Number(m[2]) : NaN;
      if (!m || !(domid <= DOMID_MAX)) throw new XsError('EINVAL', `bad permission ${JSON.stringify(s)}`);
      return Object.freeze({ access: m[1] as AccessLetter, domid });
    }),
  );
}

/** `formatPerms(perms)` gives the wire form, one string per entry. */
export function formatPerms(perms: Perms): string[] {
  return perms.map((e) => `${e.access}${e.domid}`);
}

/** `samePerms(a, b)` compares two lists by value (reference first: inherited lists are shared). */
export function samePerms(a: Perms, b: Perms): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.access !== b[i]!.access || a[i]!.domid !== b[i]!.domid) return false;
  }
  return true;
}

/**
 * `withOwner(perms, domid)` is the list with entry 0's domid replaced: what an unprivileged
 * creator gets (spec §6.3, cxenstored: "unprivileged domains own what they create").
 */
export function withOwner(perms: Perms, domid: number): Perms {
  if (perms[0]!.domid === domid) return perms;
  return Object.freeze([Object.freeze({ access: perms[0]!.access, domid }), ...perms.slice(1)]);
}

/**
 * `withoutDomain(perms, domid)` drops the ACL entries (index >= 1) naming a domain that is gone,
 * so a later domain reusing the domid inherits nothing (XSA-322, XSA-417). Same list if none.
 */
export function withoutDomain(perms: Perms, domid: number): Perms {
  let found = false;
  for (let i = 1; i < perms.length; i++) if (perms[i]!.domid === domid) found = true;
  if (!found) return perms;
  return Object.freeze(perms.filter((e, i) => i === 0 || e.domid !== domid));
}

/**
 * `grantable(perms, caller)` is the list a SET_PERMS by `caller` may store, as to DOMID_ANY
 * (Xen 4.22 `domain_alloc_permrefs`): its entries are kept only from a caller whose domain has the
 * DOMID_ANY feature (the privileged always may); from another they would grant nothing (Xen keeps
 * them marked ignored), so they are dropped. DOMID_ANY as the owner is EINVAL: cxenstored would
 * make every domain the node's owner ("Xen tools will never set DOMID_ANY for a guest owned node").
 * Same list when nothing is dropped.
 */
export function grantable(perms: Perms, caller: Caller): Perms {
  if (perms[0]!.domid === DOMID_ANY) throw new XsError('EINVAL', 'DOMID_ANY cannot own a node');
  if (caller.privileged || caller.features === undefined || (caller.features & Feature.DOMID_ANY) !== 0) return perms;
  if (!perms.some((e) => e.domid === DOMID_ANY)) return perms;
  return Object.freeze(perms.filter((e) => e.domid !== DOMID_ANY));
}
