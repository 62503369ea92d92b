export type ConnectionState = 'open' | 'closed';

/** What the parts of a connection read of it: whether it is still open. */
export interface Lifecycle {
  readonly state: ConnectionState;
}
