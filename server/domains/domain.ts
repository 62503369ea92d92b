import type { Server } from 'node:net';
import type { Connection } from '../connection/index.js';

/**
 * An introduced guest domain (spec §7.11). Without a hypervisor there is no shared ring: the
 * domain's "ring" is a Unix socket of its own, `<rundir>/domains/<domid>/socket`, and every
 * connection to it acts as that unprivileged domain. `mfn` and `port` are kept as the toolstack
 * gave them, so that a repeated INTRODUCE can be checked against them.
 */
export interface Domain {
  readonly domid: number;
  readonly mfn: string;
  readonly port: number;
  readonly socketPath: string;
  readonly server: Server;
  readonly connections: Set<Connection>;
  /** Xen 4.22 feature bits (protocol/feature.ts), fixed at INTRODUCE (SET_FEATURE before it). */
  readonly features: number;
  /** SET_TARGET: the domain this one acts for (spec §6.5). */
  target: number | undefined;
}
