import { encodeSnapshot, type Store } from '../../store/index.js';

/**
 * The state file's framing (layout in handoff-state.ts), apart from its schema: the process that
 * hands over only writes the file, so it does not load zod for the schema that reads it back
 * (issue 16: every daemon constructs its live updater before its first reply).
 */
export const HANDOFF_MAGIC = 'NXLU';
export const HANDOFF_VERSION = 1;

/** `encodeHandoff(state, store)` is the state file's bytes: magic, JSON length, JSON, snapshot. */
export function encodeHandoff<S extends { readonly version: number }>(state: S, store: Store): Buffer {
  const json = Buffer.from(JSON.stringify(state), 'utf8');
  const head = Buffer.allocUnsafe(8);
  head.write(HANDOFF_MAGIC, 0, 'latin1');
  head.writeUInt32LE(json.length, 4);
  return Buffer.concat([head, json, encodeSnapshot(store)]);
}
