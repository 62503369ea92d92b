import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DOM0, guest, type Caller } from './caller.js';
import { XsError } from '../protocol/index.js';
import {
  DOM0_ONLY,
  Need,
  check,
  formatPerms,
  grantable,
  has,
  lacks,
  parsePerms,
  rights,
  samePerms,
  withOwner,
  withoutDomain,
  type Perms,
} from './perms.js';

const P = (...s: string[]): Perms => parsePerms(s);
const R = Need.READ;
const W = Need.WRITE;
const O = Need.OWNER;
const ALL = R | W | O;

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'none';
  } catch (e) {
    if (!(e instanceof XsError)) throw e;
    return e.code;
  }
}

describe('parsePerms / formatPerms', () => {
  it('reads each letter and domid', () => {
    expect(P('n0', 'r5', 'w6', 'b7')).toEqual([
      { access: 'n', domid: 0 },
      { access: 'r', domid: 5 },
      { access: 'w', domid: 6 },
      { access: 'b', domid: 7 },
    ]);
    expect(P('b65535')).toEqual([{ access: 'b', domid: 65535 }]);
    expect(P('r00005')).toEqual([{ access: 'r', domid: 5 }]);
  });

  it('returns frozen lists', () => {
    const p = P('n0', 'r1');
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p[0])).toBe(true);
  });

  it('round-trips the wire form', () => {
    const entry = fc
      .tuple(fc.constantFrom('n', 'r', 'w', 'b'), fc.integer({ min: 0, max: 65535 }))
      .map(([l, d]) => `${l}${d}`);
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 8 }), (strings) => {
        expect(formatPerms(parsePerms(strings))).toEqual(strings);
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    ['empty list', []],
    ['bad letter', ['x1']],
    ['no domid', ['r']],
    ['negative domid', ['r-1']],
    ['domid out of range', ['r65536']],
    ['hex domid', ['r0x10']],
    ['octal-looking prefix', ['r0o7']],
    ['sign', ['r+1']],
    ['upper case letter', ['R1']],
    ['trailing junk', ['r1x']],
    ['leading space', [' r1']],
    ['six digits', ['r000001']],
    ['empty string', ['']],
    ['good then bad', ['n0', 'q1']],
  ])('%s is EINVAL', (_name, strings) => {
    expect(codeOf(() => parsePerms(strings))).toBe('EINVAL');
  });
});

describe('rights', () => {
  const g5 = guest(5);
  const g6 = guest(6);
  const g7 = guest(7);

  it.each<[string, Perms, Caller, number]>([
    ['privileged on n0', P('n0'), DOM0, ALL],
    ['privileged on a guest node', P('n5'), DOM0, ALL],
    ['privileged domU', P('n5'), { domid: 9, privileged: true }, ALL],
    ['owner with n', P('n5'), g5, ALL],
    ['owner with r', P('r5'), g5, ALL],
    ['owner listed as n in an ACL entry', P('n5', 'n5'), g5, ALL],
    ['default n for others', P('n5'), g6, 0],
    ['default r for others', P('r5'), g6, R],
    ['default w for others', P('w5'), g6, W],
    ['default b for others', P('b5'), g6, R | W],
    ['ACL r', P('n0', 'r7'), g7, R],
    ['ACL w', P('n0', 'w7'), g7, W],
    ['ACL b', P('n0', 'b7'), g7, R | W],
    ['ACL n overrides default b', P('b0', 'n7'), g7, 0],
    ['ACL for someone else leaves the default', P('r0', 'b6'), g7, R],
    ['first matching entry wins (r before b)', P('n0', 'r7', 'b7'), g7, R],
    ['first matching entry wins (b before n)', P('n0', 'b7', 'n7'), g7, R | W],
    ['entry 0 letter is not an ACL for the owner only', P('r0', 'w6'), g6, W],
  ])('%s', (_name, perms, caller, want) => {
    expect(rights(perms, caller)).toBe(want);
  });

  it('a target owner (SET_TARGET) holds everything', () => {
    const stub = guest(6, 5);
    expect(rights(P('n5'), stub)).toBe(ALL);
    expect(rights(P('n7'), stub)).toBe(0);
    expect(rights(P('n6'), stub)).toBe(ALL); // its own nodes too
  });

  it('a target matches ACL entries naming the target, first match deciding', () => {
    const stub = guest(6, 5);
    expect(rights(P('n0', 'r5'), stub)).toBe(R);
    expect(rights(P('n0', 'w6'), stub)).toBe(W);
    expect(rights(P('n0', 'r5', 'w6'), stub)).toBe(R); // r5 comes first
    expect(rights(P('n0', 'w6', 'r5'), stub)).toBe(W);
    expect(rights(P('b0', 'n5'), stub)).toBe(0);
  });

  it('readOnly masks write, even for the privileged and the owner', () => {
    const ro = (c: Caller): Caller => ({ ...c, readOnly: true });
    expect(rights(P('n0'), ro(DOM0))).toBe(R | O);
    expect(rights(P('n5'), ro(g5))).toBe(R | O);
    expect(rights(P('n0', 'b7'), ro(g7))).toBe(R);
    expect(rights(P('n0', 'w7'), ro(g7))).toBe(0);
    expect(lacks(P('n0'), ro(DOM0), W)).toBe(true);
    expect(codeOf(() => check(P('n0'), ro(DOM0), W))).toBe('EACCES');
    expect(codeOf(() => check(P('n0'), ro(DOM0), R))).toBe('none');
  });

  it('has / lacks / check agree on every bit combination', () => {
    const perms = P('n0', 'r7', 'w8');
    for (const c of [DOM0, g5, g7, guest(8)]) {
      for (const need of [R, W, O, R | W, W | O, ALL]) {
        const ok = (rights(perms, c) & need) === need;
        expect(has(perms, c, need)).toBe(ok);
        expect(lacks(perms, c, need)).toBe(!ok);
        expect(codeOf(() => check(perms, c, need))).toBe(ok ? 'none' : 'EACCES');
      }
    }
  });

  it('DOM0_ONLY is n0: nobody but the privileged may do anything', () => {
    expect(formatPerms(DOM0_ONLY)).toEqual(['n0']);
    expect(rights(DOM0_ONLY, g5)).toBe(0);
    expect(rights(DOM0_ONLY, DOM0)).toBe(ALL);
  });
});

