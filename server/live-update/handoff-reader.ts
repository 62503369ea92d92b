import {
  decodeStream,
  encodeStream,
  type ConnectionRecord,
  type DomainRecord,
  type GlobalQuotaRecord,
  type GlobalRecord,
  type NxStateRecord,
  type NxTreeRecord,
  type StateRecord,
  type StateStream,
  type WatchRecord,
} from '../../protocol/xen-state/index.js';
import { applySpan, decodeDelta, decodeSnapshot, parseWatchPath, type Store } from '../../store/index.js';
import { STREAM_VERSION, type HandoffTree } from './handoff-file.js';
import { parseNxState, parseState, type HandoffState } from './handoff-state.js';

/**
 * Reading a live-update state file (the next process's side; handoff-file.ts writes it): a Xen
 * state stream of our records, or a previous build's "NXLU" file, so that a live update from the
 * build deployed before the stream into this one works (we write only the stream). Strict: an
 * unknown record type, a torn file, a wrong version, a record we do not write, a connection or
 * domain the records and NX_STATE disagree on are all refused with a message, and the previous
 * process serves on (take-over.ts throws before taking anything).
 */

/** The previous format: "NXLU", u32 LE length, the state as JSON (version 1), the store's bytes. */
const LEGACY_MAGIC = 'NXLU';
const STREAM_IDENT = 'xenstore';
/**
 * Watch paths were checked against the path quota when registered; here only their form is
 * (relative or absolute, `@...`), within what a WATCH record's u16 length can hold.
 */
const WATCH_PATH_MAX = 0xffff;

export interface DecodedHandoff {
  readonly state: HandoffState;
  /** Undefined for a pre-copy's state: its store is in `BASE_FILE`. */
  readonly tree: HandoffTree | undefined;
}

/** `decodeHandoffState(bytes)` is the validated state and its tree undecoded; throws saying what is wrong. */
export function decodeHandoffState(bytes: Buffer): DecodedHandoff {
  const head = bytes.toString('latin1', 0, 8);
  if (head === STREAM_IDENT) return fromStream(bytes);
  if (head.startsWith(LEGACY_MAGIC)) return fromLegacy(bytes);
  throw new Error('live-update state: not a state file (neither a xenstore state stream nor a previous build\'s "NXLU" file)');
}

/**
 * `decodeHandoff(bytes, base?)` reads a state file and its store. A pause's state after a
 * pre-copy (`state.base`) holds a delta from `base`, the version the pre-copy's state held.
 */
export function decodeHandoff(bytes: Buffer, base?: Store): { state: HandoffState; store: Store } {
  const decoded = decodeHandoffState(bytes);
  return { state: decoded.state, store: storeOf(decoded, base) };
}

/** `storeOf(decoded, base?)`: the snapshot decoded, or the delta applied to `base`. */
export function storeOf({ state, tree }: DecodedHandoff, base?: Store): Store {
  if (tree === undefined) throw new Error('live-update state: no tree (a pre-copy\'s state holds it in its own file)');
  try {
    if (tree.form === 'snapshot') return decodeSnapshot(tree.bytes);
    if (base === undefined || base.generation !== state.base) {
      throw new Error(`follows generation ${state.base}, not the pre-copied ${base?.generation}`);
    }
    return tree.bytes.length === 0 ? base : applySpan(base, decodeDelta(tree.bytes));
  } catch (e) {
    throw new Error(`live-update state: ${(e as Error).message}`);
  }
}

