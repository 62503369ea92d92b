import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import type { Log } from '../logger.js';
import { decodeStream, type ConnectionRecord, type DomainRecord, type StatePerm, type WatchRecord } from '../../protocol/xen-state/index.js';
import { DOM0, fromNodeList, parseWatchPath, XsError, type ListedNode, type PermEntry, type Perms, type SpecialPerms } from '../../store/index.js';
import type { Connection } from '../connection/index.js';
import { Daemon, type DaemonOptions } from '../daemon.js';
import { listen, type Listeners } from '../transport/index.js';
import type { Quotas } from '../quotas/index.js';
import type { CarriedRing, XenCarried } from './carried.js';

/** cxenstored's state file, in its run directory (`lu_get_dump_state`). */
export const XEN_STATE_FILE = 'state_dump';

/** Domain ids of real guests: below DOMID_FIRST_RESERVED (0x7FF0). */
const DOMID_MAX_GUEST = 0x7fef;

export interface XenTakeOverOptions {
  readonly log: Log;
  readonly rundir: string;
  /** The command line's quotas; a 4.22 stream's GLOBAL_QUOTA and DOMAIN records win. */
  readonly quotas: Quotas;
  readonly tuning?: Pick<DaemonOptions, 'fairness' | 'turnIdleMs' | 'socketIo' | 'fdReserve' | 'diskBudget' | 'history' | 'historyLog'>;
  /** `-F FILE`: where to write our pid once we serve. */
  readonly pidFile?: string | undefined;
}

export interface XenTakenOver {
  readonly daemon: Daemon;
  readonly carried: XenCarried;
  /** Listens on cxenstored's socket (and a new socket_ro), sends what cxenstored had left to send, serves. */
  serve(): Promise<Listeners>;
}

/**
 * `takeOverFromXen(options)`: started by cxenstored's `xenstore-control live-update -f <us>`
 * (exec in place, argv `<its options> -U`), load `<rundir>/state_dump` (Xen's migration stream,
 * protocol/xen-state/) and go on with its clients: the tree and its permissions (stale entries,
 * flag 0x01, grant nothing and are dropped), the special names' permissions, quotas and domain
 * features (4.22 streams), every socket connection on the descriptor the stream names with its
 * watches, its unprocessed input (a request split across the update completes) and its unsent
 * output (first of all the `OK` to the `live-update -s` that started us); and each guest's ring
 * connection as an introduced domain of ours. Shared rings and the event channel device are kept
 * to hand back (carried.ts). Open transactions are not in Xen's stream (neither 4.17 nor 4.22
 * writes them): their clients get ENOENT for the old id, as after cxenstored's own update.
 *
 * A stream that cannot be read whole is refused before anything is served, with a message saying
 * what is wrong; the state file is left for inspection. (With exec in place cxenstored is gone by
 * then: its clients see their connections close, as when cxenstored's own new binary fails.)
 */
