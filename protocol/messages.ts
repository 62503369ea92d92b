/**
 * Payload layouts of each message (spec §2 table, §7), as two tables of builders — what a
 * client sends and what the server answers — plus parsers for the replies. Shared by the
 * client library, the server and tests so that each layout is written down once.
 * Parsers return undefined for a malformed payload, like payload.ts.
 */
import { PAYLOAD_MAX } from './header.js';
import { argsN, joinStrings, oneArg, parseUint, splitArgs } from './payload.js';

type Domid = number;
const one = (s: string): Buffer => joinStrings([s]);
const decimal = (n: number | bigint): string => n.toString(10);

/** Request payloads by operation; every string is a byte string (latin1). */
export const requestPayload = {
  read: (path: string) => one(path),
  directory: (path: string) => one(path),
  getPerms: (path: string) => one(path),
  mkdir: (path: string) => one(path),
  rm: (path: string) => one(path),
  /** `path\0value`, the value unterminated (spec §7.2). */
  write: (path: string, value: string | Buffer): Buffer => {
    const head = one(path);
    return Buffer.concat([head, typeof value === 'string' ? Buffer.from(value, 'latin1') : value]);
  },
  /** `path\0p0\0p1\0…`; perms are entries like `n0`, `r5` (spec §6.1), entry 0 = owner. */
  setPerms: (path: string, perms: readonly string[]) => joinStrings([path, ...perms]),
  watch: (path: string, token: string) => joinStrings([path, token]),
  unwatch: (path: string, token: string) => joinStrings([path, token]),
  /** The payload is ignored by the daemons; libxenstore sends one empty string. */
  resetWatches: () => one(''),
  transactionStart: () => one(''),
  transactionEnd: (commit: boolean) => one(commit ? 'T' : 'F'),
  getDomainPath: (domid: Domid) => one(decimal(domid)),
  /** `domid\0gfn\0evtchn\0` (spec §7.11); gfn may exceed 2^53, hence bigint. */
  introduce: (domid: Domid, gfn: number | bigint, port: number) =>
    joinStrings([decimal(domid), decimal(gfn), decimal(port)]),
  release: (domid: Domid) => one(decimal(domid)),
  resume: (domid: Domid) => one(decimal(domid)),
  isDomainIntroduced: (domid: Domid) => one(decimal(domid)),
  setTarget: (domid: Domid, target: Domid) => joinStrings([decimal(domid), decimal(target)]),
  /** `path\0offset\0`, offset in bytes into the joined child list (spec §7.6). */
  directoryPart: (path: string, offset: number) => joinStrings([path, decimal(offset)]),
  control: (cmd: string, ...args: string[]) => joinStrings([cmd, ...args]),
  /** No argument: the caller's own features (spec §7.17). */
  getFeature: (domid?: Domid) => (domid === undefined ? joinStrings([]) : one(decimal(domid))),
  setFeature: (domid: Domid, value: number) => joinStrings([decimal(domid), decimal(value)]),
  /** `[[domid\0]name\0]` (spec §7.18). */
  getQuota: (name?: string, domid?: Domid) =>
    joinStrings(name === undefined ? [] : domid === undefined ? [name] : [decimal(domid), name]),
  setQuota: (name: string, value: number, domid?: Domid) =>
    joinStrings(domid === undefined ? [name, decimal(value)] : [decimal(domid), name, decimal(value)]),
} as const satisfies Record<string, (...args: never[]) => Buffer>;

/** Reply and event payloads the server sends (spec §2 table, §8.3). */
export const replyPayload = {
  /** `OK\0`, the acknowledgement of most operations. */
  ok: () => one('OK'),
  /** `<decimal>\0`: TRANSACTION_START's id, GET_FEATURE, GET_QUOTA values. */
  decimal: (n: number) => one(decimal(n)),
  /** `T\0` / `F\0`: IS_DOMAIN_INTRODUCED. */
  flag: (b: boolean) => one(b ? 'T' : 'F'),
  /** `s\0`: GET_DOMAIN_PATH. */
  string: (s: string) => one(s),
  /** Each entry NUL-terminated; [] ⇒ zero-length payload (DIRECTORY, GET_PERMS; spec §7.5). */
  list: (entries: readonly string[]) => joinStrings(entries),
  /** WATCH_EVENT `epath\0token\0` (spec §8.3). */
  watchEvent: (path: string, token: string) => joinStrings([path, token]),
} as const satisfies Record<string, (...args: never[]) => Buffer>;

/** `parseOk(payload)` is true iff the payload is exactly `OK\0`. */
export function parseOk(payload: Buffer): boolean {
  return oneArg(payload) === 'OK';
}

/** `parseDecimal(payload)` reads `<decimal>\0` as a safe integer, else undefined. */
export function parseDecimal(payload: Buffer): number | undefined {
  const arg = oneArg(payload);
  return arg === undefined ? undefined : parseUint(arg, Number.MAX_SAFE_INTEGER);
}

/**
 * `parseDirectory(payload)` returns the NUL-terminated entries of a DIRECTORY (or GET_PERMS)
 * reply; a zero-length payload is []. No field cap beyond what 4096 bytes can hold.
 */
export function parseDirectory(payload: Buffer): string[] | undefined {
  return splitArgs(payload, PAYLOAD_MAX);
}

/**
 * `parseDirectoryPart(payload)` reads `gen\0name\0…` (spec §7.6); `done` is true when the list
 * ends with the extra empty string. The generation is a u64, kept as its decimal text.
 */
export function parseDirectoryPart(
  payload: Buffer,
): { generation: string; names: string[]; done: boolean } | undefined {
  const fields = splitArgs(payload, PAYLOAD_MAX);
  if (fields === undefined || fields.length === 0) return undefined;
  const [generation, ...names] = fields;
  // Child names are never empty, so an empty string can only be the end marker.
  const done = names.at(-1) === '';
  if (done) names.pop();
  return names.includes('') ? undefined : { generation, names, done };
}

/** `parseWatchEvent(payload)` reads WATCH_EVENT's `epath\0token\0` (spec §8.3). */
export function parseWatchEvent(payload: Buffer): { path: string; token: string } | undefined {
  const args = argsN(payload, 2);
  return args === undefined ? undefined : { path: args[0], token: args[1] };
}