function fromStream(bytes: Buffer): DecodedHandoff {
  let stream: StateStream;
  try {
    stream = decodeStream(bytes);
  } catch (e) {
    throw new Error(`live-update state: ${(e as Error).message}`);
  }
  if (stream.version !== STREAM_VERSION) throw new Error(`live-update state: stream version ${stream.version}; ours are version ${STREAM_VERSION}`);
  const r = collect(stream.records);
  const nx = parseNxState(r.nx.json.toString('utf8'));

  const described = new Set<number>();
  const connections = nx.connections.map((c) => {
    const found = r.conns.get(c.connId);
    const end = found?.record.end;
    if (found === undefined || end?.kind !== 'socket') throw new Error(`live-update state: NX_STATE describes connection ${c.connId}, which is no socket CONNECTION_DATA record`);
    if (described.has(c.connId)) throw new Error(`live-update state: NX_STATE describes connection ${c.connId} twice`);
    described.add(c.connId);
    const { record, watches } = found;
    if (record.output.length > 0) throw new Error(`live-update state: connection ${c.connId} has output; ours is sent before the state is written`);
    const unread = c.moreInput === undefined ? record.input : Buffer.concat([record.input, Buffer.from(c.moreInput, 'base64')]);
    return {
      fd: end.fd,
      kind: c.kind,
      caller: c.caller,
      watches: watches.map((w) => {
        const p = watchPath(w, c.caller.domid);
        return { path: w.path, canonical: p.path, token: w.token, relative: p.kind === 'node' && w.path !== p.path, depth: w.depth };
      }),
      aborted: c.aborted,
      unread: unread.toString('base64'),
      droppedEvents: c.droppedEvents,
    };
  });
  // The connections NX_STATE does not describe are the Xen rings carried from a take-over.
  const rings: StateRecord[] = [];
  for (const [id, { record, watches }] of r.conns) {
    if (described.has(id)) continue;
    if (record.end.kind !== 'ring') throw new Error(`live-update state: socket connection ${id} is not described in NX_STATE`);
    rings.push(record, ...watches);
  }
  const carried = r.global.evtchnFd >= 0 || rings.length > 0;

  const domains = nx.domains.map((d) => {
    const rec = r.domains.get(d.domid);
    if (rec === undefined) throw new Error(`live-update state: domain ${d.domid} has no DOMAIN_DATA record`);
    return { ...d, features: rec.features };
  });
  let reply: HandoffState['reply'];
  if (nx.reply !== undefined) {
    const index = nx.connections.findIndex((c) => c.connId === nx.reply!.connId);
    if (index < 0) throw new Error('live-update state: the reply names no connection');
    reply = { connection: index, reqId: nx.reply.reqId, txId: nx.reply.txId };
  }
  const state = parseState({
    pid: nx.pid,
    rundir: nx.rundir,
    listeners: { socket: r.global.socketFd, socketRo: nx.socketRo },
    quotas: quotasOf(r, nx.wideQuotas),
    accessLog: nx.accessLog,
    stats: nx.stats,
    domains,
    connections,
    reply,
    gatewayTokens: nx.gatewayTokens,
    precopy: nx.precopy,
    base: nx.base,
    xen: carried ? { evtchnFd: r.global.evtchnFd, rings: encodeStream({ version: 2, records: rings }).toString('base64') } : undefined,
  });
  const tree = r.tree === undefined ? undefined : { form: r.tree.form, bytes: r.tree.bytes };
  if (state.precopy === true && tree !== undefined) throw new Error('live-update state: a pre-copy\'s state with an NX_TREE record');
  if (state.precopy !== true && tree === undefined) throw new Error('live-update state: no NX_TREE record');
  if (tree !== undefined && (tree.form === 'delta') !== (state.base !== undefined)) {
    throw new Error(`live-update state: NX_TREE holds a ${tree.form}, but NX_STATE ${state.base === undefined ? 'names no' : 'names a'} pre-copied version`);
  }
  return { state, tree };
}

/** Quota settings: GLOBAL_QUOTA_DATA's and DOMAIN_DATA's values, with NX_STATE's wider ones. */
function quotasOf(r: Collected, wide: HandoffState['quotas'] | undefined): HandoffState['quotas'] {
  const domains = new Map<number, Record<string, number>>();
  for (const d of r.domains.values()) if (d.quotas.length > 0) domains.set(d.domid, Object.fromEntries(d.quotas));
  for (const [domid, q] of wide?.domains ?? []) domains.set(domid, { ...domains.get(domid), ...q });
  return { global: { ...Object.fromEntries([...r.quota.perDomain, ...r.quota.global]), ...wide?.global }, domains: [...domains] };
}

