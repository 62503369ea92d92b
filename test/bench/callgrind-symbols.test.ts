import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { attribute, isCollector, parsePerfMap, perWrite, symbolKey, totals } from '../../bench/callgrind-symbols.js';

// A callgrind file as `--dump-instr=yes --compress-strings=no --compress-pos=no` writes it:
// positions "instr line", cost lines "ADDRESS LINE Ir I1mr ...", a call's inclusive cost on the
// line after `calls=` (already counted in the callee: not to be counted again).
const CALLGRIND = `version: 1
positions: instr line
events: Ir Dr Dw I1mr D1mr
fn=0x0000000000001000
0x1000 0 10 2 1 3 0
0x1010 0 5 0 0 1 0
fn=v8::internal::Scavenger::ScavengeObject(x)
0x9000 0 40 10 0 2 1
fn=main
0x500 0 7 0 0 0 0
calls=1 0x1000
0x504 0 1000 0 0 9 0
0x508 0 3
fn=0x0000000000002000'2
0x2004 0 4 0 0 1 0
fn=0x0000000000003000
0x3000 0 6 0 0 0 0
`;

const MAP = `1000 20 JS:*written file:///tmp/v/dist/store/history.js:132:12
2000 10 JS:*install file:///work/main/dist/server/daemon.js:305:12
`;

describe('callgrind-symbols', () => {
  it('names JIT code by the perf map, skips inclusive call costs, keeps code it cannot name as one row', () => {
    const costs = attribute(CALLGRIND, parsePerfMap(MAP));
    expect(costs.get('JS:*written store/history.js')).toEqual({ ir: 15, i1: 4 });
    expect(costs.get('JS:*install server/daemon.js')).toEqual({ ir: 4, i1: 1 });
    // 7 + 3: the 1000 on the line after `calls=` is the callee's, counted there.
    expect(costs.get('main')).toEqual({ ir: 10, i1: 0 });
    expect(costs.get('(code without a name)')).toEqual({ ir: 6, i1: 0 });
    expect(costs.get('v8::internal::Scavenger::ScavengeObject(x)')).toEqual({ ir: 40, i1: 2 });
  });

  it('takes one write as the difference of two lengths, and sets the collector apart', () => {
    const spans = parsePerfMap(MAP);
    const lo = attribute(CALLGRIND, spans);
    const hi = attribute(CALLGRIND.replace('0x1000 0 10 2 1 3 0', '0x1000 0 210 2 1 13 0').replace('0x9000 0 40', '0x9000 0 440'), spans);
    const per = perWrite(lo, hi, 100);
    expect(per.get('JS:*written store/history.js')).toEqual({ ir: 2, i1: 0.1 });
    const t = totals(per);
    expect(t.gc.ir).toBe(4);
    expect(t.rest.ir).toBe(2);
    expect(t.all.ir).toBe(6);
  });

  it('makes builds in other checkouts compare: no path to dist, no line and column', () => {
    expect(symbolKey('JS:*written file:///tmp/vx/dist/store/history.js:140:3')).toBe(symbolKey('JS:*written file:///work/main/dist/store/history.js:132:12'));
    expect(symbolKey("0x000000000d0d0900'2")).toBe('(code without a name)');
    expect(isCollector('v8::internal::MarkCompactCollector::ProcessMarkingWorklist(unsigned long)')).toBe(true);
    expect(isCollector('JS:*write store/operations.js')).toBe(false);
  });

  it('refuses a file that is not callgrind output', () => {
    expect(() => attribute('hello\n', [])).toThrow(/not a callgrind output file/);
  });

  it('refuses bad arguments and missing files with one line and exit status 2, not a stack', () => {
    for (const args of [[], ['ten', 'a', 'b', 'c', 'd', 'e'], ['10', 'a', '/nonexistent/lo', 'b', 'c', 'd']]) {
      const r = spawnSync(process.execPath, ['dist/bench/callgrind-symbols.js', ...args], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/^callgrind-symbols: (usage|ENOENT)[^\n]*\n$/);
    }
  });
});
