import { describe, expect, it } from 'vitest';
import { createStore, DOM0, execute, DEFAULT_LIMITS } from '../../store/index.js';
import { Quotas } from '../quotas/index.js';
import { decodeHandoff, encodeHandoff, HANDOFF_VERSION, parseLate, type HandoffState } from './handoff-state.js';

const state: HandoffState = {
  version: HANDOFF_VERSION,
  pid: 1234,
  rundir: '/run/xenstored',
  listeners: { socket: 4, socketRo: 5 },
  quotas: { global: { nodes: 1000, watches: 0 }, domains: [[5, { nodes: 77 }]] },
  accessLog: false,
  stats: { requests: 9, commits: { 'read-only': 1, fast: 2, merge: 3, replay: 4 }, conflicts: 5 },
  domains: [{ domid: 5, mfn: '4101', port: 6, target: 7, fd: 6 }],
  connections: [
    {
      fd: 7,
      kind: 'domain',
      caller: { domid: 5, privileged: false, target: 7 },
      watches: [{ path: 'data', canonical: '/local/domain/5/data', token: 'tok\u00e9', relative: true }],
      aborted: [3],
      unread: Buffer.from([1, 0, 0, 0, 9]).toString('base64'),
      droppedEvents: 0,
    },
  ],
  reply: { connection: 0, reqId: 77, txId: 0 },
  gatewayTokens: [['Zm9vYmFyLXRva2VuLWJhc2U2NHVybA', 5]],
};

function store() {
  return execute(createStore(), DOM0, DEFAULT_LIMITS, { op: 'write', path: '/a/b', value: 'v\u00ff' }).store;
}

describe('the live-update state file', () => {
  it('round-trips the state and the store', () => {
    const s = store();
    const { state: back, store: t } = decodeHandoff(encodeHandoff(state, s));
    expect(back).toEqual(state);
    expect(t.generation).toBe(s.generation);
    expect(t.root.children.get('a')?.children.get('b')?.value).toBe('v\u00ff');
  });

  it('a state from a process that counted graft commits carries them over as merges', () => {
    const old = { ...state, stats: { ...state.stats, commits: { 'read-only': 1, fast: 2, graft: 3, replay: 4 } } };
    const { state: back } = decodeHandoff(encodeHandoff(old as unknown as HandoffState, store()));
    expect(back.stats.commits).toEqual({ 'read-only': 1, fast: 2, merge: 3, replay: 4 });
  });

  it('a state from a process that handed on no gateway tokens has none', () => {
    const { gatewayTokens: _t, ...old } = state;
    expect(decodeHandoff(encodeHandoff(old as HandoffState, store())).state.gatewayTokens).toEqual([]);
  });

  it('refuses a gateway token that is no token, or names no guest', () => {
    for (const bad of [['has space', 5], ['ok', 0], ['ok', 70000]] as [string, number][]) {
      expect(() => decodeHandoff(encodeHandoff({ ...state, gatewayTokens: [bad] }, store()))).toThrow(/live-update state/);
    }
  });

  it('refuses what is not a state file, a cut one, a bad field, a reply to no connection', () => {
    const bytes = encodeHandoff(state, store());
    expect(() => decodeHandoff(Buffer.from('nonsense'))).toThrow(/not a state file/);
    expect(() => decodeHandoff(bytes.subarray(0, 20))).toThrow(/truncated/);
    expect(() => decodeHandoff(bytes.subarray(0, bytes.length - 3))).toThrow();
    expect(() => decodeHandoff(encodeHandoff({ ...state, listeners: { socket: 1, socketRo: 5 } }, store()))).toThrow(/live-update state/);
    expect(() => decodeHandoff(encodeHandoff({ ...state, reply: { connection: 1, reqId: 1, txId: 0 } }, store()))).toThrow(/no connection/);
  });

  it('validates a connection passed over IPC', () => {
    const { fd: _fd, ...late } = state.connections[0]!;
    expect(parseLate(late)).toEqual(late);
    expect(() => parseLate({ ...late, kind: 'admin' })).toThrow(/late connection/);
  });
});

describe('quota settings carried over', () => {
  it('apply(settings()) gives the same global and per-domain values, unlimited included', () => {
    const q = new Quotas();
    q.set('watches', 0);
    q.set('nodes', 77, 5);
    q.set('transactions', 3, 9);
    const r = new Quotas();
    r.apply(q.settings());
    for (const name of q.names()) {
      expect(r.get(name)).toBe(q.get(name));
      for (const domid of [5, 9, 11]) expect(r.get(name, domid)).toBe(q.get(name, domid));
    }
    expect(r.settings()).toEqual(q.settings());
  });
});
