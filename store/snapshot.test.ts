import { crc32 } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { DOM0, guest, type Caller } from './caller.js';
import { checkStore } from './check.js';
import { XsError } from '../protocol/index.js';
import { DEFAULT_LIMITS } from './limits.js';
import { execute } from './operations.js';
import type { StoreRequest } from './request.js';
import { bufferSource, decodeSnapshot, encodeSnapshot, openSnapshot, snapshotSteps, type SnapshotSource } from './snapshot.js';
import { advance, createStore, type Store } from './store.js';
import { XsNode } from './node.js';
import { SPECIAL_NAMES } from './path.js';

const LIMITS = { ...DEFAULT_LIMITS, nodes: Infinity };

function apply(s: Store, req: StoreRequest, caller: Caller = DOM0): Store {
  try {
    return advance(execute(s, caller, LIMITS, req).store, s);
  } catch (e) {
    if (e instanceof XsError) return s; // a refused request changes nothing
    throw e;
  }
}

function roundTrip(s: Store): Store {
  const back = decodeSnapshot(encodeSnapshot(s));
  expect(checkStore(back)).toEqual([]);
  expect(back).toEqual(s);
  return back;
}

describe('snapshot codec', () => {
  it('round-trips the initial store', () => {
    roundTrip(createStore());
  });

  it('round-trips every byte value, permissions, special names and the generation', () => {
    let s = createStore();
    let all = '';
    for (let b = 0; b < 256; b++) all += String.fromCharCode(b);
    s = apply(s, { op: 'write', path: '/local/domain/5/bytes', value: all });
    s = apply(s, { op: 'write', path: '/local/domain/5/empty', value: '' });
    s = apply(s, { op: 'set-perms', path: '/local/domain/5', perms: ['n5', 'r0', 'b7', 'w65535'] });
    s = apply(s, { op: 'write', path: '/local/domain/5/mine', value: 'g' }, guest(5));
    s = apply(s, { op: 'set-perms', path: '@releaseDomain', perms: ['r0', 'r5'] });
    s = apply(s, { op: 'mkdir', path: '/a-b_c@d/E/9' });
    const back = roundTrip(s);
    expect(back.generation).toBe(s.generation);
    expect(back.generation).toBeGreaterThan(0);
    expect(back.quota.get(5)).toBe(s.quota.get(5));
    expect(back.root.children.get('local')!.children.get('domain')!.children.get('5')!.children.get('bytes')!.value).toBe(all);
  });

  it('shares one permission list between nodes that had equal lists', () => {
    let s = createStore();
    for (let i = 0; i < 5; i++) s = apply(s, { op: 'write', path: `/x/${i}`, value: String(i) });
    const back = decodeSnapshot(encodeSnapshot(s));
    const kids = [...back.root.children.get('x')!.children.values()];
    expect(new Set(kids.map((k) => k.perms)).size).toBe(1);
  });

  it('in slices (snapshotSteps) gives the very same bytes, pausing as often as asked', () => {
    let s = createStore();
    for (let i = 0; i < 300; i++) s = apply(s, { op: 'write', path: `/d${i % 7}/k${i}`, value: `v${i}` });
    const whole = encodeSnapshot(s);
    const steps = snapshotSteps(s, 10);
    let pauses = 0;
    let r = steps.next();
    while (r.done !== true) {
      pauses++;
      r = steps.next();
    }
    expect(r.value.equals(whole)).toBe(true);
    // ~310 nodes, walked twice, 10 per step; then the checksum in 640-byte slices.
    expect(pauses).toBeGreaterThanOrEqual(Math.floor((2 * 310) / 10));
  });

  it('round-trips a deep chain without recursion limits (XSA-418)', () => {
    let s = createStore();
    const path = '/' + Array.from({ length: 600 }, (_, i) => `d${i}`).join('/');
    s = apply(s, { op: 'write', path, value: 'deep' });
    roundTrip(s);
  });

  it('round-trips stores built by random operations (fast-check)', () => {
    const seg = fc.constantFrom('a', 'b', 'c', 'local', 'domain', '5', '7', 'x_y');
    const path = fc.array(seg, { minLength: 1, maxLength: 5 }).map((xs) => '/' + xs.join('/'));
    const value = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a).toString('latin1'));
    const perms = fc.array(fc.tuple(fc.constantFrom('n', 'r', 'w', 'b'), fc.constantFrom(0, 5, 7, 65535)), {
      minLength: 1,
      maxLength: 4,
    });
    const req: fc.Arbitrary<StoreRequest> = fc.oneof(
      fc.tuple(path, value).map(([p, v]): StoreRequest => ({ op: 'write', path: p, value: v })),
      path.map((p): StoreRequest => ({ op: 'mkdir', path: p })),
      path.map((p): StoreRequest => ({ op: 'rm', path: p })),
      fc
        .tuple(fc.oneof(path, fc.constant('@introduceDomain')), perms)
        .map(([p, ps]): StoreRequest => ({ op: 'set-perms', path: p, perms: ps.map(([a, d]) => `${a}${d}`) })),
    );
    const step = fc.tuple(req, fc.constantFrom<Caller>(DOM0, guest(5), guest(7)));
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        let s = createStore();
        for (const [r, caller] of steps) s = apply(s, r, caller);
        roundTrip(s);
      }),
      { numRuns: 200 },
    );
  });

  it('detects any flipped byte, truncation or trailing garbage, never returning a partial tree', () => {
    let s = createStore();
    for (let i = 0; i < 20; i++) s = apply(s, { op: 'write', path: `/t/${i % 4}/${i}`, value: `v${i}` });
    const good = encodeSnapshot(s);
    for (let at = 0; at < good.length; at++) {
      const bad = Buffer.from(good);
      bad[at] = bad[at]! ^ 0x40;
      expect(() => decodeSnapshot(bad), `byte ${at}`).toThrow(XsError);
    }
    for (const len of [0, 10, good.length - 1]) {
      expect(() => decodeSnapshot(good.subarray(0, len))).toThrow(/corrupt snapshot/);
    }
    expect(() => decodeSnapshot(Buffer.concat([good, Buffer.from([0])]))).toThrow(/corrupt snapshot/);
    try {
      decodeSnapshot(Buffer.concat([good.subarray(0, 40), Buffer.alloc(good.length - 40)]));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(XsError);
      expect((e as XsError).code).toBe('EIO');
    }
  });

  it('builds a node\'s children only when they are first used (issue 16), each node once', () => {
    let s = createStore();
    for (let i = 0; i < 300; i++) s = apply(s, { op: 'write', path: `/big/${i % 3}/k${i}`, value: `v${i}` });
    const bytes = encodeSnapshot(s);
    const leaf = vi.spyOn(XsNode, 'leaf');
    try {
      const back = decodeSnapshot(bytes);
      expect(leaf).not.toHaveBeenCalled();
      const one = back.root.children.get('big')!.children.get('1')!;
      expect(leaf).toHaveBeenCalledTimes(1); // /local, the initial store's leaf beside /big
      expect(one.children.get('k1')!.value).toBe('v1');
      expect(leaf).toHaveBeenCalledTimes(1 + 100); // the 100 siblings under /big/1, not the 300
      expect(back.root.children.get('big')!.children.get('1')!.children).toBe(one.children);
      expect(leaf).toHaveBeenCalledTimes(1 + 100);
      expect(checkStore(back)).toEqual([]);
      expect(leaf).toHaveBeenCalledTimes(1 + 300 + 1); // and /tool/xenstored
      expect(back).toEqual(s);
    } finally {
      leaf.mockRestore();
    }
  });

  it('encodes a lazily decoded store by copying its bytes, without building it, in slices or whole', () => {
    let s = createStore();
    for (let i = 0; i < 300; i++) s = apply(s, { op: 'write', path: `/big/${i % 3}/k${i}`, value: `v${i}` });
    s = apply(s, { op: 'set-perms', path: '/big/2', perms: ['n7', 'r0'] });
    s = apply(s, { op: 'write', path: '/big/2/mine', value: 'g' }, guest(7));
    const bytes = encodeSnapshot(s);
    const leaf = vi.spyOn(XsNode, 'leaf');
    try {
      const untouched = decodeSnapshot(bytes);
      expect(encodeSnapshot(untouched)).toEqual(bytes);
      expect(leaf).not.toHaveBeenCalled();
      // Partly read (a request between two slices), and in slices small enough to walk the rest.
      const partly = decodeSnapshot(bytes);
      expect(partly.root.children.get('big')!.children.get('1')!.children.get('k1')!.value).toBe('v1');
      const steps = snapshotSteps(partly, 7);
      let r = steps.next();
      for (let i = 0; r.done !== true; i++) {
        if (i === 2) expect(partly.root.children.get('big')!.children.get('2')!.children.get('mine')!.value).toBe('g');
        r = steps.next();
      }
      const back = decodeSnapshot(r.value);
      expect(checkStore(back)).toEqual([]);
      expect(back).toEqual(s);
    } finally {
      leaf.mockRestore();
    }
  });

  it('pauses for the records it copies, not for the children of the node copied (a live update pre-copy step stays short)', () => {
    let s = createStore();
    for (let i = 0; i < 300; i++) s = apply(s, { op: 'write', path: `/big/${i % 3}/x/k${i}`, value: `v${i}` });
    const lazy = decodeSnapshot(encodeSnapshot(s));
    // Each /big/<i> (one child, 101 records below it) is copied whole at 60 nodes a step.
    const steps = snapshotSteps(lazy, 60);
    let pauses = 0;
    let r = steps.next();
    while (r.done !== true) {
      pauses++;
      r = steps.next();
    }
    expect(pauses).toBeGreaterThanOrEqual(2 * 3);
    expect(decodeSnapshot(r.value)).toEqual(s);
  });

  it('writes the same store when subtrees it copied in the first pass are read before the second', () => {
    let s = createStore();
    for (let i = 0; i < 40; i++) for (let j = 0; j < 3; j++) s = apply(s, { op: 'write', path: `/d/${i}/x/${j}`, value: `${i}.${j}` });
    const bytes = encodeSnapshot(s);
    const lazy = decodeSnapshot(bytes);
    const leaf = vi.spyOn(XsNode, 'leaf');
    try {
      // 7 nodes a step: each /d/<i> (4 records below it) is small enough to copy, / and /d are not.
      const steps = snapshotSteps(lazy, 7);
      let r = steps.next();
      for (let i = 0; r.done !== true; i++) {
        if (i === 12) {
          expect(leaf).toHaveBeenCalledTimes(1); // /local, beside /d: the rest so far copied, not built
          for (let k = 0; k < 40; k++) expect(lazy.root.children.get('d')!.children.get(String(k))!.children.get('x')!.children.size).toBe(3);
        }
        r = steps.next();
      }
      expect(leaf).toHaveBeenCalled();
      const back = decodeSnapshot(r.value);
      expect(checkStore(back)).toEqual([]);
      expect(back).toEqual(s);
    } finally {
      leaf.mockRestore();
    }
  });

  it('finds two children of one name, under a good checksum, when it reads them: EIO', () => {
    let s = createStore();
    s = apply(s, { op: 'write', path: '/x/a', value: '1' });
    s = apply(s, { op: 'write', path: '/x/b', value: '2' });
    const bad = Buffer.from(encodeSnapshot(s));
    // The child named "b" (u16 length 1, then the byte) becomes a second "a".
    const at = bad.indexOf(Buffer.from([1, 0, 0x62]));
    expect(at).toBeGreaterThan(0);
    bad[at + 2] = 0x61;
    const back = decodeSnapshot(resum(bad));
    expect(() => back.root.children.get('x')!.children).toThrow(/corrupt snapshot: duplicate child under x/);
  });

  it('reads version 1 snapshots (written before issue 16), recounting their quota', () => {
    let s = createStore();
    for (let i = 0; i < 20; i++) s = apply(s, { op: 'write', path: `/local/domain/${i % 3}/k${i}`, value: `v${i}` });
    s = apply(s, { op: 'set-perms', path: '/local/domain/2', perms: ['n2', 'r0'] });
    s = apply(s, { op: 'write', path: '/local/domain/2/mine', value: 'g' }, guest(2));
    const back = decodeSnapshot(encodeVersion1(s));
    expect(checkStore(back)).toEqual([]);
    expect(back).toEqual(s);
  });

  it('opens a version 3 snapshot reading its head only, then one block per node first used (issue 16)', () => {
    let s = createStore();
    for (let i = 0; i < 300; i++) s = apply(s, { op: 'write', path: `/big/${i % 3}/k${i}`, value: `v${i}` });
    const bytes = encodeSnapshot(s);
    expect(bytes.readUInt16LE(4)).toBe(3);
    const reads: [number, number][] = [];
    const source: SnapshotSource = { size: bytes.length, read: (at, n) => (reads.push([at, n]), bytes.subarray(at, at + n)) };
    const opened = openSnapshot(source);
    const head = bytes.readUInt32LE(24);
    expect(reads.every(([at, n]) => at + n <= head)).toBe(true);
    reads.length = 0;
    expect(opened.store.root.children.get('big')!.children.get('1')!.children.get('k1')!.value).toBe('v1');
    expect(reads).toHaveLength(3); // /'s block, /big's, /big/1's
    expect(reads.reduce((n, [, len]) => n + len, 0)).toBeLessThan(bytes.length / 2);
    expect(opened.store).toEqual(s);
    const steps = opened.check(1);
    let pauses = 0;
    while (steps.next().done !== true) pauses++;
    expect(pauses).toBeGreaterThanOrEqual(5); // one block a step: /, /big, /big/0..2, /local's…
  });

  it('finds a damaged block when a node is first used, not before, and tells the source (issue 16)', () => {
    let s = createStore();
    for (let i = 0; i < 300; i++) s = apply(s, { op: 'write', path: `/big/${i % 3}/k${i}`, value: `v${i}` });
    const bad = Buffer.from(encodeSnapshot(s));
    const at = bad.indexOf('v152'); // a value under /big/2
    expect(at).toBeGreaterThan(0);
    bad[at + 1] ^= 0x01;
    const told: XsError[] = [];
    const source: SnapshotSource = { ...bufferSource(bad), damaged: (e) => told.push(e) };
    const opened = openSnapshot(source);
    expect(told).toEqual([]);
    expect(opened.store.root.children.get('big')!.children.get('1')!.children.get('k1')!.value).toBe('v1');
    expect(() => opened.store.root.children.get('big')!.children.get('2')!.children).toThrow(/corrupt snapshot: checksum mismatch/);
    expect(told).toHaveLength(1);
    expect(told[0]!.code).toBe('EIO');
    // Nor does the background check, nor an encoding (which would carry the damage under new checksums).
    const check = openSnapshot(bufferSource(bad)).check(Infinity);
    expect(() => {
      while (check.next().done !== true);
    }).toThrow(/corrupt snapshot: checksum mismatch/);
    expect(() => encodeSnapshot(openSnapshot(bufferSource(bad)).store)).toThrow(/corrupt snapshot: checksum mismatch/);
    expect(() => decodeSnapshot(bad)).toThrow(/corrupt snapshot: checksum mismatch/);
  });

  it('refuses a truncated or extended version 3 file when it is opened, from its head', () => {
    let s = createStore();
    for (let i = 0; i < 50; i++) s = apply(s, { op: 'write', path: `/t/${i}`, value: `v${i}` });
    const good = encodeSnapshot(s);
    const head = good.readUInt32LE(24);
    for (const len of [head, head + 1, good.length - 1]) expect(() => openSnapshot(bufferSource(good.subarray(0, len)))).toThrow(/corrupt snapshot: truncated/);
    for (const len of [10, 30, head - 1]) expect(() => openSnapshot(bufferSource(good.subarray(0, len)))).toThrow(/corrupt snapshot/);
    expect(() => openSnapshot(bufferSource(Buffer.concat([good, Buffer.from([0])])))).toThrow(/corrupt snapshot: 1 bytes after the tree/);
    expect(openSnapshot(bufferSource(good)).store).toEqual(s);
  });

  it('reads version 2 snapshots (written before version 3), lazily, and writes them again as version 3', () => {
    let s = createStore();
    for (let i = 0; i < 20; i++) s = apply(s, { op: 'write', path: `/local/domain/${i % 3}/k${i}`, value: `v${i}` });
    s = apply(s, { op: 'set-perms', path: '/local/domain/2', perms: ['n2', 'r0'] });
    s = apply(s, { op: 'write', path: '/local/domain/2/mine', value: 'g' }, guest(2));
    // Written by the version 2 encoder (main at 0f71fca) from the same operations.
    const v2 = Buffer.from(V2_FIXTURE, 'base64');
    expect(v2.readUInt16LE(4)).toBe(2);
    const back = decodeSnapshot(v2);
    expect(checkStore(back)).toEqual([]);
    expect(back).toEqual(s);
    const again = encodeSnapshot(decodeSnapshot(v2));
    expect(again.readUInt16LE(4)).toBe(3);
    expect(decodeSnapshot(again)).toEqual(s);
    const bad = Buffer.from(v2);
    bad[bad.length - 30] ^= 0x04;
    expect(() => openSnapshot(bufferSource(bad))).toThrow(/corrupt snapshot: checksum mismatch/);
  });
});

