/**
 * One registered watch (spec §8.1). `path` is exactly what the client sent, relative or absolute,
 * and is what the initial event and subtree-removal events report; `canonical` is the resolved
 * absolute path (or the `@` name) used for matching, duplicate detection and UNWATCH.
 */
export interface Watch<C> {
  readonly owner: C;
  readonly path: string;
  readonly canonical: string;
  readonly token: string;
  /** Registered with a relative path: events report paths relative to the owner's home. */
  readonly relative: boolean;
  /**
   * Xen 4.22 WATCH depth: events only for nodes at most this many levels below `canonical` (0: the
   * node itself); undefined: any depth, as before 4.22. On `@introduceDomain` / `@releaseDomain`
   * a depth of at least 1 asks for per-domain events `@<name>/<domid>` (spec §8.6).
   */
  readonly depth?: number | undefined;
}
