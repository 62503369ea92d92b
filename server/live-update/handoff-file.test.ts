import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeStream, encodeStream, type StateRecord } from '../../protocol/xen-state/index.js';
import { createStore, DOM0, execute, DEFAULT_LIMITS, encodeSnapshot, type Store } from '../../store/index.js';
import { Quotas } from '../quotas/index.js';
import { encodeHandoff as encodeStateFile } from './handoff-file.js';
import { decodeHandoff, decodeHandoffState } from './handoff-reader.js';
import { parseLate, type HandoffState } from './handoff-state.js';

/** The state file of a process that hands over its whole store (no pre-copy). */
const encodeHandoff = (state: HandoffState, s: Store) => encodeStateFile(state, { form: 'snapshot', bytes: encodeSnapshot(s) });

const state: HandoffState = {
  pid: 1234,
  rundir: '/run/xenstored',
  listeners: { socket: 4, socketRo: 5 },
  quotas: { global: { nodes: 1000, watches: 0 }, domains: [[5, { nodes: 77 }]] },
  accessLog: false,
  stats: { requests: 9, commits: { 'read-only': 1, fast: 2, merge: 3, replay: 4 }, conflicts: 5 },
  domains: [{ domid: 5, mfn: '4101', port: 6, target: 7, features: 3, fd: 6 }],
  connections: [
    {
      fd: 7,
      kind: 'domain',
      caller: { domid: 5, privileged: false, target: 7 },
      watches: [
        { path: 'data', canonical: '/local/domain/5/data', token: 'tok\u00e9', relative: true },
        { path: '/abs', canonical: '/abs', token: 't', relative: false, depth: 2 },
        { path: '@releaseDomain', canonical: '@releaseDomain', token: 'r', relative: false },
      ],
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
    expect(() => decodeHandoff(bytes.subarray(0, 20))).toThrow(/live-update state: torn state stream/);
    expect(() => decodeHandoff(bytes.subarray(0, bytes.length - 3))).toThrow(/live-update state: torn state stream/);
    expect(() => decodeHandoff(encodeHandoff({ ...state, listeners: { socket: 1, socketRo: 5 } }, store()))).toThrow(/live-update state/);
    expect(() => decodeHandoff(encodeHandoff({ ...state, reply: { connection: 1, reqId: 1, txId: 0 } }, store()))).toThrow(/no connection/);
  });

  it('validates a connection passed over IPC', () => {
    const { fd: _fd, ...late } = state.connections[0]!;
    expect(parseLate(late)).toEqual(late);
    expect(() => parseLate({ ...late, kind: 'admin' })).toThrow(/late connection/);
  });
});

