import { isUtf8 } from 'node:buffer';

export type Encoding = 'utf8' | 'base64';

/**
 * Values are bytes (spec §4); JSON carries text. A value goes out as UTF-8 when it is valid UTF-8
 * and the client did not ask for base64, else as base64, and says which.
 */
export function encodeValue(bytes: Buffer, asked?: Encoding): { value: string; encoding: Encoding } {
  if (asked !== 'base64' && isUtf8(bytes)) return { value: bytes.toString('utf8'), encoding: 'utf8' };
  return { value: bytes.toString('base64'), encoding: 'base64' };
}

/** `decodeValue(text, encoding)` is the bytes a client meant (schemas checked base64 already). */
export function decodeValue(text: string, encoding: Encoding | undefined): Buffer {
  return Buffer.from(text, encoding === 'base64' ? 'base64' : 'utf8');
}
