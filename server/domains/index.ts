/** Domains: the guests introduced to the store, each with its own socket. */
export type { Domain } from './domain.js';
export { Domains } from './domains.js';
