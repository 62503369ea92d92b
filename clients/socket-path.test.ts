import { describe, expect, it } from 'vitest';
import { defaultRundir, defaultSocketPath, guestSocketPath, readOnlySocketPath } from './socket-path.js';

describe('socket paths (spec §1.1)', () => {
  it('takes XENSTORED_PATH, else XENSTORED_RUNDIR/socket, else /run/xenstored/socket', () => {
    expect(defaultSocketPath({ XENSTORED_PATH: '/x/s', XENSTORED_RUNDIR: '/r' })).toBe('/x/s');
    expect(defaultSocketPath({ XENSTORED_RUNDIR: '/r' })).toBe('/r/socket');
    expect(defaultSocketPath({})).toBe('/run/xenstored/socket');
    expect(defaultSocketPath({ XENSTORED_PATH: '', XENSTORED_RUNDIR: '' })).toBe('/run/xenstored/socket');
  });

  it('finds the run directory next to an explicit socket', () => {
    expect(defaultRundir({ XENSTORED_RUNDIR: '/r', XENSTORED_PATH: '/x/s' })).toBe('/r');
    expect(defaultRundir({ XENSTORED_PATH: '/x/s' })).toBe('/x');
    expect(defaultRundir({})).toBe('/run/xenstored');
  });

  it('places the read-only and guest sockets in the run directory', () => {
    expect(readOnlySocketPath('/r')).toBe('/r/socket_ro');
    expect(guestSocketPath('/r', 5)).toBe('/r/domains/5/socket');
  });
});