const V2_FIXTURE =
  'TlhTUwIAAAAAAAAAAAA2QB0AAAACAAAAAQBuAAACAG4CAHIAAAAAAAAAAAAAAgAAAAAAAAAbAAAAAgAAAAIAAAAAAAAAAAAAAAAAAgAAAAUAAAALAAAAVAIAAAUAbG9jYWwAAAAAAAAAAAEAAAAFAAAABwAAAAACAAAGAGRvbWFpbgAAAAAAAAAAAwAAAAUAAAAGAAAA4AEAAAEAMAAAAAAAAAAABwAAAAAAAAAYAAAAhAAAAAIAazACAAAAdjAAAAAAAAAAAAIAazMCAAAAdjMAAAAAAAAAAAIAazYCAAAAdjYAAAAAAAAAAAIAazkCAAAAdjkAAAAAAAAAAAMAazEyAwAAAHYxMgAAAAAAAAAAAwBrMTUDAAAAdjE1AAAAAAAAAAADAGsxOAMAAAB2MTgAAAAAAAAAAAEAMQAAAAAAAAAABwAAAAAAAAAZAAAAhgAAAAIAazECAAAAdjEAAAAAAAAAAAIAazQCAAAAdjQAAAAAAAAAAAIAazcCAAAAdjcAAAAAAAAAAAMAazEwAwAAAHYxMAAAAAAAAAAAAwBrMTMDAAAAdjEzAAAAAAAAAAADAGsxNgMAAAB2MTYAAAAAAAAAAAMAazE5AwAAAHYxOQAAAAAAAAAAAQAyAAAAAAEAAAAHAAAABQAAABoAAACFAAAAAgBrMgIAAAB2MgAAAAAAAAAAAgBrNQIAAAB2NQAAAAAAAAAAAgBrOAIAAAB2OAAAAAAAAAAAAwBrMTEDAAAAdjExAAAAAAAAAAADAGsxNAMAAAB2MTQAAAAAAAAAAAMAazE3AwAAAHYxNwAAAAAAAAAABABtaW5lAQAAAGcBAAAAAAAAAAQAdG9vbAAAAAAAAAAAAQAAAAAAAAAKAAAAFwAAAAkAeGVuc3RvcmVkAAAAAAAAAAAAAAAAoVJAiA==';

