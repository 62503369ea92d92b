import type { Connection } from '../connection/index.js';
import type { Delivery } from '../watches/index.js';

/** One watch event for one of our connections. */
export type ConnDelivery = Delivery<Connection>;

/**
 * What applying a request or committing a transaction did: its reply (a store reply, a commit
 * result, a reply payload) and the watch events it causes, which the dispatch sends before the
 * reply (they happened first). `deliveries` is absent when there are none, so that the common
 * case returns the reply as it is and allocates nothing.
 */
export type Outcome<R extends object> = R & { readonly deliveries?: readonly ConnDelivery[] };

/** `outcome(reply, deliveries)`: the reply itself when nothing is to be delivered. */
export function outcome<R extends object>(reply: R, deliveries: readonly ConnDelivery[]): Outcome<R> {
  return deliveries.length === 0 ? reply : { ...reply, deliveries };
}
