import { z } from 'zod';
import { decodeSnapshot, encodeSnapshot, type Store } from '../../store/index.js';

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
const MAGIC = 'NXLU';
export const HANDOFF_VERSION = 1;

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

/** `encodeHandoff(state, store)` is the state file's bytes (layout above). */
export function encodeHandoff(state: HandoffState, store: Store): Buffer {
  const json = Buffer.from(JSON.stringify(state), 'utf8');
  const head = Buffer.allocUnsafe(8);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(json.length, 4);
  return Buffer.concat([head, json, encodeSnapshot(store)]);
}

/** `decodeHandoff(bytes)` reads a state file; throws an Error saying what is wrong with it. */
export function decodeHandoff(bytes: Buffer): { state: HandoffState; store: Store } {
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
  return { state, store: decodeSnapshot(bytes.subarray(8 + len)) };
}