export async function takeOverFromXen(options: XenTakeOverOptions): Promise<XenTakenOver> {
  const { log, rundir, quotas } = options;
  const file = join(rundir, XEN_STATE_FILE);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new Error(`no state found after live-update (${file}): ${(e as Error).message}`);
  }
  const stream = (() => {
    try {
      return decodeStream(bytes);
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`);
    }
  })();

  let socketFd: number | undefined;
  let evtchnFd = -1;
  const conns = new Map<number, { record: ConnectionRecord; watches: WatchRecord[] }>();
  const nodes: ListedNode[] = [];
  const special: Partial<Record<keyof SpecialPerms, Perms>> = {};
  const domains: DomainRecord[] = [];
  let transactions = 0;
  for (const r of stream.records) {
    switch (r.type) {
      case 'global':
        socketFd = r.socketFd;
        evtchnFd = r.evtchnFd;
        break;
      case 'connection':
        if (conns.has(r.connId)) throw new Error(`${file}: connection ${r.connId} twice`);
        conns.set(r.connId, { record: r, watches: [] });
        break;
      case 'watch': {
        const c = conns.get(r.connId);
        if (c === undefined) throw new Error(`${file}: a watch of connection ${r.connId}, which comes later or not at all`);
        c.watches.push(r);
        break;
      }
      case 'transaction':
        transactions++;
        break;
      case 'node': {
        if (r.connId !== 0 || r.txId !== 0) {
          transactions++;
          break;
        }
        const perms = toPerms(r.perms);
        if (r.path === '@introduceDomain' || r.path === '@releaseDomain') special[r.path] = perms;
        else if (r.path.startsWith('@')) log.warn({ path: r.path }, 'xen take-over: unknown special node ignored');
        else nodes.push({ path: r.path, value: r.value.toString('latin1'), perms });
        break;
      }
      case 'global-quota':
        for (const [name, value] of [...r.perDomain, ...r.global]) setQuota(log, () => quotas.set(name, value), name);
        break;
      case 'domain':
        domains.push(r);
        break;
      case 'nx-state':
      case 'nx-tree':
        // Our own live update's records: a cxenstored never writes them, so this is no state_dump.
        throw new Error(`${file}: a record of nxenstored's own live-update state, not cxenstored's`);
    }
  }
  if (socketFd === undefined) throw new Error(`${file}: no GLOBAL_DATA record`);
  if (transactions > 0) log.warn({ records: transactions }, 'xen take-over: transaction records ignored (Xen never carries transactions)');
  const store = (() => {
    try {
      return fromNodeList(nodes, special);
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`);
    }
  })();

  const daemon = new Daemon({ rundir, log, quotas, accessLog: false, ...options.tuning, store });
  const rings: CarriedRing[] = [];
  const features = new Map(domains.map((d) => [d.domid, d.features] as const));
  for (const { record, watches } of conns.values()) {
    if (record.end.kind !== 'ring') continue;
    rings.push({ connection: record, watches });
    const domid = record.end.domid;
    if (domid === 0) continue;
    if (domid > DOMID_MAX_GUEST) throw new Error(`${file}: a ring connection of domain ${domid}`);
    // Our guests speak over <rundir>/domains/<domid>/socket: the domain exists for us as introduced
    // (paths, permissions, quotas, @releaseDomain), its ring stays cxenstored's to serve again.
    // The ring's frame number is not in the stream (the ABI reserves the page).
    if (stream.version >= 2 && features.has(domid)) daemon.domains.presetFeatures(domid, features.get(domid)!);
    await daemon.introduce(domid, '0', record.end.evtchn);
  }
  for (const { record } of conns.values()) {
    if (record.end.kind === 'ring' && record.end.target !== undefined) {
      const domain = daemon.domains.get(record.end.domid);
      if (domain !== undefined && daemon.domains.has(record.end.target)) daemon.setTarget(domain, record.end.target);
    }
  }
  for (const d of domains) {
    if (!daemon.domains.has(d.domid)) continue;
    for (const [name, value] of d.quotas) setQuota(log, () => quotas.set(name, value, d.domid), name);
  }

  const limits = quotas.limitsFor(0);
  const adopted: Connection[] = [];
  for (const { record, watches } of conns.values()) {
    if (record.end.kind !== 'socket') continue;
    const conn = daemon.adopt(new Socket({ fd: record.end.fd, readable: true, writable: true }), 'socket', DOM0);
    for (const w of watches) {
      const p = parseWatchPath(w.path, 0, limits.pathMax);
      daemon.watches.add({ owner: conn, path: w.path, canonical: p.path, token: w.token, relative: p.kind === 'node' && w.path !== p.path, depth: w.depth });
    }
    // What cxenstored had not sent yet goes first (a partial message's tail, whole messages),
    // then what it had received and not processed goes into the decoder before any new byte.
    conn.resend(record.output);
    conn.inject(record.input);
    adopted.push(conn);
  }
  rmSync(file, { force: true });
  log.info(
    { version: stream.version, nodes: nodes.length, sockets: adopted.length, rings: rings.length, domains: daemon.domains.size },
    'xen take-over: state loaded',
  );
  return {
    daemon,
    carried: { evtchnFd, rings },
    serve: async () => {
      const listeners = await listen(daemon, rundir, socketFd === -1 ? undefined : { socket: socketFd, socketRo: undefined });
      for (const conn of adopted) conn.poll();
      if (options.pidFile !== undefined) writeFileSync(options.pidFile, `${process.pid}\n`);
      log.info({ pid: process.pid }, 'xen take-over: serving');
      return listeners;
    },
  };
}

/** Xen's entries as ours: a stale one (flag 0x01, "ignore when checking") grants nothing, so it goes. */
function toPerms(perms: readonly StatePerm[]): Perms {
  if (perms.length === 0) throw new XsError('EINVAL', 'a node without permissions');
  return Object.freeze(
    perms.filter((p, i) => i === 0 || !p.ignore).map((p): PermEntry => Object.freeze({ access: p.access, domid: p.domid })),
  );
}

/** A quota name of the stream we do not know (or a value we refuse) is logged, not fatal (the design doc says so). */
function setQuota(log: Log, set: () => void, name: string): void {
  try {
    set();
  } catch (e) {
    log.warn({ quota: name, err: (e as Error).message }, 'xen take-over: quota ignored');
  }
}
