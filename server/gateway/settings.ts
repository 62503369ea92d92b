import type { ListenAddress } from './listen-address.js';

/**
 * What a client without credentials may do (`--http-anonymous`): `none` (the default), or `read`
 * as an unprivileged domain that no permission can name (identity.ts `ANONYMOUS_DOMID`).
 * Here rather than in access.ts so that parsing the command line loads nothing of the gateway.
 */
export const ANONYMOUS_ACCESS = ['none', 'read'] as const;
export type AnonymousAccess = (typeof ANONYMOUS_ACCESS)[number];

/** How the gateway is set up from the command line (`--http`, `--http-anonymous`, `--http-connections`). */
export interface GatewaySettings {
  readonly address: ListenAddress;
  readonly anonymous: AnonymousAccess;
  /** Connections held at once; undefined: `DescriptorReserve.defaultGatewayShare()`. */
  readonly connections?: number | undefined;
}
