import { describe, expect, it } from 'vitest';
import { XsError } from '../protocol/index.js';
import { ListingError, listTree, type ListOptions, type TreeReader } from './tree-listing.js';

/** An in-memory tree: path → value (undefined: unreadable), perms (undefined: unreadable), children. */
type Entry = { value?: string; perms?: string[]; children: string[]; listable?: boolean };

function reader(tree: Record<string, Entry>): TreeReader {
  const get = (p: string): Entry => {
    const e = tree[p];
    if (e === undefined) throw new XsError('ENOENT');
    return e;
  };
  return {
    directory: async (p) => {
      const e = get(p);
      if (e.listable === false) throw new XsError('EACCES');
      return e.children;
    },
    readBytes: async (p) => {
      const v = get(p).value;
      if (v === undefined) throw new XsError('EACCES');
      return Buffer.from(v, 'latin1');
    },
    getPerms: async (p) => {
      const perms = get(p).perms;
      if (perms === undefined) throw new XsError('EACCES');
      return perms;
    },
  };
}

async function list(tree: Record<string, Entry>, path: string, opts: Partial<ListOptions> = {}) {
  let out = '';
  const warnings: string[] = [];
  await listTree(reader(tree), path, { perms: false, fullPaths: false, width: 80, ...opts }, { out: (s) => (out += s), warn: (s) => warnings.push(s) });
  return { out, warnings };
}

const a50 = 'a'.repeat(50);
const long: Record<string, Entry> = {
  '/long': { value: '', perms: ['n0'], children: [a50, 'b', 'c'] },
  [`/long/${a50}`]: { value: 'v'.repeat(91), perms: ['n0'], children: [] },
  '/long/b': { value: '1234567890'.repeat(5) + '12345', perms: ['n0'], children: [] },
  '/long/c': { value: '1234567890'.repeat(7) + '1', perms: ['n0'], children: [] },
};
const nested: Record<string, Entry> = {
  '/': { value: '', perms: ['n0'], children: ['a'] },
  '/a': { value: '', perms: ['n0'], children: ['b', 'c'] },
  '/a/b': { value: 'hello', perms: ['n0'], children: ['d'] },
  '/a/b/d': { value: 'q"uote', perms: ['n0'], children: [] },
  '/a/c': { value: 'x y', perms: ['n0', 'r5', 'w3'], children: [] },
};

// Every expected text below is what xenstore-ls (Xen 4.17) printed for the same tree, stdout not a terminal.
describe('listTree (xenstore-ls format)', () => {
  it('indents by depth and quotes values', async () => {
    expect((await list(nested, '/a')).out).toBe('b = "hello"\n d = "q"uote"\nc = "x y"\n');
    expect((await list(nested, '/')).out).toBe('a = ""\n b = "hello"\n  d = "q"uote"\n c = "x y"\n');
  });

  it('pads with dots to column 60 before the permissions (-p)', async () => {
    expect((await list(nested, '/a', { perms: true })).out).toBe(
      'b = "hello"  . . . . . . . . . . . . . . . . . . . . . . . .  (n0)\n' +
        ' d = "q"uote"  . . . . . . . . . . . . . . . . . . . . . . .  (n0)\n' +
        'c = "x y"  . . . . . . . . . . . . . . . . . . . . . . . . .  (n0,r5,w3)\n',
    );
  });

  it('prints full paths without padding (-f)', async () => {
    expect((await list(nested, '/a', { perms: true, fullPaths: true })).out).toBe(
      '/a/b = "hello"   (n0)\n/a/b/d = "q"uote"   (n0)\n/a/c = "x y"   (n0,r5,w3)\n',
    );
  });

  it('cuts lines at the width, and never with -f', async () => {
    expect((await list(long, '/long')).out).toBe(
      `${a50} = "${'v'.repeat(22)}\\..."\n` +
        `b = "${'1234567890'.repeat(5)}12345"\n` +
        `c = "${'1234567890'.repeat(7)}1"\n`,
    );
    expect((await list(long, '/long', { perms: true })).out).toBe(
      `${a50} = "${'v'.repeat(22)}\\..."  (n0)\n` +
        `b = "${'1234567890'.repeat(5)}12345"   (n0)\n` +
        `c = "${'1234567890'.repeat(7)}1"   (n0)\n`,
    );
    expect((await list(long, '/long', { fullPaths: true })).out.split('\n')[0]).toBe(`/long/${a50} = "${'v'.repeat(91)}"`);
  });

  it('uses the terminal width when given', async () => {
    expect((await list(long, '/long', { width: 40 })).out.split('\n')[1]).toBe(`b = "${'1234567890'.repeat(3)}1\\..."`);
  });

  it('escapes values like xenstore-read', async () => {
    const tree = { '/bin': { value: '', children: ['x'] }, '/bin/x': { value: '\x01\x07\x08\t\n\\\xff', perms: ['n0'], children: [] } };
    expect((await list(tree, '/bin', { perms: true })).out).toBe('x = "\\001\\007\\x08\\t\\n\\\\\\xff" . . . . . . . . . . . . . . . .  (n0)\n');
  });

  it('shows an unreadable value as "name:" and warns about unreadable permissions', async () => {
    const tree = {
      '/g': { value: '', children: ['pub', 'sec'] },
      '/g/pub': { value: 'x', perms: ['r5'], children: [] },
      '/g/sec': { children: [] },
    };
    expect((await list(tree, '/g')).out).toBe('pub = "x"\nsec:\n\n');
    const { out, warnings } = await list(tree, '/g', { perms: true });
    expect(out).toBe('pub = "x"  . . . . . . . . . . . . . . . . . . . . . . . . .  (r5)\nsec:\n\n');
    expect(warnings).toEqual(['could not access permissions for sec: EACCES']);
  });

  it('skips a directory that vanished below the top, and stops at one it may not list', async () => {
    const vanished = { '/v': { value: '', children: ['gone', 'here'] }, '/v/here': { value: '1', children: [] } };
    // '/v/gone' cannot be read (ENOENT → "gone:") and its listing is skipped.
    expect((await list(vanished, '/v')).out).toBe('gone:\n\nhere = "1"\n');
    const locked = { '/l': { value: '', children: ['x'] }, '/l/x': { value: '', children: [], listable: false } };
    const e = await list(locked, '/l').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ListingError);
    expect((e as ListingError).path).toBe('/l/x');
    expect(((e as ListingError).cause as XsError).code).toBe('EACCES');
    expect(await list({}, '/nope').catch((x: unknown) => (x as ListingError).path)).toBe('/nope');
  });
});
