import { DomainBudget, type Charged } from './domain-budget.js';
import type { WatchRegistry } from '../watches/index.js';

/**
 * What the budgets read of a connection (a `Connection`; named by shape, as `Charged` is, so that
 * quotas/ does not import connection/, which imports quotas/ for its budget).
 */
export interface Member extends Charged {
  readonly caller: { readonly domid: number };
  readonly kind: string;
}

/**
 * The budgets of the unprivileged domains that have connections, by domid. A budget exists while
 * its domain has a connection and goes with the last one, so this map is bounded by the open
 * connections, and a domid that is reused starts from nothing (XSA-483's lesson).
 */
export class DomainBudgets<C extends Member> {
  private readonly byId = new Map<number, DomainBudget<C>>();
  /** Connections to guest sockets, all domains together: what the descriptor reserve bounds. */
  private socketCount = 0;

  constructor(private readonly watches: WatchRegistry<C>) {}

  /** `get(domid)` is the domain's budget, if it has connections. */
  get(domid: number): DomainBudget<C> | undefined {
    return this.byId.get(domid);
  }

  /** Connections to guest sockets, over every domain. */
  get sockets(): number {
    return this.socketCount;
  }

  /**
   * `join(conn)` charges a new connection to its domain's budget and returns the budget. A
   * connection of kind 'domain' came through the domain's own socket and holds a descriptor.
   */
  join(conn: C): DomainBudget<C> {
    const domid = conn.caller.domid;
    let b = this.byId.get(domid);
    if (b === undefined) this.byId.set(domid, (b = new DomainBudget<C>(domid, this.watches)));
    b.connections.add(conn);
    if (conn.kind === 'domain') {
      b.sockets++;
      this.socketCount++;
    } else if (isWebSocket(conn.kind)) {
      b.webSockets++;
    }
    return b;
  }

  /** `leave(conn, budget)` gives a closed connection's share back. */
  leave(conn: C, budget: DomainBudget<C>): void {
    if (!budget.connections.delete(conn)) return;
    if (conn.kind === 'domain') {
      budget.sockets--;
      this.socketCount--;
    } else if (isWebSocket(conn.kind)) {
      budget.webSockets--;
    }
    if (budget.connections.size === 0) this.byId.delete(budget.domid);
  }
}

function isWebSocket(kind: string): boolean {
  return kind === 'ws' || kind === 'ws-binary';
}