describe('the state file is a Xen state stream (issue 15: one format)', () => {
  const bytes = () => encodeHandoff(state, store());
  /** The file with its records changed by `edit`, written again. */
  const edited = (edit: (records: StateRecord[]) => StateRecord[]) => {
    const s = decodeStream(bytes());
    return encodeStream({ version: s.version, records: edit([...s.records]) });
  };
  const nxOf = (records: StateRecord[]) => {
    const r = records.find((x) => x.type === 'nx-state')!;
    return JSON.parse((r as { json: Buffer }).json.toString('utf8')) as Record<string, unknown>;
  };
  const withNx = (records: StateRecord[], nx: unknown): StateRecord[] =>
    records.map((r) => (r.type === 'nx-state' ? { type: 'nx-state', json: Buffer.from(JSON.stringify(nx)) } : r));

  it("carries in Xen's own records what they can: the socket, connections with unread bytes, watches with depth, domains, quotas", () => {
    const s = decodeStream(bytes());
    expect(s.version).toBe(2);
    expect(s.records.map((r) => r.type)).toEqual(['global', 'connection', 'watch', 'watch', 'watch', 'global-quota', 'domain', 'nx-state', 'nx-tree']);
    expect(s.records[0]).toEqual({ type: 'global', socketFd: 4, evtchnFd: -1 });
    expect(s.records[1]).toMatchObject({ type: 'connection', connId: 1, end: { kind: 'socket', fd: 7 }, input: Buffer.from([1, 0, 0, 0, 9]), output: Buffer.alloc(0) });
    expect(s.records.slice(2, 5)).toEqual([
      { type: 'watch', connId: 1, path: 'data', token: 'tok\u00e9', depth: undefined },
      { type: 'watch', connId: 1, path: '/abs', token: 't', depth: 2 },
      { type: 'watch', connId: 1, path: '@releaseDomain', token: 'r', depth: undefined },
    ]);
    expect(s.records[5]).toEqual({ type: 'global-quota', perDomain: [['nodes', 1000], ['watches', 0]], global: [] });
    expect(s.records[6]).toEqual({ type: 'domain', domid: 5, features: 3, quotas: [['nodes', 77]] });
    // Only what Xen's records lack is JSON, and no field is in both.
    const nx = nxOf([...s.records]);
    expect(Object.keys(nx).sort()).toEqual(['accessLog', 'connections', 'domains', 'gatewayTokens', 'pid', 'reply', 'rundir', 'socketRo', 'stats']);
    expect(nx.connections).toEqual([{ connId: 1, kind: 'domain', caller: { domid: 5, privileged: false, target: 7 }, aborted: [3], droppedEvents: 0 }]);
    expect(s.records[8]).toMatchObject({ type: 'nx-tree', form: 'snapshot' });
  });

  it('quotas of a domain not introduced travel in a DOMAIN_DATA record of their own', () => {
    const q = { ...state, quotas: { global: {}, domains: [[5, { nodes: 77 }], [9, { watches: 4 }]] as [number, Record<string, number>][] } };
    const back = decodeHandoff(encodeHandoff(q, store())).state;
    expect(back.quotas).toEqual(q.quotas);
  });

  it('quota values beyond the 32 bits of Xen\'s records go on in NX_STATE', () => {
    const q = { ...state, quotas: { global: { memory: 5_000_000_000, nodes: 10 }, domains: [[5, { nodes: 77, memory: 2 ** 40 }]] as [number, Record<string, number>][] } };
    const file = encodeHandoff(q, store());
    const records = decodeStream(file).records;
    expect(records.find((r) => r.type === 'global-quota')).toEqual({ type: 'global-quota', perDomain: [['nodes', 10]], global: [] });
    expect(records.find((r) => r.type === 'domain')).toEqual({ type: 'domain', domid: 5, features: 3, quotas: [['nodes', 77]] });
    expect(decodeHandoff(file).state.quotas).toEqual(q.quotas);
  });

  it('unread bytes beyond the 65535 a CONNECTION_DATA record holds go on in NX_STATE', () => {
    const big = Buffer.alloc(70_000, 0x41);
    const s = { ...state, connections: [{ ...state.connections[0]!, unread: big.toString('base64') }] };
    const file = encodeHandoff(s, store());
    expect((decodeStream(file).records[1] as { input: Buffer }).input.length).toBe(0xffff);
    expect(Buffer.from(decodeHandoff(file).state.connections[0]!.unread, 'base64').equals(big)).toBe(true);
  });

  it('the Xen rings carried from a take-over are CONNECTION_DATA records of their own, and come back as they were', () => {
    const ring: StateRecord = { type: 'connection', connId: 1, end: { kind: 'ring', domid: 0, target: undefined, evtchn: 2 }, input: Buffer.alloc(0), output: Buffer.from('pending'), partial: 0, uniqueId: 7n };
    const watch: StateRecord = { type: 'watch', connId: 1, path: '/w', token: 'k', depth: undefined };
    const rings = encodeStream({ version: 2, records: [ring, watch] }).toString('base64');
    const s = { ...state, xen: { evtchnFd: 9, rings } };
    const file = encodeHandoff(s, store());
    const records = decodeStream(file).records;
    expect(records[0]).toEqual({ type: 'global', socketFd: 4, evtchnFd: 9 });
    // After our connection (conn-id 1), renumbered.
    expect(records.filter((r) => r.type === 'connection' && r.end.kind === 'ring')).toEqual([{ ...ring, connId: 2 }]);
    expect(records).toContainEqual({ ...watch, connId: 2 });
    const back = decodeHandoff(file).state;
    expect(back.xen?.evtchnFd).toBe(9);
    expect(decodeStream(Buffer.from(back.xen!.rings, 'base64')).records).toEqual([
      { ...ring, connId: 2 },
      { ...watch, connId: 2 },
    ]);
    expect(back.connections).toEqual(state.connections);
  });

  it('a pre-copy state has no tree; the pause state after it a delta, checked against the pre-copied version', () => {
    const pre = decodeHandoffState(encodeStateFile({ ...state, precopy: true }, undefined));
    expect(pre.tree).toBeUndefined();
    expect(pre.state.precopy).toBe(true);
    const base = store();
    const pause = encodeStateFile({ ...state, base: base.generation }, { form: 'delta', bytes: Buffer.alloc(0) });
    expect(decodeHandoff(pause, base).store).toBe(base);
    const later: Store = { ...base, generation: base.generation + 1 };
    expect(() => decodeHandoff(pause, later)).toThrow(/follows generation/);
  });

  it('refuses an unknown record, a wrong version, a record we never write, and records that disagree with NX_STATE', () => {
    const unknown = Buffer.from(bytes());
    unknown.writeUInt32LE(0x4e580009, 16);
    expect(() => decodeHandoff(unknown)).toThrow('live-update state: unknown record type 0x4e580009 at offset 16');
    const v1 = Buffer.from(bytes());
    v1.writeUInt32BE(1, 8);
    expect(() => decodeHandoff(v1)).toThrow('live-update state: stream version 1; ours are version 2');
    const v3 = Buffer.from(bytes());
    v3.writeUInt32BE(3, 8);
    expect(() => decodeHandoff(v3)).toThrow(/live-update state: unsupported state stream version 3/);
    const node: StateRecord = { type: 'node', connId: 0, txId: 0, txAccess: 0, path: '/', value: Buffer.alloc(0), perms: [{ access: 'n', ignore: false, domid: 0 }] };
    expect(() => decodeHandoff(edited((r) => [...r, node]))).toThrow(/a NODE_DATA record, which our live update never writes/);
    expect(() => decodeHandoff(edited((r) => r.filter((x) => x.type !== 'nx-state')))).toThrow('live-update state: no NX_STATE record');
    expect(() => decodeHandoff(edited((r) => r.filter((x) => x.type !== 'global')))).toThrow('live-update state: no GLOBAL_DATA record');
    expect(() => decodeHandoff(edited((r) => r.filter((x) => x.type !== 'nx-tree')))).toThrow('live-update state: no NX_TREE record');
    expect(() => decodeHandoff(edited((r) => r.filter((x) => x.type !== 'domain')))).toThrow('live-update state: domain 5 has no DOMAIN_DATA record');
    expect(() => decodeHandoff(edited((r) => [...r, r.find((x) => x.type === 'nx-state')!]))).toThrow('live-update state: two NX_STATE records');
    expect(() => decodeHandoff(edited((r) => withNx(r, { ...nxOf(r), connections: [] })))).toThrow('live-update state: socket connection 1 is not described in NX_STATE');
    expect(() => decodeHandoff(edited((r) => withNx(r, { ...nxOf(r), pid: 'x' })))).toThrow(/live-update state: NX_STATE: .*pid/s);
    expect(() => decodeHandoff(edited((r) => r.map((x) => (x.type === 'nx-state' ? { ...x, json: Buffer.from('{') } : x))))).toThrow(/live-update state: NX_STATE: /);
    expect(() => decodeHandoff(edited((r) => r.map((x) => (x.type === 'nx-tree' ? { ...x, form: 'delta' as const } : x))))).toThrow(
      'live-update state: NX_TREE holds a delta, but NX_STATE names no pre-copied version',
    );
    expect(() => decodeHandoff(edited((r) => r.map((x) => (x.type === 'watch' ? { ...x, path: '' } : x))))).toThrow(/live-update state: watch of connection 1: /);
    expect(() => decodeHandoff(edited((r) => r.map((x) => (x.type === 'global' ? { ...x, socketFd: -1 } : x))))).toThrow(/live-update state: .*listeners/s);
    expect(() => decodeHandoff(edited((r) => r.map((x) => (x.type === 'nx-tree' ? { ...x, bytes: Buffer.from('not a snapshot') } : x))))).toThrow(/^live-update state: /);
  });

  it('fuzz: a flipped byte or a cut anywhere in the file is refused with a "live-update state" message, or decodes', () => {
    const good = bytes();
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 }), fc.boolean(), (at, byte, truncate) => {
        const bad = truncate ? good.subarray(0, at) : Buffer.from(good);
        if (!truncate) bad[at] = byte;
        try {
          decodeHandoff(bad);
          return !truncate;
        } catch (e) {
          return e instanceof Error && e.message.startsWith('live-update state: ');
        }
      }),
      { numRuns: 2000 },
    );
  });
});

