import { describe, expect, it } from 'vitest';
import { toEnd, type Steps } from './steps.js';

describe('toEnd', () => {
  it('runs every step, in order, and gives what the last one returns', () => {
    const done: number[] = [];
    function* work(): Steps<string> {
      for (let i = 0; i < 3; i++) {
        done.push(i);
        yield;
      }
      return `after ${done.length}`;
    }
    expect(toEnd(work())).toBe('after 3');
    expect(done).toEqual([0, 1, 2]);
  });

  it('passes on what a step throws', () => {
    function* failing(): Steps<void> {
      yield;
      throw new RangeError('step 2');
    }
    expect(() => toEnd(failing())).toThrow('step 2');
  });
});
