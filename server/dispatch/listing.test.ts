import { describe, expect, it } from 'vitest';
import { PAYLOAD_MAX } from '../../protocol/index.js';
import { KEPT_SORTED } from '../../store/index.js';
import { listingOf } from './listing.js';

/** The reply spec §7.6 describes, made the slow way: entry by entry from byte `offset`. */
function reference(names: readonly string[], gen: string, offset: number): string {
  const all = names.map((n) => `${n}\0`).join('');
  if (offset >= all.length) return `${gen}\0\0`;
  const room = PAYLOAD_MAX - gen.length - 2;
  let end = offset;
  for (;;) {
    const nul = all.indexOf('\0', end);
    if (nul < 0 || nul + 1 - offset > room) break;
    end = nul + 1;
  }
  return `${gen}\0${all.slice(offset, end)}${end >= all.length ? '\0' : ''}`;
}

/** A seeded generator, so that a failure is the same every run. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const text = (b: Buffer): string => b.toString('latin1');

describe('listing (DIRECTORY / DIRECTORY_PART, spec §7.5-7.6)', () => {
  it('is the names each followed by a NUL, byte strings kept as bytes', () => {
    expect(text(listingOf(['a', 'bb', '\xff\x01']).bytes)).toBe('a\0bb\0\xff\x01\0');
    expect(listingOf([]).bytes.length).toBe(0);
  });

  it('is made once per frozen name list, again for a fresh one (a transaction view)', () => {
    const frozen = Object.freeze(['x', 'y']);
    expect(listingOf(frozen)).toBe(listingOf(frozen));
    const fresh = ['x', 'y'];
    expect(listingOf(fresh)).not.toBe(listingOf(fresh));
    expect(listingOf(fresh).gen).toBe(listingOf(frozen).gen);
  });

  it('has a decimal generation of at most 23 bytes that follows the content', () => {
    const gen = (names: string[]): string => listingOf(names).gen;
    expect(gen(['a', 'b'])).toMatch(/^\d{1,23}\0$/);
    expect(gen(['a', 'b'])).toBe(gen(['a', 'b']));
    expect(gen(['a', 'b'])).not.toBe(gen(['a', 'c']));
    expect(gen(['a', 'b'])).not.toBe(gen(['ab']));
    expect(gen([])).not.toBe(gen(['']));
  });

  it("a large node's listing: its size without its bytes, a generation per name list, kept while the list is", () => {
    const names = Object.freeze(Array.from({ length: KEPT_SORTED }, (_, i) => `c${i}`));
    const l = listingOf(names);
    expect(l.size).toBe(names.reduce((a, n) => a + n.length + 1, 0));
    expect(text(l.bytes)).toBe(names.map((n) => `${n}\0`).join(''));
    expect(l.gen).toMatch(/^\d{1,23}\0$/);
    expect(listingOf(names).gen).toBe(l.gen);
    // Another list of the same names (a different node version) may differ; never two lists the same.
    const again = listingOf(Object.freeze([...names]));
    expect(again.gen).not.toBe(l.gen);
  });

  it('answers every offset as the entry-by-entry reference does, and its pages rebuild the list', () => {
    const rnd = random(18);
    for (let round = 0; round < 48; round++) {
      // Small lists, then lists made by blocks (KEPT_SORTED names and more), some of tiny names.
      const n = round < 20 ? Math.floor(rnd() * 40) : round < 36 ? Math.floor(rnd() * 400) : KEPT_SORTED + Math.floor(rnd() * 3000);
      const tiny = round % 3 === 0;
      const names = Array.from({ length: n }, (_, i) => (tiny ? `${i % 10}` : `${i}-${'n'.repeat(Math.floor(rnd() * (rnd() < 0.05 ? 3000 : 60)))}`)).sort();
      const l = listingOf(Object.freeze(names));
      expect(l.size).toBe(names.reduce((a, x) => a + x.length + 1, 0));
      const gen = l.gen.slice(0, -1);
      const total = l.bytes.length;
      const offsets = [0, total, total + 1, total + 5000, ...Array.from({ length: 30 }, () => Math.floor(rnd() * (total + 2)))];
      for (const off of offsets) expect(l.part(off)).toBe(reference(names, gen, off));
      // A client's walk (libxenstore `xs_directory_part`): every page fits a message, the list comes back whole.
      const got: string[] = [];
      for (let off = 0; ; ) {
        const page = l.part(off);
        expect(page.length).toBeLessThanOrEqual(PAYLOAD_MAX);
        const body = page.slice(gen.length + 1);
        const done = body.endsWith('\0\0') || body === '\0';
        const entries = body.split('\0').slice(0, -1).filter((_, i, a) => !(done && i === a.length - 1));
        got.push(...entries);
        off += entries.reduce((a, e) => a + e.length + 1, 0);
        if (done) break;
        expect(entries.length).toBeGreaterThan(0);
      }
      expect(got).toEqual(names);
    }
  });
});
