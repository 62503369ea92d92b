import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { XsError } from '../protocol/index.js';
import { ALL_BYTES, jsonRecords, REQUESTS, requestVersions } from '../test/helpers/json-log.js';
import type { Delta, DeltaOp } from './delta.js';
import { applyDeltas, deltaOf } from './delta.js';
import { decodeDelta, DeltaDecoder, encodeDelta } from './delta-codec.js';
import { parsePerms } from './perms.js';

const bytes = fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 300 });
const path = fc.array(fc.stringMatching(/^[A-Za-z0-9_@-]{1,12}$/), { maxLength: 5 }).map((xs) => '/' + xs.join('/'));
const perms = fc.constantFrom(['n0'], ['r5', 'w0'], ['b65535', 'n7', 'r32757'], ['w9', 'b1', 'r2', 'n3']).map(parsePerms);
const op: fc.Arbitrary<DeltaOp> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), path, value: bytes, perms }),
  fc.record({ kind: fc.constant('remove' as const), path }),
  fc.record({ kind: fc.constant('special' as const), name: fc.constantFrom('@introduceDomain' as const, '@releaseDomain' as const), perms }),
);
const delta: fc.Arbitrary<Delta> = fc.record({ generation: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), ops: fc.array(op, { maxLength: 12 }) });

describe('delta records (store/delta-codec.ts)', () => {
  it('decodes what it encodes, any bytes, any generation up to 2^53 - 1', () => {
    fc.assert(
      fc.property(delta, (d) => {
        const buf = encodeDelta(d);
        expect(buf[0]).toBe(2);
        expect(decodeDelta(buf)).toEqual(d);
        // In place, within a larger buffer (recovery reads a segment's records where they are).
        const wrapped = Buffer.concat([Buffer.from([1, 2, 3]), buf, Buffer.from([4])]);
        expect(new DeltaDecoder().decode(wrapped, 3, 3 + buf.length)).toEqual(d);
      }),
      { numRuns: 300 },
    );
  });

  it('reads the JSON records older builds wrote: the same deltas as the binary ones of the same commits', () => {
    const versions = requestVersions();
    const records = jsonRecords();
    expect(records).toHaveLength(REQUESTS.length);
    const decoder = new DeltaDecoder();
    for (let i = 0; i < records.length; i++) {
      expect(records[i]![0]).toBe(0x7b); // '{'
      const expected = deltaOf(versions[i]!, versions[i + 1]!);
      expect(decoder.decode(records[i]!, 0, records[i]!.length)).toEqual(expected);
      expect(decodeDelta(encodeDelta(expected))).toEqual(expected);
    }
    // Replayed, they make the store the requests made, values of every byte included.
    const replayed = applyDeltas(versions[0]!, records.map((r) => decodeDelta(r)));
    expect(replayed.root).toEqual(versions.at(-1)!.root);
    expect(replayed.special).toEqual(versions.at(-1)!.special);
    expect(replayed.root.children.get('local')!.children.get('domain')!.children.get('7')!.children.get('data')!.value).toBe(ALL_BYTES);
  });

  it('shares the permission lists of the records one decoder reads, as a live store does', () => {
    const p = parsePerms(['n5', 'r0']);
    const records = [1, 2, 3].map((g) => encodeDelta({ generation: g, ops: [{ kind: 'set', path: `/a/${g}`, value: 'v', perms: p }] }));
    const decoder = new DeltaDecoder();
    const [a, b, c] = records.map((r) => decoder.decode(r, 0, r.length).ops[0] as Extract<DeltaOp, { kind: 'set' }>);
    expect(a!.perms).toEqual(p);
    expect(b!.perms).toBe(a!.perms);
    expect(c!.perms).toBe(a!.perms);
    expect(Object.isFrozen(a!.perms) && Object.isFrozen(a!.perms[0])).toBe(true);
    // Different lists stay different: same first entry, another grant; and one entry alone.
    const other = encodeDelta({ generation: 4, ops: [{ kind: 'set', path: '/a/4', value: 'v', perms: parsePerms(['n5', 'w0']) }, { kind: 'set', path: '/a/5', value: 'v', perms: parsePerms(['n5']) }] });
    const [d, e] = decoder.decode(other, 0, other.length).ops as Extract<DeltaOp, { kind: 'set' }>[];
    expect(d!.perms).toEqual(parsePerms(['n5', 'w0']));
    expect(e!.perms).toEqual(parsePerms(['n5']));
  });

  it('refuses every malformed record with EIO, never a partial delta: cut anywhere, extended, or with a bad field', () => {
    const good = encodeDelta({
      generation: 9,
      ops: [
        { kind: 'set', path: '/a/b', value: 'xyz', perms: parsePerms(['n1', 'r0']) },
        { kind: 'remove', path: '/c' },
        { kind: 'special', name: '@releaseDomain', perms: parsePerms(['n0']) },
      ],
    });
    expect(decodeDelta(good).ops).toHaveLength(3);
    for (let n = 0; n < good.length; n++) expect(() => decodeDelta(good.subarray(0, n)), `cut at ${n}`).toThrow(XsError);
    expect(() => decodeDelta(Buffer.concat([good, Buffer.from([0])]))).toThrow(/after the last op/);
    const edit = (at: number, byte: number, more: [number, number, number?] = [byte, at, at + 1]): Buffer => {
      const b = Buffer.from(good);
      b[at] = byte;
      b.fill(more[0], more[1], more[2]);
      return b;
    };
    const setAt = 13; // u8 format, u32 × 2 generation, u32 count
    const permsAt = setAt + 1 + 4 + 4 + 4 + 3; // 's', path "/a/b", value "xyz"
    const cases: [Buffer, RegExp][] = [
      [edit(0, 3), /unknown record format 3/],
      [edit(1, 0), /bad generation 0/],
      [edit(8, 0xff, [0xff, 5, 9]), /bad generation/], // above 2^53
      [edit(9, 200), /200 ops in/],
      [edit(setAt, 0x7a), /bad op 122/],
      [edit(setAt + 5, 0x2a), /bad path "\*a\/b"/],
      [edit(setAt + 1, 0), /bad path ""/],
      [edit(permsAt, 0, [0, permsAt + 1, permsAt + 2]), /empty permissions/],
      [edit(permsAt + 2, 0x71), /bad permission letter/],
      [edit(good.length - 3 - 2 - 14, 0x41), /bad special name/],
      [Buffer.alloc(0), /empty record/],
    ];
    for (const [bad, why] of cases) {
      expect(() => decodeDelta(bad), why.source).toThrow(XsError);
      expect(() => decodeDelta(bad), why.source).toThrow(why);
    }
    // Old JSON records are checked as before.
    for (const bad of ['{', '[]', '{"g":0,"ops":[]}', '{"g":1,"ops":[["s","//x","v",["n0"]]]}', '{"g":1,"ops":[["s","/x","v",["q0"]]]}', '{"g":1,"ops":[["s","/x","\\u0100",["n0"]]]}', '{"g":1,"ops":[["z"]]}']) {
      expect(() => decodeDelta(Buffer.from(bad)), bad).toThrow(XsError);
    }
    expect(() => new DeltaDecoder().decode(good, 4, 2)).toThrow(RangeError);
  });
});