interface Collected {
  readonly global: GlobalRecord;
  readonly quota: GlobalQuotaRecord;
  readonly nx: NxStateRecord;
  readonly tree: NxTreeRecord | undefined;
  readonly conns: ReadonlyMap<number, { readonly record: ConnectionRecord; readonly watches: WatchRecord[] }>;
  readonly domains: ReadonlyMap<number, DomainRecord>;
}

/** The records by kind, each once where one is expected; a record we never write is refused. */
function collect(records: readonly StateRecord[]): Collected {
  let global: GlobalRecord | undefined;
  let quota: GlobalQuotaRecord | undefined;
  let nx: NxStateRecord | undefined;
  let tree: NxTreeRecord | undefined;
  const conns = new Map<number, { record: ConnectionRecord; watches: WatchRecord[] }>();
  const domains = new Map<number, DomainRecord>();
  const once = <T>(seen: T | undefined, r: T, name: string): T => {
    if (seen !== undefined) throw new Error(`live-update state: two ${name} records`);
    return r;
  };
  for (const r of records) {
    switch (r.type) {
      case 'global':
        global = once(global, r, 'GLOBAL_DATA');
        break;
      case 'global-quota':
        quota = once(quota, r, 'GLOBAL_QUOTA_DATA');
        break;
      case 'nx-state':
        nx = once(nx, r, 'NX_STATE');
        break;
      case 'nx-tree':
        tree = once(tree, r, 'NX_TREE');
        break;
      case 'connection':
        if (conns.has(r.connId)) throw new Error(`live-update state: connection ${r.connId} twice`);
        conns.set(r.connId, { record: r, watches: [] });
        break;
      case 'watch': {
        const c = conns.get(r.connId);
        if (c === undefined) throw new Error(`live-update state: a watch of connection ${r.connId}, which comes later or not at all`);
        c.watches.push(r);
        break;
      }
      case 'domain':
        if (domains.has(r.domid)) throw new Error(`live-update state: domain ${r.domid} twice`);
        domains.set(r.domid, r);
        break;
      case 'node':
      case 'transaction':
        // Our tree travels as NX_TREE, and transactions never travel (live-updater.ts).
        throw new Error(`live-update state: a ${r.type === 'node' ? 'NODE_DATA' : 'TRANSACTION_DATA'} record, which our live update never writes`);
    }
  }
  if (global === undefined) throw new Error('live-update state: no GLOBAL_DATA record');
  if (quota === undefined) throw new Error('live-update state: no GLOBAL_QUOTA_DATA record');
  if (nx === undefined) throw new Error('live-update state: no NX_STATE record');
  return { global, quota, nx, tree, conns, domains };
}

function watchPath(w: WatchRecord, domid: number) {
  try {
    return parseWatchPath(w.path, domid, WATCH_PATH_MAX);
  } catch (e) {
    throw new Error(`live-update state: watch of connection ${w.connId}: ${(e as Error).message}`);
  }
}

/** A previous build's file: its JSON is today's state plus `version: 1`, its tail the store. */
function fromLegacy(bytes: Buffer): DecodedHandoff {
  if (bytes.length < 8) throw new Error('live-update state: truncated');
  const len = bytes.readUInt32LE(4);
  if (8 + len > bytes.length) throw new Error('live-update state: truncated');
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8', 8, 8 + len));
  } catch (e) {
    throw new Error(`live-update state: ${(e as Error).message}`);
  }
  const version = (raw as { version?: unknown } | null)?.version;
  if (version !== 1) throw new Error(`live-update state: "NXLU" file of version ${JSON.stringify(version)}; only version 1 is known`);
  const state = parseState(raw);
  const tail = bytes.subarray(8 + len);
  // A pre-copy's state had no store; a pause's after it, a delta (possibly empty); else a snapshot.
  const tree: HandoffTree | undefined = state.precopy === true ? undefined : { form: state.base === undefined ? 'snapshot' : 'delta', bytes: tail };
  return { state, tree };
}
