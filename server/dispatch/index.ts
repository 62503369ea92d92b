/**
 * Dispatch: a request frame in, its handler run against the ports, an outcome (the reply and the
 * watch events it causes) out to the connection, which makes them frames.
 */
export { process, deliver } from './process.js';
export { DeliveryBacklog, DELIVERIES_PER_TURN } from './delivery-backlog.js';
export { HANDLERS } from './handlers/index.js';
export { outcome, type ConnDelivery, type Outcome } from './outcome.js';
export type { Author, LiveUpdateCommand, Ports, Stats } from './ports.js';
export { EventDrops, DROP_LOG_MS } from './event-drops.js';
export { LoopMonitor } from './loop-monitor.js';
export { MomentBuilder } from './moment-builder.js';