describe('withOwner / withoutDomain / samePerms', () => {
  it('withOwner replaces entry 0 domid and keeps its letter and the ACL', () => {
    const p = P('r0', 'b3', 'w4');
    const q = withOwner(p, 9);
    expect(formatPerms(q)).toEqual(['r9', 'b3', 'w4']);
    expect(formatPerms(p)).toEqual(['r0', 'b3', 'w4']); // unchanged input
    expect(q[1]).toBe(p[1]);
  });

  it('withOwner returns the same list when the owner is already that domain', () => {
    const p = P('n9', 'r1');
    expect(withOwner(p, 9)).toBe(p);
  });

  it('withoutDomain drops every ACL entry naming the domain but never entry 0', () => {
    expect(formatPerms(withoutDomain(P('n0', 'r7', 'b3', 'w7'), 7))).toEqual(['n0', 'b3']);
    expect(formatPerms(withoutDomain(P('n7', 'r7', 'b3'), 7))).toEqual(['n7', 'b3']);
  });

  it('withoutDomain returns the same array when nothing changes', () => {
    const p = P('n7', 'r3', 'b4');
    expect(withoutDomain(p, 7)).toBe(p); // owner only
    expect(withoutDomain(p, 9)).toBe(p);
    expect(withoutDomain(DOM0_ONLY, 0)).toBe(DOM0_ONLY);
  });

  it('samePerms compares by value', () => {
    expect(samePerms(P('n0', 'r1'), P('n0', 'r1'))).toBe(true);
    expect(samePerms(P('n0', 'r1'), P('n0', 'w1'))).toBe(false);
    expect(samePerms(P('n0', 'r1'), P('n0', 'r2'))).toBe(false);
    expect(samePerms(P('n0', 'r1'), P('n0'))).toBe(false);
    expect(samePerms(P('n0'), P('n1'))).toBe(false);
    const p = P('b5');
    expect(samePerms(p, p)).toBe(true);
  });
});

describe('DOMID_ANY (32757, Xen 4.22)', () => {
  it('an entry for it matches every domain; the first matching entry decides', () => {
    expect(rights(P('n0', 'r32757'), guest(5))).toBe(R);
    expect(rights(P('n0', 'b32757'), guest(9, 3))).toBe(R | W);
    expect(rights(P('n0', 'n5', 'r32757'), guest(5))).toBe(0);
    expect(rights(P('n0', 'r32757', 'n5'), guest(5))).toBe(R);
    expect(rights(P('n0', 'r32757'), { domid: 5, privileged: false, readOnly: true })).toBe(R);
  });

  it('grantable: kept with the feature (or privileged), dropped without, never the owner', () => {
    const list = P('n5', 'r32757', 'w6');
    expect(grantable(list, guest(5))).toBe(list);
    expect(grantable(list, guest(5, undefined, 8))).toBe(list);
    expect(grantable(list, DOM0)).toBe(list);
    expect(formatPerms(grantable(list, guest(5, undefined, 4)))).toEqual(['n5', 'w6']);
    const none = P('n5', 'w6');
    expect(grantable(none, guest(5, undefined, 0))).toBe(none);
    expect(codeOf(() => grantable(P('r32757'), DOM0))).toBe('EINVAL');
  });
});
