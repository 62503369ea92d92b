import { describe, expect, it } from 'vitest';
import { parsePerms, rights, Need } from '../../store/index.js';
import { authorize } from './access.js';
import { callerOf, type Identity } from './identity.js';

const anonymous: Identity = { kind: 'anonymous' };
const dom0: Identity = { kind: 'dom0' };
const guest: Identity = { kind: 'guest', domid: 4 };

const status = (f: () => void): number | 'ok' => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return (e as { status: number }).status;
  }
};

describe('authorize', () => {
  it('refuses an anonymous client everything by default (401), telling it how to get a token', () => {
    for (const access of ['read', 'token', 'privileged'] as const) expect(status(() => authorize(anonymous, access, 'none', 'x'))).toBe(401);
    expect(() => authorize(anonymous, 'read', 'none', 'GET /v1/node/a')).toThrow(/GET \/v1\/node\/a: .*http-token.*nxs token/);
  });

  it('lets an anonymous client read, and only read, when anonymous reads are on', () => {
    expect(status(() => authorize(anonymous, 'read', 'read', 'x'))).toBe('ok');
    expect(status(() => authorize(anonymous, 'token', 'read', 'x'))).toBe(401);
    expect(status(() => authorize(anonymous, 'privileged', 'read', 'x'))).toBe(401);
  });

  it('lets any token read and change, and only the privileged one issue tokens (403 for a guest)', () => {
    for (const id of [dom0, guest]) {
      expect(status(() => authorize(id, 'read', 'none', 'x'))).toBe('ok');
      expect(status(() => authorize(id, 'token', 'none', 'x'))).toBe('ok');
    }
    expect(status(() => authorize(dom0, 'privileged', 'none', 'x'))).toBe('ok');
    expect(status(() => authorize(guest, 'privileged', 'none', 'x'))).toBe(403);
  });
});

describe('the anonymous caller', () => {
  const caller = callerOf(anonymous);
  const can = (perms: string[], need: number) => (rights(parsePerms(perms), caller) & need) === need;

  it('reads what every domain may read, and nothing else', () => {
    expect(can(['r0'], Need.READ)).toBe(true);
    expect(can(['b5'], Need.READ)).toBe(true);
    expect(can(['n0'], Need.READ)).toBe(false);
    expect(can(['n6'], Need.READ)).toBe(false);
    // No ACL entry can name it: every domid a permission list can hold is another domain.
    expect(can(['n0', 'r65535', 'r32756', 'r0'], Need.READ)).toBe(false);
  });

  it('never writes or owns, even where everyone may write', () => {
    expect(can(['b0'], Need.WRITE)).toBe(false);
    expect(can(['w0'], Need.WRITE)).toBe(false);
    expect(can(['b0'], Need.OWNER)).toBe(false);
  });
});
