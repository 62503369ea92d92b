import { describe, expect, it } from 'vitest';
import { DumpFormatError, dumpTree, parseDump, restoreTree, type DumpNode } from './dump.js';

/** A store as a map path → { value, perms, children } with the reader and writer sides. */
function memory() {
  const nodes = new Map<string, { value: Buffer; perms: string[]; children: string[] }>();
  const parentOf = (p: string) => (p.lastIndexOf('/') === 0 ? '/' : p.slice(0, p.lastIndexOf('/')));
  const ops: string[] = [];
  return {
    nodes,
    ops,
    readBytes: async (p: string) => nodes.get(p)!.value,
    getPerms: async (p: string) => nodes.get(p)!.perms,
    directory: async (p: string) => nodes.get(p)!.children,
    write: async (p: string, value: Buffer) => {
      ops.push(`write ${p}`);
      const existing = nodes.get(p);
      if (existing !== undefined) existing.value = value;
      else {
        nodes.set(p, { value, perms: ['n0'], children: [] });
        if (p !== '/') nodes.get(parentOf(p))?.children.push(p.slice(p.lastIndexOf('/') + 1));
      }
    },
    setPerms: async (p: string, perms: readonly string[]) => {
      ops.push(`perms ${p}`);
      nodes.get(p)!.perms = [...perms];
    },
  };
}

const sample: DumpNode = {
  value: 'text é',
  perms: ['n0', 'r5'],
  children: {
    bin: { value: { base64: Buffer.from([0, 0xff, 0xfe]).toString('base64') }, perms: ['b3'], children: {} },
    // A computed key: a literal `__proto__:` would set the prototype instead of adding a child.
    ['__proto__']: { value: '', perms: ['n0'], children: {} },
  },
};

describe('dump format', () => {
  it('restores post-order (perms last) and dumps back the same tree', async () => {
    const m = memory();
    await m.write('/', Buffer.alloc(0));
    const parsed = parseDump(JSON.stringify(sample));
    await restoreTree(m, '/top', parsed);
    expect(m.ops.slice(1)).toEqual(['write /top', 'write /top/bin', 'perms /top/bin', 'write /top/__proto__', 'perms /top/__proto__', 'perms /top']);
    expect(m.nodes.get('/top/bin')!.value).toEqual(Buffer.from([0, 0xff, 0xfe]));
    const dumped = await dumpTree(m, '/top');
    expect(JSON.parse(JSON.stringify(dumped))).toEqual(JSON.parse(JSON.stringify(sample)));
    expect(Object.keys(dumped.children)).toEqual(['bin', '__proto__']);
  });

  it('keeps a child named __proto__ through parsing', () => {
    const parsed = parseDump('{"value":"","perms":["n0"],"children":{"__proto__":{"value":"x","perms":["n0"],"children":{}}}}');
    expect(Object.keys(parsed.children)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(parsed.children)).toBe(Object.prototype);
  });

  it.each([
    ['not json', /not JSON/],
    ['[]', /^\$: expected an object/],
    ['{"value":3,"perms":["n0"],"children":{}}', /^\$: value must be/],
    ['{"value":{"base64":"@@"},"perms":["n0"],"children":{}}', /^\$: value must be/],
    ['{"value":"","perms":[],"children":{}}', /^\$: perms must be/],
    ['{"value":"","perms":["x0"],"children":{}}', /^\$: perms must be/],
    ['{"value":"","perms":["n0"]}', /^\$: children must be/],
    ['{"value":"","perms":["n0"],"children":{},"extra":1}', /unknown field "extra"/],
    ['{"value":"","perms":["n0"],"children":{"a/b":{"value":"","perms":["n0"],"children":{}}}}', /bad child name "a\/b"/],
    ['{"value":"","perms":["n0"],"children":{"a":{"value":"","perms":"n0","children":{}}}}', /^\$\.children\.a: perms/],
  ])('rejects %s', (text, message) => {
    const e = (() => {
      try {
        parseDump(text);
      } catch (x) {
        return x;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(DumpFormatError);
    expect((e as Error).message).toMatch(message);
  });
});
