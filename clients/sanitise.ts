/**
 * The escaping of `xenstore-read`/`xenstore-ls` and its inverse in `xenstore-write`
 * (`xenstore_client.c` `sanitise_value` / `unsanitise_value`). Values are arbitrary bytes
 * (spec §7.2); the tools print printable ASCII as is and escape the rest, so a value with a
 * newline or binary in it stays on one line and round-trips through `write`.
 */

/**
 * `sanitise(bytes)` is the printable form: ' '..'~' as is except '\', then `\t \n \r \\`,
 * `\NNN` (3 octal digits) below 8, and `\xHH` (2 lowercase hex digits) for any other byte.
 */
export function sanitise(bytes: Uint8Array): string {
  let out = '';
  for (const c of bytes) {
    if (c >= 0x20 && c <= 0x7e && c !== 0x5c) out += String.fromCharCode(c);
    else if (c === 0x09) out += '\\t';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x5c) out += '\\\\';
    else if (c < 0o10) out += `\\${c.toString(8).padStart(3, '0')}`;
    else out += `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return out;
}

const HEX = /^[0-9a-fA-F]{1,2}/;
const OCTAL = /^[0-7]{1,3}/;

/**
 * `unsanitise(text)` is the bytes `text` stands for: its UTF-8 encoding with the escapes of
 * `sanitise` decoded, and, like `unsanitise_value`, `\` before any other character dropped
 * (`\q` is `q`), `\x` without hex digits is `x`, and octal above `\377` keeps its low byte.
 * One deliberate difference: a trailing lone `\` stays a `\` (the C code turns it into a
 * NUL byte, which nobody means).
 */
export function unsanitise(text: string): Buffer {
  const bytes: number[] = [];
  const literal = (s: string): void => {
    for (const b of Buffer.from(s, 'utf8')) bytes.push(b);
  };
  let i = 0;
  while (i < text.length) {
    const slash = text.indexOf('\\', i);
    if (slash < 0) {
      literal(text.slice(i));
      break;
    }
    literal(text.slice(i, slash));
    const c = text[slash + 1];
    i = slash + 2;
    if (c === undefined) bytes.push(0x5c);
    else if (c === 't') bytes.push(0x09);
    else if (c === 'n') bytes.push(0x0a);
    else if (c === 'r') bytes.push(0x0d);
    else if (c === 'x') {
      const hex = HEX.exec(text.slice(i))?.[0];
      if (hex === undefined) bytes.push(0x78);
      else {
        bytes.push(parseInt(hex, 16));
        i += hex.length;
      }
    } else if (c >= '0' && c <= '7') {
      const oct = OCTAL.exec(text.slice(slash + 1))![0];
      bytes.push(parseInt(oct, 8) & 0xff);
      i = slash + 1 + oct.length;
    } else {
      const ch = String.fromCodePoint(text.codePointAt(slash + 1)!); // whole char, not half a surrogate pair
      literal(ch);
      i = slash + 1 + ch.length;
    }
  }
  return Buffer.from(bytes);
}