/**
 * `resum(buf)` recomputes every checksum of a version 3 snapshot whose bytes a test changed: what
 * a faulty encoder would write (children's blocks first: a block holds its children's checksums).
 */
function resum(buf: Buffer): Buffer {
  let off = 28;
  const lists = buf.readUInt32LE(20);
  for (let i = 0; i < lists; i++) off += 2 + buf.readUInt16LE(off) * 3;
  off += SPECIAL_NAMES.length * 4;
  off += 4 + buf.readUInt32LE(off) * 8;
  off += 4 + buf.readUInt32LE(off) + 4;
  const kids = buf.readUInt32LE(off);
  off += 4;
  const headEnd = buf.readUInt32LE(24);
  const sum = (at: number, block: number, count: number): number => {
    let p = at;
    let region = at + block;
    for (let i = 0; i < count; i++) {
      p += 2 + buf.readUInt16LE(p);
      p += 4 + buf.readUInt32LE(p);
      p += 4;
      const n = buf.readUInt32LE(p);
      p += 4;
      if (n > 0) {
        const slot = p + 8;
        buf.writeUInt32LE(sum(region, buf.readUInt32LE(slot), n), slot + 4);
        region += buf.readUInt32LE(slot + 8);
        p += 20;
      }
    }
    return crc32(buf.subarray(at, at + block));
  };
  if (kids > 0) buf.writeUInt32LE(sum(headEnd, buf.readUInt32LE(off + 8), kids), off + 12);
  buf.writeUInt32LE(crc32(buf.subarray(0, headEnd - 4)), headEnd - 4);
  return buf;
}

