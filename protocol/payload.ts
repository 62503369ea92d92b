/**
 * Splitting and joining the NUL-separated arguments of a payload (spec §2 notes; oxenstored
 * `process.ml` `split`, `split_one_path`; cxenstored `onearg`, `get_strings`).
 *
 * Malformed input is reported as `undefined`, never thrown: it is an expected outcome of
 * reading a peer's bytes, and the server maps it to EINVAL in one place (spec §5, "malformed
 * payload"). Strings are byte strings: each payload byte becomes one char via latin1, so any
 * value 0–255 round-trips exactly through `Buffer.from(s, 'latin1')`.
 *
 * Trailing bytes after the last NUL are malformed here (oxenstored's rule). cxenstored
 * silently ignores them, but no real client sends them and accepting less is safer.
 */

/** Default cap on the number of fields; oxenstored splits at most 8 "when we don't want a limit". */
export const ARGS_MAX = 8;

/**
 * `splitArgs(payload, max)` returns the NUL-terminated strings of `payload` (empty payload ⇒
 * []), or undefined if bytes follow the last NUL or there are more than `max` strings.
 * The cap stops the scan early, so a hostile payload of 4096 NULs costs at most `max` strings.
 */
export function splitArgs(payload: Buffer, max: number = ARGS_MAX): string[] | undefined {
  const args: string[] = [];
  let start = 0;
  while (start < payload.length) {
    const end = payload.indexOf(0, start);
    if (end < 0 || args.length === max) return undefined;
    args.push(payload.toString('latin1', start, end));
    start = end + 1;
  }
  return args;
}

/**
 * `oneArg(payload)` returns the single string of `"s\0"`, or undefined unless the payload's
 * only NUL is its last byte (cxenstored `onearg`: missing NUL or extra strings ⇒ EINVAL).
 */
export function oneArg(payload: Buffer): string | undefined {
  const end = payload.indexOf(0);
  return end >= 0 && end === payload.length - 1 ? payload.toString('latin1', 0, end) : undefined;
}

/** `argsN(payload, n)` returns exactly `n` NUL-terminated strings, or undefined. */
export function argsN(payload: Buffer, n: number): string[] | undefined {
  const args = splitArgs(payload, n);
  return args !== undefined && args.length === n ? args : undefined;
}

/**
 * `writeArgs(payload)` splits WRITE's `path\0value`: the value is every byte after the first
 * NUL, unterminated, possibly empty or containing NULs (spec §7.2). Undefined if no NUL.
 */
export function writeArgs(payload: Buffer): { path: string; value: string } | undefined {
  const end = payload.indexOf(0);
  if (end < 0) return undefined;
  return { path: payload.toString('latin1', 0, end), value: payload.toString('latin1', end + 1) };
}

/**
 * `flagArg(payload)` reads exactly `T\0` (true) or `F\0` (false), else undefined: the cxenstored
 * rule for TRANSACTION_END (spec §2 notes), also the IS_DOMAIN_INTRODUCED reply.
 */
export function flagArg(payload: Buffer): boolean | undefined {
  const arg = oneArg(payload);
  return arg === 'T' ? true : arg === 'F' ? false : undefined;
}

/**
 * `parseUint(s, max)` returns the value of a plain decimal string in [0, max], else undefined.
 * Deliberately stricter than strtol/int_of_string (no sign, hex or `_`; spec §6.1) and
 * range-checked (spec §12, XSA-420). Leading zeros are accepted.
 */
export function parseUint(s: string, max: number): number | undefined {
  if (!/^[0-9]+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= max ? n : undefined;
}

/**
 * `joinStrings(list)` encodes each string followed by a NUL (DIRECTORY, GET_PERMS replies and
 * most requests); an empty list gives a zero-length payload (spec §7.5).
 *
 * Joined by `Array.prototype.join` `JOIN_RUN` strings at a time, then written with one copy
 * each, not a `write` (a call into C++) per string: code that lists a large directory runs once
 * per node version, so before the JIT has compiled it, where 20,000 writes took 17-48 ms and
 * this 3-20 ms (fresh processes, load 5-7; issue 18). One join of the whole list was slower
 * still (6-31 ms: one 700 KB string).
 */
export function joinStrings(list: readonly string[]): Buffer {
  const n = list.length;
  if (n <= JOIN_RUN) {
    if (n === 0) return Buffer.alloc(0);
    const text = list.join('\0');
    const out = Buffer.allocUnsafe(text.length + 1);
    out.write(text, 0, 'latin1');
    out[text.length] = 0;
    return out;
  }
  const runs: string[] = [];
  let len = 0;
  for (let i = 0; i < n; i += JOIN_RUN) {
    const text = list.slice(i, i + JOIN_RUN).join('\0');
    runs.push(text);
    len += text.length + 1;
  }
  const out = Buffer.allocUnsafe(len);
  let off = 0;
  for (const text of runs) {
    off += out.write(text, off, 'latin1');
    out[off++] = 0;
  }
  return out;
}

/** Strings joined at a time by `joinStrings`. */
const JOIN_RUN = 256;
