import { describe, expect, it } from 'vitest';
import { takeActivation } from './activation.js';

const PID = 4242;

describe('takeActivation (sd_listen_fds convention)', () => {
  it('is undefined, and clears the variables, when they are absent or meant for another pid', () => {
    expect(takeActivation({}, PID)).toBeUndefined();
    const env: NodeJS.ProcessEnv = { LISTEN_PID: '1', LISTEN_FDS: '2', LISTEN_FDNAMES: 'socket:socket_ro', KEEP: 'x' };
    expect(takeActivation(env, PID)).toBeUndefined();
    expect(env).toEqual({ KEEP: 'x' });
  });

  it('maps the names, in any order, to descriptors from 3', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'socket_ro:socket' };
    expect(takeActivation(env, PID)).toEqual({ socket: 4, socketRo: 3, unused: [] });
    expect(env).toEqual({});
  });

  it('gives unnamed descriptors (no names, "unknown", a unit name) to the missing sockets in order', () => {
    expect(takeActivation({ LISTEN_PID: String(PID), LISTEN_FDS: '2' }, PID)).toEqual({ socket: 3, socketRo: 4, unused: [] });
    expect(
      takeActivation({ LISTEN_PID: String(PID), LISTEN_FDS: '3', LISTEN_FDNAMES: 'unknown:socket:xenstored.socket' }, PID),
    ).toEqual({ socket: 4, socketRo: 3, unused: [{ fd: 5, name: '' }] });
    expect(takeActivation({ LISTEN_PID: String(PID), LISTEN_FDS: '1' }, PID)).toEqual({ socket: 3, socketRo: undefined, unused: [] });
  });

  it('reports descriptors with other names as unused, and rejects a malformed count', () => {
    expect(takeActivation({ LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'socket:metrics' }, PID)).toEqual({
      socket: 3,
      socketRo: undefined,
      unused: [{ fd: 4, name: 'metrics' }],
    });
    expect(() => takeActivation({ LISTEN_PID: String(PID), LISTEN_FDS: 'two' }, PID)).toThrow(/bad LISTEN_FDS/);
  });
});