/** The version 1 layout (snapshot.ts), as written before issue 16: no quota, no subtree lengths. */
function encodeVersion1(s: Store): Buffer {
  const parts: Buffer[] = [];
  const u16 = (n: number) => parts.push(Buffer.from([n & 0xff, n >> 8]));
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    parts.push(b);
  };
  const lists: string[] = [];
  const listOf = new Map<string, number>();
  const index = (perms: Store['root']['perms']) => {
    const key = perms.map((e) => `${e.access}${e.domid}`).join(',');
    if (!listOf.has(key)) {
      listOf.set(key, lists.length);
      lists.push(key);
    }
    return listOf.get(key)!;
  };
  const records: Buffer[] = [];
  let nodes = 0;
  const walk: [string, XsNode][] = [['', s.root]];
  const body: Buffer[] = [];
  for (const name of SPECIAL_NAMES) index(s.special[name]);
  while (walk.length > 0) {
    const [name, node] = walk.pop()!;
    nodes++;
    const head = Buffer.alloc(2 + name.length + 4 + node.value.length + 8);
    let off = head.writeUInt16LE(name.length, 0);
    off += head.write(name, off, 'latin1');
    off = head.writeUInt32LE(node.value.length, off);
    off += head.write(node.value, off, 'latin1');
    off = head.writeUInt32LE(index(node.perms), off);
    head.writeUInt32LE(node.children.size, off);
    body.push(head);
    walk.push(...[...node.children].reverse());
  }
  records.push(...body);
  const header = Buffer.alloc(24);
  header.write('NXSS', 0, 'latin1');
  header.writeUInt16LE(1, 4);
  header.writeDoubleLE(s.generation, 8);
  header.writeUInt32LE(nodes, 16);
  header.writeUInt32LE(lists.length, 20);
  parts.push(header);
  const letters: Record<string, number> = { n: 0x6e, r: 0x72, w: 0x77, b: 0x62 };
  for (const key of lists) {
    const entries = key.split(',');
    u16(entries.length);
    for (const e of entries) {
      parts.push(Buffer.from([letters[e[0]!]!]));
      u16(Number(e.slice(1)));
    }
  }
  for (const name of SPECIAL_NAMES) u32(index(s.special[name]));
  parts.push(...records);
  const all = Buffer.concat(parts);
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(crc32(all));
  return Buffer.concat([all, crc]);
}
