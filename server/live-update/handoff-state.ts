import { z } from 'zod';
import { applySpan, decodeDelta, decodeSnapshot, type Store } from '../../store/index.js';
import { HANDOFF_MAGIC as MAGIC, HANDOFF_VERSION } from './handoff-file.js';

export { encodeHandoff, HANDOFF_VERSION } from './handoff-file.js';

/**
 * What a live update hands to the next process besides the descriptors: one file in the run
 * directory (mode 0600, like cxenstored's `state_dump`), read and removed by the next process.
 *
 * Layout: "NXLU" | u32 LE length of the JSON part | the JSON part (UTF-8) | the store, in the
 * snapshot codec's bytes (`store/snapshot.ts`, checksummed). The JSON part is everything that is
 * not the tree: descriptor numbers as the next process sees them, quotas, domains, and per
 * connection who it acts as, its watches, the ids of transactions aborted by `-F`, and the bytes it
 * sent that were not yet answered (base64). It is validated on the way in: a state that does not
 * parse is an error, not a half-restored daemon.
 */

const callerSchema = z.object({
  domid: z.number().int().min(0).max(0xffff),
  privileged: z.boolean(),
  target: z.number().int().min(0).max(0xffff).optional(),
  readOnly: z.boolean().optional(),
});

const fd = z.number().int().min(3);

const connectionSchema = z.object({
  fd,
  kind: z.enum(['socket', 'socket_ro', 'domain']),
  caller: callerSchema,
  watches: z.array(
    // `depth`: Xen 4.22 WATCH depth; absent from a process before it (and for unlimited watches).
    z.object({ path: z.string(), canonical: z.string(), token: z.string(), relative: z.boolean(), depth: z.number().int().min(0).optional() }),
  ),
  /** Transactions open when a forced (`-F`) update went ahead: their commit answers EAGAIN. */
  aborted: z.array(z.number().int().min(1).max(0xffffffff)),
  /** Bytes received and not yet answered: whole requests, then a partial one (base64). */
  unread: z.base64(),
  droppedEvents: z.number().int().min(0),
});

const quotaValues = z.record(z.string(), z.number().int().min(0));

const stateSchema = z.object({
  version: z.literal(HANDOFF_VERSION),
  /** The process that handed over. */
  pid: z.number().int(),
  rundir: z.string(),
  listeners: z.object({ socket: fd, socketRo: fd }),
  quotas: z.object({ global: quotaValues, domains: z.array(z.tuple([z.number().int(), quotaValues])) }),
  accessLog: z.boolean(),
  stats: z.object({
    requests: z.number(),
    // A process from before the merge step counted `graft` commits: a graft is a merge (the merge
    // step generalizes it), so its count carries over as merges.
    commits: z
      .object({ 'read-only': z.number(), fast: z.number(), merge: z.number().default(0), graft: z.number().default(0), replay: z.number() })
      .transform(({ graft, ...c }) => ({ ...c, merge: c.merge + graft })),
    conflicts: z.number(),
  }),
  domains: z.array(
    z.object({
      domid: z.number().int().min(1).max(0x7fef),
      mfn: z.string(),
      port: z.number().int().min(1),
      target: z.number().int().optional(),
      /** Xen 4.22 feature bits; absent from a process before them (then every offered one). */
      features: z.number().int().min(0).max(0xffffffff).optional(),
      fd,
    }),
  ),
  connections: z.array(connectionSchema),
  /**
   * The CONTROL `live-update -s` request to answer `OK` once the next process serves: its
   * connection (index in `connections`) and header (cxenstored `lu_write_response`).
   */
  reply: z.object({ connection: z.number().int().min(0), reqId: z.number().int(), txId: z.number().int() }).optional(),
  /**
   * The HTTP gateway's guest tokens and the domains they act as, so that its clients keep working
   * (absent from a process that did not hand them on). The file is mode 0600 like the token file.
   */
  gatewayTokens: z.array(z.tuple([z.string().regex(/^[A-Za-z0-9_-]{1,128}$/), z.number().int().min(1).max(0xffff)])).default([]),
  /**
   * Pre-copy (issue 16): this state was written while the previous process went on serving; the
   * next process loads it, says "loaded", and waits for the pause's state (IPC "final").
   */
  precopy: z.boolean().optional(),
  /** The pause's state: its store is the delta from the pre-copied version of this generation. */
  base: z.number().int().min(0).optional(),
  /**
   * After a take-over from cxenstored: its event channel device (a descriptor, -1 if none) and
   * its shared-ring connections as Xen's own records (a version 2 stream, base64), so that this
   * process too can hand back (server/xen-migration/carried.ts).
   */
  xen: z.object({ evtchnFd: z.number().int().min(-1), rings: z.base64() }).optional(),
});

export type HandoffState = z.infer<typeof stateSchema>;
export type ConnectionHandoff = z.infer<typeof connectionSchema>;

/**
 * A connection accepted after the spawn, passed over the IPC channel with its socket (so no
 * descriptor number): validated like the others.
 */
const lateSchema = connectionSchema.omit({ fd: true });
export type LateConnection = z.infer<typeof lateSchema>;

/** `parseLate(x)` is an IPC message's connection, or an Error saying what is wrong with it. */
export function parseLate(x: unknown): LateConnection {
  const parsed = lateSchema.safeParse(x);
  if (!parsed.success) throw new Error(`live-update: late connection: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/**
 * `decodeHandoff(bytes, base?)` reads a state file; throws an Error saying what is wrong with it.
 * A pause's state after a pre-copy (`state.base`) holds a delta from `base`, the version the
 * pre-copy's state held, instead of a snapshot.
 */
export function decodeHandoff(bytes: Buffer, base?: Store): { state: HandoffState; store: Store } {
  const { state, tail } = decodeHandoffState(bytes);
  if (state.base === undefined) return { state, store: decodeSnapshot(tail) };
  if (base === undefined || base.generation !== state.base) {
    throw new Error(`live-update state: follows generation ${state.base}, not the pre-copied ${base?.generation}`);
  }
  if (tail.length === 0) return { state, store: base };
  try {
    return { state, store: applySpan(base, decodeDelta(tail)) };
  } catch (e) {
    throw new Error(`live-update state: ${(e as Error).message}`);
  }
}

/**
 * `decodeHandoffState(bytes)` is the validated state and the bytes after it, undecoded (a
 * pre-copy's state has none: its store is the snapshot in `BASE_FILE`).
 */
export function decodeHandoffState(bytes: Buffer): { state: HandoffState; tail: Buffer } {
  if (bytes.length < 8 || bytes.toString('latin1', 0, 4) !== MAGIC) throw new Error('live-update state: not a state file');
  const len = bytes.readUInt32LE(4);
  if (8 + len > bytes.length) throw new Error('live-update state: truncated');
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8', 8, 8 + len));
  } catch (e) {
    throw new Error(`live-update state: ${(e as Error).message}`);
  }
  const parsed = stateSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`live-update state: ${z.prettifyError(parsed.error)}`);
  const state = parsed.data;
  if (state.reply !== undefined && state.reply.connection >= state.connections.length) {
    throw new Error('live-update state: the reply names no connection');
  }
  return { state, tail: bytes.subarray(8 + len) };
}
