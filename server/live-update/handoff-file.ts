import {
  decodeStream,
  encodeStream,
  type ConnectionRecord,
  type NxTreeRecord,
  type StateRecord,
  type WatchRecord,
} from '../../protocol/xen-state/index.js';
import { OFFERED_FEATURES } from '../../protocol/index.js';
import type { HandoffState, NxState } from './handoff-state.js';

/**
 * The state file as written: a Xen state stream (protocol/xen-state/, `docs/designs/
 * xenstore-migration.md`), one format for Xen's live update and ours (issue 15). This file only
 * writes it, without zod: the process that hands over does not load the schema that reads it
 * back (issue 16: every daemon constructs its live updater before its first reply); the next
 * process reads it with handoff-reader.ts. Records, in order:
 * - GLOBAL_DATA: the read-write listening socket; the carried event channel device or -1;
 * - per connection CONNECTION_DATA (a socket, its descriptor; its unread bytes as the pending
 *   input; no output: the pause drained it), then its WATCH_DATA / WATCH_DATA_EXTENDED (depth);
 * - the Xen rings a take-over from cxenstored left us (server/xen-migration/carried.ts), as Xen's
 *   own CONNECTION_DATA and WATCH records, verbatim but for their conn-ids;
 * - GLOBAL_QUOTA_DATA (our global quotas: the defaults of every domain), DOMAIN_DATA per domain
 *   introduced (its feature bits and quotas) and per other domain with quotas of its own;
 * - NX_STATE (the rest, JSON: `NxState`), NX_TREE (the store, unless the pre-copy's file holds it).
 */

/** Our stream's version: 2, for DOMAIN_DATA's feature bits (version 1 has none). */
export const STREAM_VERSION = 2 as const;

/**
 * The pre-copied version's snapshot, in the run directory beside the state (mode 0600): written
 * apart from it, asynchronously, so that the serving process never blocks on tens of megabytes.
 * It is the snapshot codec's bytes as they are (checksummed), the same bytes an NX_TREE carries.
 */
export const BASE_FILE = 'live-update.base';

/** CONNECTION_DATA's data-in-len is 16 bits: unread bytes beyond go in NX_STATE (`moreInput`). */
const INPUT_MAX = 0xffff;

/** The store's part of the state: a snapshot, or the delta since the pre-copied version. */
export type HandoffTree = Pick<NxTreeRecord, 'form' | 'bytes'>;

/**
 * `encodeHandoff(state, tree)` is the state file's bytes. `tree` is undefined for the pre-copy's
 * state (its store is in `BASE_FILE`); a pause's state after a pre-copy (`state.base`) holds a
 * delta, possibly empty.
 */
export function encodeHandoff(state: HandoffState, tree: HandoffTree | undefined): Buffer {
  const records: StateRecord[] = [{ type: 'global', socketFd: state.listeners.socket, evtchnFd: state.xen?.evtchnFd ?? -1 }];
  const connections: NxState['connections'] = [];
  let connId = 0;
  for (const c of state.connections) {
    const id = ++connId;
    const unread = Buffer.from(c.unread, 'base64');
    records.push({
      type: 'connection',
      connId: id,
      end: { kind: 'socket', fd: c.fd },
      input: unread.subarray(0, INPUT_MAX),
      output: Buffer.alloc(0),
      partial: 0,
    });
    for (const w of c.watches) records.push({ type: 'watch', connId: id, path: w.path, token: w.token, depth: w.depth });
    connections.push({
      connId: id,
      kind: c.kind,
      caller: c.caller,
      aborted: c.aborted,
      droppedEvents: c.droppedEvents,
      moreInput: unread.length > INPUT_MAX ? unread.subarray(INPUT_MAX).toString('base64') : undefined,
    });
  }
  if (state.xen !== undefined) {
    // The carried rings are Xen's records already (carried.ts): renumbered after our connections.
    const ids = new Map<number, number>();
    for (const r of decodeStream(Buffer.from(state.xen.rings, 'base64')).records) {
      if (r.type === 'connection') {
        ids.set(r.connId, ++connId);
        records.push({ ...r, connId } satisfies ConnectionRecord);
      } else if (r.type === 'watch' && ids.has(r.connId)) {
        records.push({ ...r, connId: ids.get(r.connId)! } satisfies WatchRecord);
      } else throw new Error(`carried rings: unexpected ${r.type} record`);
    }
  }
  // A quota value is 32 bits in Xen's records; CONTROL `quota set` takes more (a memory quota
  // in bytes may exceed 4 GiB): those go on in NX_STATE (`wideQuotas`).
  const global = splitQuotas(state.quotas.global);
  const wide = { global: global.wide, domains: [] as [number, Record<string, number>][] };
  records.push({ type: 'global-quota', perDomain: global.narrow, global: [] });
  const overrides = new Map(state.quotas.domains);
  const domainQuotas = (domid: number): [string, number][] => {
    const q = splitQuotas(overrides.get(domid) ?? {});
    overrides.delete(domid);
    if (Object.keys(q.wide).length > 0) wide.domains.push([domid, q.wide]);
    return q.narrow;
  };
  for (const d of state.domains) {
    records.push({ type: 'domain', domid: d.domid, features: d.features ?? OFFERED_FEATURES, quotas: domainQuotas(d.domid) });
  }
  // Quotas set for a domain not introduced (SET_QUOTA before INTRODUCE): no features to carry.
  for (const domid of [...overrides.keys()]) records.push({ type: 'domain', domid, features: 0, quotas: domainQuotas(domid) });

  const reply = state.reply === undefined ? undefined : { connId: state.reply.connection + 1, reqId: state.reply.reqId, txId: state.reply.txId };
  const nx: NxState = {
    pid: state.pid,
    rundir: state.rundir,
    accessLog: state.accessLog,
    stats: state.stats,
    gatewayTokens: state.gatewayTokens,
    precopy: state.precopy,
    base: state.base,
    socketRo: state.listeners.socketRo,
    domains: state.domains.map(({ features: _f, ...d }) => d),
    connections,
    reply,
    wideQuotas: Object.keys(wide.global).length > 0 || wide.domains.length > 0 ? wide : undefined,
  };
  records.push({ type: 'nx-state', json: Buffer.from(JSON.stringify(nx), 'utf8') });
  if (tree !== undefined) records.push({ type: 'nx-tree', ...tree });
  return encodeStream({ version: STREAM_VERSION, records });
}

/** Quota values as Xen's 32-bit fields hold them (`narrow`), and those wider. */
function splitQuotas(q: Readonly<Record<string, number>>): { narrow: [string, number][]; wide: Record<string, number> } {
  const narrow: [string, number][] = [];
  const wide: Record<string, number> = {};
  for (const [name, value] of Object.entries(q)) {
    if (value <= 0xffffffff) narrow.push([name, value]);
    else wide[name] = value;
  }
  return { narrow, wide };
}
