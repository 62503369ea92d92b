/**
 * Who is asking. Every store operation takes one; the server builds it from the connection.
 *
 * - `domid`: the caller's domain; relative paths resolve under `/local/domain/<domid>` (spec §3.2).
 * - `privileged`: dom0 or a configured privileged domain. Bypasses permission checks and the
 *   per-domain quotas (spec §6.4, cxenstored's rule).
 * - `target`: after SET_TARGET, the domain this one acts for (stub domains, spec §6.5).
 * - `readOnly`: a `socket_ro` connection: the write bit is masked out of every permission
 *   computation, as cxenstored did up to Xen 4.14 (spec §1.1), privileged or not.
 * - `features`: the Xen 4.22 feature bits of the caller's domain (protocol/feature.ts), fixed at
 *   INTRODUCE; undefined for a socket connection, which has every offered one (cxenstored
 *   `feature_available`: no domain => `XENSTORE_FEATURES`).
 */
export interface Caller {
  readonly domid: number;
  readonly privileged: boolean;
  readonly target?: number | undefined;
  readonly readOnly?: boolean | undefined;
  readonly features?: number | undefined;
}

export const DOM0: Caller = Object.freeze({ domid: 0, privileged: true });

/** `guest(domid, target, features)` is an unprivileged caller acting as that domain. */
export function guest(domid: number, target?: number, features?: number): Caller {
  return Object.freeze({ domid, privileged: false, target, features });
}
