import { decodeStream, encodeStream, type ConnectionRecord, type WatchRecord } from '../../protocol/xen-state/index.js';

/**
 * What a take-over from cxenstored leaves us that we cannot serve but must hand back as it was:
 * the event channel device (its descriptor, with the ports of every ring still bound to it) and
 * the shared-ring connections (dom0's and each introduced guest's: their rings are pages mapped
 * by a hypervisor, which we do not drive), with their watches. A hand-back writes them again
 * verbatim, so that cxenstored re-maps the rings and carries on (xen-migration notes §5).
 */
export interface XenCarried {
  readonly evtchnFd: number;
  readonly rings: readonly CarriedRing[];
}

export interface CarriedRing {
  readonly connection: ConnectionRecord;
  readonly watches: readonly WatchRecord[];
}

/**
 * `encodeCarried(c)` / `decodeCarried(x)`: the carried state for our own live update's state file
 * (`live-update.state`), the rings as Xen's own records (a version 2 stream, base64): one format
 * for what is Xen's. The descriptor number is the caller's to translate.
 */
export function encodeCarried(c: XenCarried): { evtchnFd: number; rings: string } {
  const records = c.rings.flatMap((r) => [r.connection, ...r.watches]);
  return { evtchnFd: c.evtchnFd, rings: encodeStream({ version: 2, records }).toString('base64') };
}

export function decodeCarried(x: { readonly evtchnFd: number; readonly rings: string }): XenCarried {
  const rings: { connection: ConnectionRecord; watches: WatchRecord[] }[] = [];
  for (const r of decodeStream(Buffer.from(x.rings, 'base64')).records) {
    if (r.type === 'connection') rings.push({ connection: r, watches: [] });
    else if (r.type === 'watch' && rings.length > 0 && rings[rings.length - 1]!.connection.connId === r.connId) rings[rings.length - 1]!.watches.push(r);
    else throw new Error(`carried rings: unexpected ${r.type} record`);
  }
  return { evtchnFd: x.evtchnFd, rings };
}
