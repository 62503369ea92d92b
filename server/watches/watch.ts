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
}