/**
 * A state file as the build before the stream wrote it ("NXLU", the JSON length, the JSON with
 * `version: 1`, the store): the next process still reads it, so that a live update from the build
 * deployed before this one into this one works.
 */
function legacyFile(s: HandoffState, tail: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify({ version: 1, ...s }), 'utf8');
  const head = Buffer.alloc(8);
  head.write('NXLU', 0, 'latin1');
  head.writeUInt32LE(json.length, 4);
  return Buffer.concat([head, json, tail]);
}

describe("the previous build's state file (NXLU)", () => {
  const { features: _f, ...oldDomain } = state.domains[0]!;
  const old: HandoffState = { ...state, domains: [oldDomain] };

  it('is read: the state, and its snapshot, delta or (pre-copy) no tree', () => {
    const s = store();
    const { state: back, store: t } = decodeHandoff(legacyFile(old, encodeSnapshot(s)));
    expect(back).toEqual(old);
    expect(t.generation).toBe(s.generation);
    expect(decodeHandoffState(legacyFile({ ...old, precopy: true }, Buffer.alloc(0))).tree).toBeUndefined();
    expect(decodeHandoff(legacyFile({ ...old, base: s.generation }, Buffer.alloc(0)), s).store).toBe(s);
  });

  it('is refused when cut, of another version, or not valid', () => {
    const file = legacyFile(old, encodeSnapshot(store()));
    expect(() => decodeHandoff(file.subarray(0, 20))).toThrow('live-update state: truncated');
    const json = Buffer.from(JSON.stringify({ ...old, version: 2 }));
    expect(() => decodeHandoff(Buffer.concat([Buffer.from('NXLU'), Buffer.from(new Uint32Array([json.length]).buffer), json]))).toThrow(
      'live-update state: "NXLU" file of version 2; only version 1 is known',
    );
    expect(() => decodeHandoff(legacyFile({ ...old, listeners: { socket: 1, socketRo: 5 } }, Buffer.alloc(0)))).toThrow(/live-update state/);
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
