/**
 * Xen's server feature bits (`xs_wire.h`, `XENSTORE_SERVER_FEATURE_*`, Xen 4.22). cxenstored
 * keeps one set per domain, written to the ring page at INTRODUCE, changed by SET_FEATURE before
 * it, read by GET_FEATURE (spec §7.17).
 *
 * RECONNECTION (1) and ERROR (2) describe the shared ring page, which our guests do not have
 * (their "ring" is a socket), so we offer neither; WATCHDEPTH (4) gates WATCH's depth argument
 * and DOMID_ANY (8) gates DOMID_ANY entries in permission lists.
 */
export const Feature = Object.freeze({ RECONNECTION: 1, ERROR: 2, WATCHDEPTH: 4, DOMID_ANY: 8 });

/** What we offer, and what a domain gets unless SET_FEATURE said less before INTRODUCE. */
export const OFFERED_FEATURES = Feature.WATCHDEPTH | Feature.DOMID_ANY;

/** DOMID_ANY (`xen.h`, 0x7FF5): a permission entry for it applies to every domain. */
export const DOMID_ANY = 0x7ff5;
