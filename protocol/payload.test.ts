import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ARGS_MAX, argsN, flagArg, joinStrings, oneArg, parseUint, splitArgs, writeArgs } from './payload.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
/** Byte strings without NUL, i.e. anything that can be one argument. */
const arg = fc.string({ unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 20 });

describe('splitArgs', () => {
  it('returns the NUL-terminated strings', () => {
    expect(splitArgs(b(''))).toEqual([]);
    expect(splitArgs(b('\0'))).toEqual(['']);
    expect(splitArgs(b('a\0bc\0'))).toEqual(['a', 'bc']);
    expect(splitArgs(b('a\0\0'))).toEqual(['a', '']);
  });

  it('rejects bytes after the last NUL', () => {
    expect(splitArgs(b('a'))).toBeUndefined();
    expect(splitArgs(b('a\0b'))).toBeUndefined();
  });

  it('caps the number of strings', () => {
    expect(splitArgs(b('a\0b\0c\0'), 3)).toEqual(['a', 'b', 'c']);
    expect(splitArgs(b('a\0b\0c\0'), 2)).toBeUndefined();
    expect(splitArgs(b('\0'.repeat(ARGS_MAX)))).toHaveLength(ARGS_MAX);
    expect(splitArgs(b('\0'.repeat(ARGS_MAX + 1)))).toBeUndefined();
    expect(splitArgs(b(''), 0)).toEqual([]);
    expect(splitArgs(b('\0'), 0)).toBeUndefined();
  });

  it('keeps every non-NUL byte value', () => {
    const bytes = Buffer.from([...Array.from({ length: 255 }, (_, i) => i + 1), 0]);
    expect(splitArgs(bytes)?.[0]).toBe(bytes.toString('latin1', 0, 255));
  });
});

describe('oneArg', () => {
  it('accepts exactly one string whose NUL is the last byte', () => {
    expect(oneArg(b('/a/b\0'))).toBe('/a/b');
    expect(oneArg(b('\0'))).toBe('');
  });

  it('rejects a missing NUL, extra strings and trailing bytes (spec §2 notes)', () => {
    for (const s of ['', '/a', '/a\0b\0', '/a\0b', '/a\0\0']) expect(oneArg(b(s))).toBeUndefined();
  });
});

describe('argsN', () => {
  it('demands the exact count', () => {
    expect(argsN(b('/p\0tok\0'), 2)).toEqual(['/p', 'tok']);
    expect(argsN(b('/p\0'), 2)).toBeUndefined();
    expect(argsN(b('/p\0tok\0x\0'), 2)).toBeUndefined();
    expect(argsN(b('/p\0tok'), 2)).toBeUndefined();
  });
});

describe('writeArgs', () => {
  it('takes every byte after the first NUL as the value', () => {
    expect(writeArgs(b('/a\0x\0y\0'))).toEqual({ path: '/a', value: 'x\0y\0' });
    expect(writeArgs(b('/a\0'))).toEqual({ path: '/a', value: '' });
    expect(writeArgs(b('/a\0v'))).toEqual({ path: '/a', value: 'v' });
  });

  it('rejects a payload without NUL', () => {
    expect(writeArgs(b('/a'))).toBeUndefined();
    expect(writeArgs(b(''))).toBeUndefined();
  });

  it('round-trips arbitrary value bytes', () => {
    fc.assert(
      fc.property(arg, fc.uint8Array({ maxLength: 100 }), (path, value) => {
        const w = writeArgs(Buffer.concat([b(path), Buffer.from([0]), value]));
        expect(w?.path).toBe(path);
        expect(Buffer.from(w!.value, 'latin1').equals(value)).toBe(true);
      }),
    );
  });
});

describe('flagArg', () => {
  it('reads T and F only in their exact form', () => {
    expect(flagArg(b('T\0'))).toBe(true);
    expect(flagArg(b('F\0'))).toBe(false);
    for (const s of ['T', 'F', 't\0', 'TF\0', 'T\0\0', '', '\0']) expect(flagArg(b(s))).toBeUndefined();
  });
});

describe('parseUint', () => {
  it('accepts plain decimals within range', () => {
    expect(parseUint('0', 65535)).toBe(0);
    expect(parseUint('65535', 65535)).toBe(65535);
    expect(parseUint('007', 65535)).toBe(7);
  });

  it('rejects everything else', () => {
    for (const s of ['', '65536', '-1', '+1', ' 1', '1 ', '0x10', '1e3', '1.0', '1_0', '99999999999999999999']) {
      expect(parseUint(s, 65535)).toBeUndefined();
    }
  });
});

describe('joinStrings', () => {
  it('NUL-terminates each string; [] is a zero-length payload', () => {
    expect(joinStrings([]).length).toBe(0);
    expect(joinStrings(['a', '', 'bc']).toString('latin1')).toBe('a\0\0bc\0');
    expect([...joinStrings(['\xff\x80'])]).toEqual([0xff, 0x80, 0]);
  });

  it('is the same bytes for long lists, joined by runs, whatever the run boundaries', () => {
    for (const n of [255, 256, 257, 511, 512, 513, 2000]) {
      const list = Array.from({ length: n }, (_, i) => (i % 7 === 3 ? '' : `${i}\xfe`.repeat(1 + (i % 3))));
      expect(joinStrings(list).toString('latin1')).toBe(list.map((s) => `${s}\0`).join(''));
    }
  });

  it('is undone by splitArgs', () => {
    fc.assert(
      fc.property(fc.array(arg, { maxLength: ARGS_MAX }), (list) => {
        expect(splitArgs(joinStrings(list))).toEqual(list);
      }),
    );
  });
});
