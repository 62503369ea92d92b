/**
 * Watches (spec §8): the registry of every connection's watches, and the matching of a change
 * against them with the XSA-115 permission filter, which gives the deliveries the dispatch sends.
 */
export type { Watch } from './watch.js';
export { WatchRegistry, watchBytes } from './registry.js';
export { deliveries, specialDeliveries, NO_DELIVERIES, type Delivery, type Watcher } from './deliveries.js';
