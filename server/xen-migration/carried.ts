import type { ConnectionRecord, WatchRecord } from '../../protocol/xen-state/index.js';

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
