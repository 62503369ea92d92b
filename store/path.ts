import { XsError } from '../protocol/index.js';

/**
 * Xen paths (spec §3). A tree path is kept as its canonical absolute string plus its segments
 * (`/local/domain/3` -> ['local', 'domain', '3']; the root is []). Special names
 * (`@introduceDomain`, `@releaseDomain`) are not tree paths: only watches and the special
 * permissions use them (spec §3.1, §8.6; cxenstored's choice).
 */
export interface NodePath {
  readonly kind: 'node';
  /** Canonical absolute form, e.g. `/local/domain/3/device`. */
  readonly path: string;
  readonly segs: readonly string[];
}

export interface SpecialPath {
  readonly kind: 'special';
  readonly path: string;
}

export type SpecialName = '@introduceDomain' | '@releaseDomain';

export const SPECIAL_NAMES: readonly SpecialName[] = ['@introduceDomain', '@releaseDomain'];

export function isSpecialName(s: string): s is SpecialName {
  return s === '@introduceDomain' || s === '@releaseDomain';
}

export const ROOT: NodePath = Object.freeze({ kind: 'node', path: '/', segs: Object.freeze([]) });

// One regular expression for the whole canonical path: components of [A-Za-z0-9_@-], separated by
// single slashes, no trailing slash (spec §3.1). This rejects `//`, a trailing `/`, empty
// components and every byte outside the Xen character set in one pass.
const VALID_ABSOLUTE = /^(?:\/[A-Za-z0-9_@-]+)+$/;
const VALID_SPECIAL = /^@[A-Za-z0-9_@/-]*$/;
const DOMAIN_PREFIX = /^\/local\/domain\/(\d{1,5})\//;

/** `homeOf(domid)` is the directory relative paths of that domain resolve against (spec §3.2). */
export function homeOf(domid: number): string {
  return `/local/domain/${domid}`;
}

/**
 * `parseNodePath(raw, domid, pathMax)` resolves and validates a tree path for a caller of domain
 * `domid`; throws EINVAL for anything Xen refuses, including `@` names (spec §3.1).
 */
export function parseNodePath(raw: string, domid: number, pathMax: number): NodePath {
  if (raw === '/') return ROOT;
  if (raw.length === 0 || raw.charCodeAt(0) === 0x40 /* @ */) {
    throw new XsError('EINVAL', `invalid path ${JSON.stringify(raw)}`);
  }
  const path = raw.charCodeAt(0) === 0x2f /* / */ ? raw : `${homeOf(domid)}/${raw}`;
  if (!VALID_ABSOLUTE.test(path)) throw new XsError('EINVAL', `invalid path ${JSON.stringify(raw)}`);
  checkLength(path, pathMax);
  return { kind: 'node', path, segs: path.slice(1).split('/') };
}

/**
 * `parseWatchPath(raw, domid, pathMax)` accepts what WATCH/UNWATCH accept: a tree path (relative
 * allowed) or any `@` name of valid characters up to `pathMax` bytes (spec §8.1, cxenstored).
 */
export function parseWatchPath(raw: string, domid: number, pathMax: number): NodePath | SpecialPath {
  if (raw.charCodeAt(0) === 0x40 /* @ */) {
    if (raw.length > pathMax || !VALID_SPECIAL.test(raw)) {
      throw new XsError('EINVAL', `invalid watch path ${JSON.stringify(raw)}`);
    }
    return { kind: 'special', path: raw };
  }
  return parseNodePath(raw, domid, pathMax);
}

/**
 * The XSA-323 length rule (spec §3.3): below `/local/domain/<N>/` only the part after that prefix
 * counts, so a guest's relative paths stay valid whatever its domid becomes after migration;
 * elsewhere the whole canonical path counts.
 */
function checkLength(path: string, pathMax: number): void {
  // What counts is never longer than the whole path: most paths are settled without the regex.
  if (path.length <= pathMax) return;
  const m = DOMAIN_PREFIX.exec(path);
  const counted = m ? path.length - m[0].length : path.length;
  if (counted > pathMax) throw new XsError('EINVAL', `path longer than ${pathMax} bytes`);
}

/** `relativeTo(path, domid)` strips `/local/domain/<domid>/` for events of relative watches. */
export function relativeTo(path: string, domid: number): string {
  const home = `${homeOf(domid)}/`;
  return path.startsWith(home) ? path.slice(home.length) : path;
}

/** `joinSegs(segs)` is the canonical string of a segment list. */
export function joinSegs(segs: readonly string[]): string {
  return segs.length === 0 ? '/' : `/${segs.join('/')}`;
}

/** `commonPrefixLength(a, b)` counts the leading segments `a` and `b` share. */
export function commonPrefixLength(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** `isAncestorOrSelf(a, b)`: `a` equals `b` or contains it, component-wise (`/` contains all). */
export function isAncestorOrSelf(a: string, b: string): boolean {
  if (a === '/' || a === b) return true;
  return b.length > a.length && b.startsWith(a) && b.charCodeAt(a.length) === 0x2f;
}
