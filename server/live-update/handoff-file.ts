import { encodeSnapshot, type Store } from '../../store/index.js';

/**
 * The state file's framing (layout in handoff-state.ts), apart from its schema: the process that
 * hands over only writes the file, so it does not load zod for the schema that reads it back
 * (issue 16: every daemon constructs its live updater before its first reply).
 */
export const HANDOFF_MAGIC = 'NXLU';
export const HANDOFF_VERSION = 1 as const;
/**
 * The pre-copied version's snapshot, in the run directory beside the state (mode 0600): written
 * apart from it, asynchronously, so that the serving process never blocks on tens of megabytes.
 */
export const BASE_FILE = 'live-update.base';

/** `encodeHandoff(state, store)` is the state file's bytes: magic, JSON length, JSON, snapshot. */
export function encodeHandoff<S extends { readonly version: number }>(state: S, store: Store): Buffer {
  return encodeHandoffWith(state, encodeSnapshot(store));
}

/**
 * `encodeHandoffWith(state, tail)`: the same framing around bytes already encoded: a snapshot
 * (encoded in slices by the pre-copy), or a delta (`encodeDelta`, empty when nothing changed)
 * when the state says which version it follows (`base`).
 */
export function encodeHandoffWith<S extends { readonly version: number }>(state: S, tail: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(state), 'utf8');
  const head = Buffer.allocUnsafe(8);
  head.write(HANDOFF_MAGIC, 0, 'latin1');
  head.writeUInt32LE(json.length, 4);
  return Buffer.concat([head, json, tail]);
}
