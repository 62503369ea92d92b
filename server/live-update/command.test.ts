import { describe, expect, it } from 'vitest';
import { XsError } from '../../store/index.js';
import { DEFAULT_TIMEOUT_SECONDS, parseLiveUpdate } from './command.js';

describe('parseLiveUpdate (the arguments xenstore-control sends)', () => {
  it('reads each sub-command', () => {
    expect(parseLiveUpdate(['-a'])).toEqual({ kind: 'abort' });
    expect(parseLiveUpdate(['-f', '/usr/lib/nxenstored.js'])).toEqual({ kind: 'file', file: '/usr/lib/nxenstored.js' });
    expect(parseLiveUpdate(['-c', '--rundir /run/xenstored'])).toEqual({ kind: 'cmdline', cmdline: '--rundir /run/xenstored' });
    expect(parseLiveUpdate(['-s'])).toEqual({ kind: 'start', force: false, timeoutSeconds: DEFAULT_TIMEOUT_SECONDS, version: 1 });
    // What xenstore-control 4.17 sends: `-s -t 60` and, with its -F, `-F` last.
    expect(parseLiveUpdate(['-s', '-t', '60', '-F'])).toEqual({ kind: 'start', force: true, timeoutSeconds: 60, version: 1 });
    expect(parseLiveUpdate(['-s', '-F', '-t', '0', '-v', '1'])).toEqual({ kind: 'start', force: true, timeoutSeconds: 0, version: 1 });
  });

  it.each([[[]], [['-x']], [['-a', 'x']], [['-f']], [['-f', '']], [['-c']], [['-s', '-t']], [['-s', '-t', 'ten']], [['-s', '-t', '-5']], [['-s', 'now']]])(
    'refuses %j with EINVAL',
    (args) => {
      let err: unknown;
      try {
        parseLiveUpdate(args);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(XsError);
      expect((err as XsError).code).toBe('EINVAL');
    },
  );
});
