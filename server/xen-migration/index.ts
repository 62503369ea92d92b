/** Xen's migration stream on the daemon's side: take over from cxenstored, and hand back to it. */
export { takeOverFromXen, XEN_STATE_FILE, type XenTakeOverOptions, type XenTakenOver } from './take-over.js';
export { decodeCarried, encodeCarried, type CarriedRing, type XenCarried } from './carried.js';
export { XenHandBack, type HandBackOptions } from './hand-back.js';
