import { describe, expect, it } from 'vitest';
import { XsError } from '../protocol/index.js';
import {
  ROOT,
  commonPrefixLength,
  homeOf,
  isAncestorOrSelf,
  isSpecialName,
  joinSegs,
  parseNodePath,
  parseWatchPath,
  relativeTo,
} from './path.js';

const MAX = 2048;

/** The error code `fn` throws, or 'none'. Anything thrown that is not an XsError fails the test. */
function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'none';
  } catch (e) {
    if (!(e instanceof XsError)) throw e;
    return e.code;
  }
}

const node = (raw: string, domid = 0, pathMax = MAX) => parseNodePath(raw, domid, pathMax);

describe('parseNodePath: resolution', () => {
  it.each([
    ['/local', 0, '/local', ['local']],
    ['/a/b/c', 7, '/a/b/c', ['a', 'b', 'c']],
    ['data', 0, '/local/domain/0/data', ['local', 'domain', '0', 'data']],
    ['device/vif/0', 5, '/local/domain/5/device/vif/0', ['local', 'domain', '5', 'device', 'vif', '0']],
    ['x', 65535, '/local/domain/65535/x', ['local', 'domain', '65535', 'x']],
    ['/A-Z_a-z09@', 0, '/A-Z_a-z09@', ['A-Z_a-z09@']],
    ['a@b', 3, '/local/domain/3/a@b', ['local', 'domain', '3', 'a@b']],
    ['/a/@b', 0, '/a/@b', ['a', '@b']],
  ])('%j for domain %i is %j', (raw, domid, path, segs) => {
    const p = node(raw, domid);
    expect(p.kind).toBe('node');
    expect(p.path).toBe(path);
    expect(p.segs).toEqual(segs);
    expect(joinSegs(p.segs)).toBe(path);
  });

  it('the root is `/` with no segments, for every domain', () => {
    expect(node('/')).toBe(ROOT);
    expect(node('/', 9)).toBe(ROOT);
    expect(ROOT.segs).toEqual([]);
    expect(joinSegs([])).toBe('/');
  });

  it('homeOf is the directory relative paths resolve under', () => {
    expect(homeOf(0)).toBe('/local/domain/0');
    expect(homeOf(12)).toBe('/local/domain/12');
    expect(node('x', 12).path).toBe(`${homeOf(12)}/x`);
  });
});

describe('parseNodePath: EINVAL', () => {
  it.each([
    ['empty', ''],
    ['double slash', '//'],
    ['double slash inside', '/a//b'],
    ['double slash at start', '//a'],
    ['trailing slash', '/a/'],
    ['trailing slash deep', '/a/b/'],
    ['relative with trailing slash', 'a/'],
    ['relative with double slash', 'a//b'],
    ['space', '/a b'],
    ['dot', '/a.b'],
    ['dot component', '/a/./b'],
    ['dot-dot component', '/a/../b'],
    ['colon', '/a:b'],
    ['non-ASCII', '/caf\u00e9'],
    ['non-Latin1', '/\u4e2d'],
    ['NUL', '/a\u0000b'],
    ['trailing NUL', '/a\u0000'],
    ['tab', '/a\tb'],
    ['newline', '/a\n'],
    ['backslash', '/a\\b'],
    ['XSA-481 /local/domain/', '/local/domain/'],
    ['special name', '@releaseDomain'],
    ['other @ name', '@foo'],
    ['bare @', '@'],
  ])('%s (%j)', (_name, raw) => {
    expect(codeOf(() => node(raw))).toBe('EINVAL');
    expect(codeOf(() => node(raw, 5))).toBe('EINVAL');
  });

  it('the error is an XsError with a message', () => {
    expect(() => node('/a//b')).toThrow(XsError);
    expect(() => node('/a//b')).toThrow(/invalid path/);
  });
});

describe('parseNodePath: XSA-323 length rule', () => {
  const L = 10;
  const x = (n: number) => 'x'.repeat(n);

  it('outside /local/domain/N/ the whole canonical path counts', () => {
    expect(codeOf(() => node(`/${x(L - 1)}`, 0, L))).toBe('none'); // 10 bytes
    expect(codeOf(() => node(`/${x(L)}`, 0, L))).toBe('EINVAL'); // 11 bytes
    expect(codeOf(() => node(`/vm/${x(L - 4)}`, 0, L))).toBe('none');
    expect(codeOf(() => node(`/vm/${x(L - 3)}`, 0, L))).toBe('EINVAL');
  });

  it('below /local/domain/N/ only the part after the prefix counts', () => {
    expect(codeOf(() => node(`/local/domain/5/${x(L)}`, 0, L))).toBe('none');
    expect(codeOf(() => node(`/local/domain/5/${x(L + 1)}`, 0, L))).toBe('EINVAL');
    expect(codeOf(() => node(`/local/domain/12345/${x(L)}`, 0, L))).toBe('none');
    expect(codeOf(() => node(`/local/domain/12345/a/${x(L - 2)}`, 0, L))).toBe('none');
    expect(codeOf(() => node(`/local/domain/12345/a/${x(L - 1)}`, 0, L))).toBe('EINVAL');
  });

  it('a relative path counts the same whatever the domid (migration-proof)', () => {
    for (const domid of [0, 7, 123, 65535]) {
      expect(codeOf(() => node(x(L), domid, L))).toBe('none');
      expect(codeOf(() => node(x(L + 1), domid, L))).toBe('EINVAL');
    }
  });

  it('a domid of more than 5 digits is not a domain prefix: the whole path counts', () => {
    // 21 bytes of prefix alone: over the limit of 20 even with a 1-byte rest.
    expect(codeOf(() => node(`/local/domain/123456/a`, 0, 20))).toBe('EINVAL');
    expect(codeOf(() => node(`/local/domain/12345/a`, 0, 20))).toBe('none');
  });

  it('the default limit is 2048 bytes after the home prefix', () => {
    expect(codeOf(() => node(x(2048), 3))).toBe('none');
    expect(codeOf(() => node(x(2049), 3))).toBe('EINVAL');
    expect(codeOf(() => node(`/${x(2047)}`))).toBe('none');
    expect(codeOf(() => node(`/${x(2048)}`))).toBe('EINVAL');
  });
});

