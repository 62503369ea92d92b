import { z } from 'zod';

/**
 * What a live update hands to the next process besides the descriptors, as the daemon sees it,
 * and its validation (zod: loaded only by the next process, take-over.ts). On disk it is a Xen
 * state stream (handoff-file.ts writes it, handoff-reader.ts reads it): Xen's records for what
 * they carry (the listening socket, each connection with its unread bytes, watches, domains'
 * features and quotas, the carried Xen rings), our own NX_STATE record for the rest, as JSON
 * (`nxStateSchema`), and NX_TREE for the store. A previous build's file ("NXLU" + this state as
 * JSON + the store) is read too.
 *
 * The state: descriptor numbers as the next process sees them, quotas, domains, and per
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

/** `parseState(x)` is the validated state, or an Error saying what is wrong with it. */
export function parseState(x: unknown): HandoffState {
  const parsed = stateSchema.safeParse(x);
  if (!parsed.success) throw new Error(`live-update state: ${z.prettifyError(parsed.error)}`);
  const state = parsed.data;
  if (state.reply !== undefined && state.reply.connection >= state.connections.length) {
    throw new Error('live-update state: the reply names no connection');
  }
  return state;
}

const connId = z.number().int().min(1).max(0xffffffff);

/**
 * NX_STATE, the JSON record: what Xen's records have no field for. Connections and the reply name
 * their CONNECTION_DATA record by its conn-id; `moreInput` holds unread bytes beyond the 65535 a
 * CONNECTION_DATA record's u16 length can carry (base64). Domains' features and quotas are in
 * DOMAIN_DATA and GLOBAL_QUOTA_DATA (but values beyond 32 bits, `wideQuotas`), the listening
 * socket's descriptor in GLOBAL_DATA.
 */
const nxStateSchema = stateSchema
  .pick({ pid: true, rundir: true, accessLog: true, stats: true, gatewayTokens: true, precopy: true, base: true })
  .extend({
    socketRo: fd,
    domains: z.array(stateSchema.shape.domains.element.omit({ features: true })),
    connections: z.array(
      connectionSchema.pick({ kind: true, caller: true, aborted: true, droppedEvents: true }).extend({ connId, moreInput: z.base64().optional() }),
    ),
    reply: z.object({ connId, reqId: z.number().int(), txId: z.number().int() }).optional(),
    /** Quota values beyond the 32 bits of GLOBAL_QUOTA_DATA and DOMAIN_DATA. */
    wideQuotas: stateSchema.shape.quotas.optional(),
  });

/** NX_STATE as written (stats before the transform that reads old counts). */
export type NxState = z.input<typeof nxStateSchema>;
export type NxStateRead = z.infer<typeof nxStateSchema>;

/** `parseNxState(json)` is the validated NX_STATE record, or an Error saying what is wrong with it. */
export function parseNxState(json: string): NxStateRead {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new Error(`live-update state: NX_STATE: ${(e as Error).message}`);
  }
  const parsed = nxStateSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`live-update state: NX_STATE: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
