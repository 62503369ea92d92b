import { describe, expect, it } from 'vitest';
import { isOp, Op, opName } from './op.js';

describe('Op', () => {
  it('has unique codes', () => {
    const codes = Object.values(Op);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('knows every code 0..26 except the removed RESTRICT (20), and INVALID', () => {
    for (let n = 0; n <= 26; n++) expect(isOp(n)).toBe(n !== 20);
    expect(isOp(65535)).toBe(true);
  });

  it('rejects codes outside the table', () => {
    for (const n of [20, 27, 65534, 65536, -1, 1.5, Number.NaN]) expect(isOp(n)).toBe(false);
  });

  it('uses the xs_wire.h numbers for the codes with fixed meaning', () => {
    expect(Op.CONTROL).toBe(0);
    expect(Op.WATCH_EVENT).toBe(15);
    expect(Op.ERROR).toBe(16);
    expect(Op.RESET_WATCHES).toBe(21);
    expect(Op.DIRECTORY_PART).toBe(22);
  });
});

describe('opName', () => {
  it('names known codes', () => {
    expect(opName(2)).toBe('READ');
    expect(opName(0)).toBe('CONTROL');
    expect(opName(26)).toBe('SET_QUOTA');
    expect(opName(65535)).toBe('INVALID');
  });

  it('round-trips every table entry', () => {
    for (const [name, code] of Object.entries(Op)) expect(opName(code)).toBe(name);
  });

  it('marks unknown codes', () => {
    expect(opName(20)).toBe('UNKNOWN(20)');
    expect(opName(4096)).toBe('UNKNOWN(4096)');
  });
});
