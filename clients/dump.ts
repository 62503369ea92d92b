import { isUtf8 } from 'node:buffer';
import { childPath } from './path.js';

/**
 * A subtree as JSON, for `nxs dump` and `nxs restore`:
 *
 *     { "value": "text", "perms": ["n0", "r5"], "children": { "name": { ... } } }
 *
 * `value` is a string when the bytes are valid UTF-8, else `{ "base64": "..." }`, so any value
 * round-trips exactly (spec §7.2: values are bytes). `perms` are GET_PERMS entries, owner first
 * (spec §6.1).
 *
 * Caveat: JavaScript orders integer-like object keys ("0", "12") numerically before the others,
 * so children named like domids are listed in that order rather than the daemon's (spec §4.1),
 * and a restore creates them in that order. nxenstored lists children sorted by byte value
 * whatever the creation order, so this only shows against an insertion-order daemon (cxenstored).
 */

export type DumpValue = string | { readonly base64: string };

export interface DumpNode {
  readonly value: DumpValue;
  readonly perms: readonly string[];
  readonly children: Readonly<Record<string, DumpNode>>;
}

/** What a dump reads: XsClient and TxView both fit. */
export interface DumpReader {
  readBytes(path: string): Promise<Buffer>;
  getPerms(path: string): Promise<string[]>;
  directory(path: string): Promise<string[]>;
}

/** What a restore writes: XsClient and TxView both fit. */
export interface DumpWriter {
  write(path: string, value: Buffer): Promise<void>;
  setPerms(path: string, perms: readonly string[]): Promise<void>;
}

/** `dumpTree(reader, path)` reads the subtree at `path`; run it in a transaction for a consistent snapshot. */
export async function dumpTree(reader: DumpReader, path: string): Promise<DumpNode> {
  const bytes = await reader.readBytes(path);
  const perms = await reader.getPerms(path);
  const entries: [string, DumpNode][] = [];
  for (const name of await reader.directory(path)) entries.push([name, await dumpTree(reader, childPath(path, name))]);
  return {
    value: isUtf8(bytes) ? bytes.toString('utf8') : { base64: bytes.toString('base64') },
    perms,
    // fromEntries defines own properties, so even a child named "__proto__" is kept.
    children: Object.fromEntries(entries),
  };
}

/**
 * `restoreTree(writer, path, node)` writes `node` at `path` and its children below it; nodes
 * already there and absent from the dump are kept. Permissions are set after the children are
 * written (post-order), so a dump whose perms lock the caller out can still be restored by it.
 */
export async function restoreTree(writer: DumpWriter, path: string, node: DumpNode): Promise<void> {
  const value = typeof node.value === 'string' ? Buffer.from(node.value, 'utf8') : Buffer.from(node.value.base64, 'base64');
  await writer.write(path, value);
  for (const [name, sub] of Object.entries(node.children)) await restoreTree(writer, childPath(path, name), sub);
  await writer.setPerms(path, node.perms);
}

/** A dump file that does not have the shape above; the message names the place (`$.children.a.perms`). */
export class DumpFormatError extends Error {
  override readonly name = 'DumpFormatError';
}

const PERM = /^[nrwb][0-9]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * `parseDump(text)` checks and returns a dump. Hand-written rather than a zod schema because
 * zod's record parser loses a key named `__proto__`, which is a valid node name (spec §3.1).
 * Names are only checked not to contain `/` (which would write elsewhere); the daemon judges
 * the rest.
 */
export function parseDump(text: string): DumpNode {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DumpFormatError(`not JSON: ${(e as Error).message}`);
  }
  return checkNode(json, '$');
}

function checkNode(x: unknown, at: string): DumpNode {
  const bad = (what: string): never => {
    throw new DumpFormatError(`${at}: ${what}`);
  };
  if (!isRecord(x)) return bad('expected an object with value, perms and children');
  for (const key of Object.keys(x)) if (key !== 'value' && key !== 'perms' && key !== 'children') bad(`unknown field ${JSON.stringify(key)}`);

  const { value, perms, children } = x;
  let checkedValue: DumpValue;
  if (typeof value === 'string') checkedValue = value;
  else if (isRecord(value) && Object.keys(value).length === 1 && typeof value.base64 === 'string' && BASE64.test(value.base64)) {
    checkedValue = { base64: value.base64 };
  } else return bad('value must be a string or { "base64": "..." }');

  if (!Array.isArray(perms) || perms.length === 0 || !perms.every((p): p is string => typeof p === 'string' && PERM.test(p))) {
    return bad('perms must be a non-empty list like ["n0", "r5"]');
  }
  if (!isRecord(children)) return bad('children must be an object');
  const checked: [string, DumpNode][] = [];
  for (const [name, sub] of Object.entries(children)) {
    if (name === '' || name.includes('/')) bad(`bad child name ${JSON.stringify(name)}`);
    checked.push([name, checkNode(sub, `${at}.children${/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`}`)]);
  }
  return { value: checkedValue, perms, children: Object.fromEntries(checked) };
}
