/**
 * Converting between JavaScript strings and the protocol's byte strings.
 *
 * protocol/ treats every string as a byte string: one char per byte, encoded with latin1
 * (`encodeFrame`, `joinStrings`). A JavaScript string with chars above U+00FF would be
 * truncated to their low byte there, so `'/aŁ'` would silently become `/aA`. The client
 * therefore turns its callers' strings into the byte string of their UTF-8 encoding before
 * they reach protocol/, and turns names that come back (child names, event paths, tokens)
 * from bytes into text again. Paths are ASCII in practice (spec §3.1), where both
 * conversions are the identity and cost one regex test.
 */

const ASCII = /^[\x00-\x7f]*$/;

/** `toWire(s)` is the byte string (one char per byte) of `s` encoded as UTF-8. */
export function toWire(s: string): string {
  return ASCII.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1');
}

/** `fromWire(b)` decodes the byte string `b` as UTF-8 (the inverse of `toWire`). */
export function fromWire(b: string): string {
  return ASCII.test(b) ? b : Buffer.from(b, 'latin1').toString('utf8');
}