describe('parseWatchPath', () => {
  it('accepts @ names of valid characters, as special paths', () => {
    for (const raw of ['@releaseDomain', '@introduceDomain', '@', '@foo', '@a/b', '@a-b_c@9']) {
      const p = parseWatchPath(raw, 5, MAX);
      expect(p).toEqual({ kind: 'special', path: raw });
    }
  });

  it('refuses @ names with bad characters or over the limit', () => {
    expect(codeOf(() => parseWatchPath('@a b', 0, MAX))).toBe('EINVAL');
    expect(codeOf(() => parseWatchPath('@a.b', 0, MAX))).toBe('EINVAL');
    expect(codeOf(() => parseWatchPath('@\u00e9', 0, MAX))).toBe('EINVAL');
    expect(codeOf(() => parseWatchPath(`@${'x'.repeat(9)}`, 0, 10))).toBe('none');
    expect(codeOf(() => parseWatchPath(`@${'x'.repeat(10)}`, 0, 10))).toBe('EINVAL');
  });

  it('treats everything else as a tree path, relative allowed', () => {
    expect(parseWatchPath('/a/b', 5, MAX)).toEqual(node('/a/b'));
    expect(parseWatchPath('x', 5, MAX)).toEqual(node('x', 5));
    expect(parseWatchPath('/', 5, MAX)).toBe(ROOT);
    for (const raw of ['', '/a/', '//', '/local/domain/', '/a b']) {
      expect(codeOf(() => parseWatchPath(raw, 5, MAX))).toBe('EINVAL');
    }
  });

  it('isSpecialName knows exactly the two special names', () => {
    expect(isSpecialName('@releaseDomain')).toBe(true);
    expect(isSpecialName('@introduceDomain')).toBe(true);
    expect(isSpecialName('@foo')).toBe(false);
    expect(isSpecialName('releaseDomain')).toBe(false);
  });
});

describe('relativeTo', () => {
  it.each([
    ['/local/domain/5/device/vif', 5, 'device/vif'],
    ['/local/domain/5/x', 5, 'x'],
    ['/local/domain/5', 5, '/local/domain/5'], // the home itself has no relative form
    ['/local/domain/5/x', 6, '/local/domain/5/x'],
    ['/local/domain/55/x', 5, '/local/domain/55/x'], // not a prefix component-wise
    ['/vm/1', 0, '/vm/1'],
    ['/', 0, '/'],
  ])('%j for domain %i is %j', (path, domid, want) => {
    expect(relativeTo(path, domid)).toBe(want);
  });

  it('undoes relative resolution', () => {
    for (const rel of ['a', 'a/b', 'device/vbd/768/state']) {
      expect(relativeTo(node(rel, 9).path, 9)).toBe(rel);
    }
  });
});

describe('isAncestorOrSelf', () => {
  it.each([
    ['/', '/', true],
    ['/', '/a', true],
    ['/', '/a/b/c', true],
    ['/a', '/a', true],
    ['/a', '/a/b', true],
    ['/a', '/a/b/c', true],
    ['/a/b', '/a/b/c', true],
    ['/a', '/ab', false],
    ['/a/b', '/a/bc', false],
    ['/a/b', '/a', false],
    ['/a', '/', false],
    ['/a', '/b', false],
    ['/a/b', '/a/c/b', false],
  ])('(%j, %j) is %s', (a, b, want) => {
    expect(isAncestorOrSelf(a, b)).toBe(want);
  });
});

describe('commonPrefixLength', () => {
  it.each([
    [[], [], 0],
    [[], ['a'], 0],
    [['a'], ['a'], 1],
    [['a', 'b'], ['a', 'c'], 1],
    [['a', 'b', 'c'], ['a', 'b'], 2],
    [['a', 'b'], ['a', 'b', 'c'], 2],
    [['x'], ['a'], 0],
    [['a', 'b', 'c'], ['a', 'x', 'c'], 1], // stops at the first difference
    [['ab'], ['a'], 0], // compares whole segments, not characters
  ])('(%j, %j) is %i', (a, b, want) => {
    expect(commonPrefixLength(a, b)).toBe(want);
    expect(commonPrefixLength(b, a)).toBe(want);
  });
});
