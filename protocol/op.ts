/**
 * Message types of the xenstore wire protocol (spec §2, xs_wire.h `enum xsd_sockmsg_type`).
 *
 * The table holds every code a 4.17 daemon or HEAD cxenstored understands, plus INVALID.
 * 20 (RESTRICT) was removed in Xen 4.9 and is deliberately absent: a request of type 20 is
 * an unknown type and gets ENOSYS like any other (spec §1.3, §5).
 * WATCH_EVENT (15) and ERROR (16) are server-to-client only; a client sending them also
 * gets ENOSYS, which is the server's decision, not this table's.
 */
export const Op = {
  /** Also called DEBUG in older headers (same code, 0). */
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
  GET_FEATURE: 23,
  SET_FEATURE: 24,
  GET_QUOTA: 25,
  SET_QUOTA: 26,
  /** Guaranteed never to be a valid type (xs_wire.h XS_INVALID). */
  INVALID: 65535,
} as const;

export type Op = (typeof Op)[keyof typeof Op];
export type OpName = keyof typeof Op;

const names = new Map<number, OpName>(
  (Object.keys(Op) as OpName[]).map((name) => [Op[name], name]),
);

/** `isOp(n)` is true iff `n` is a code in the `Op` table (so 20 and 27+ are not). */
export function isOp(n: number): n is Op {
  return names.has(n);
}

/**
 * `opName(type)` returns the table name ('READ', 'CONTROL' for 0 — never its alias 'DEBUG')
 * or `UNKNOWN(<type>)` for any other number; meant for logs and test messages.
 */
export function opName(type: number): string {
  return names.get(type) ?? `UNKNOWN(${type})`;
}
