import { XsError } from '../protocol/index.js';
import type { AccessLetter, PermEntry, Perms } from './perms.js';
import { RecordWriter } from './history-ring.js';
import type { ChangeKind, ConnectionName, HistoryChange, HistoryRecord, RequestSummary, Who } from './history-record.js';

/**
 * A history record in bytes: the form history keeps in memory (history-ring.ts) and writes to its
 * segments on disk (server/persistence/history-log.ts) alike, so a record is encoded once, while
 * its commit is made, and decoded only when a query reads it. Binary rather than JSON: encoding a
 * record as JSON text cost as much as keeping it as objects (issue 14's experiment "F").
 *
 *     record  = f64 generation, f64 time, u16 domid, u8 connection, u8 flags,
 *               [f64 connection id | u32 connection id], [u32 transaction id],
 *               u16 count, request*, u32 count, change*
 *     request = u8 op, str path  |  u8 (op | 128)   (the path is the first change's)
 *     change  = u8 kind | 4 old | 8 old perms | 16 new | 32 new perms | 64 new perms as old
 *                    | 128 joined,
 *               str path, [str old], [perms old], [str new], [perms new]
 *             | (joined) str (path NUL new), [str old], [perms old], [perms new]
 *     str     = u32 length, bytes (latin1: one byte per code unit, as values are kept)
 *     perms   = u16 count, (u8 letter, u16 domid)*
 *
 * Little-endian. flags: 1 connection id (f64), 2 transaction id, 4 more requests than listed,
 * 8 connection id (u32). A plain write's request names the path it changed, and its permissions
 * usually stay: those are written once (issue 14: a third fewer bytes per write, and each byte
 * copied is a write's cost). A joined change holds its path and new value as the WRITE request
 * carried them (`path\0value`, spec §7.2; a path has no NUL): copied from the request's payload in
 * one block, where a string costs ~30 instructions a character to copy (`charCodeAt`). Records
 * written before these shorter forms existed read the same; a build older than the joined form
 * reads a segment holding one as corrupt from that record on (history-log.ts).
 */

const KINDS: readonly ChangeKind[] = ['added', 'removed', 'changed', 'perms'];
const CONNECTIONS: readonly ConnectionName[] = ['socket', 'socket_ro', 'domain', 'http', 'ws', 'ws-binary', 'internal'];
const OPS: readonly RequestSummary['op'][] = ['read', 'directory', 'get-perms', 'write', 'mkdir', 'rm', 'set-perms', 'release', 'restore'];

const KIND_CODE: Readonly<Record<ChangeKind, number>> = { added: 0, removed: 1, changed: 2, perms: 3 };
// Objects, not Maps: a property load by a constant-shaped key is cheaper than a Map's hash lookup per record.
const CONNECTION_CODE = Object.freeze(Object.fromEntries(CONNECTIONS.map((c, i) => [c, i]))) as Readonly<Record<ConnectionName, number>>;
const OP_CODE = Object.freeze(Object.fromEntries(OPS.map((o, i) => [o, i]))) as Readonly<Record<RequestSummary['op'], number>>;

const HAS_ID = 1;
const HAS_TX = 2;
const MORE_REQUESTS = 4;
const HAS_ID32 = 8;
const HAS_OLD = 4;
const HAS_OLD_PERMS = 8;
const HAS_NEW = 16;
const HAS_NEW_PERMS = 32;
const SAME_PERMS = 64;
/** A change whose path and new value are one string, `path\0value` (a WRITE's payload). */
const JOINED = 128;
/** A request whose path is the record's first change's. */
const SAME_PATH = 128;

/**
 * `writeHeader(w, ...)` starts a record: everything but its changes (`requests` as kept, `more`
 * when the commit made more than those). `first`: the path the first change will have, when the
 * caller knows it (a request on that path is then written without it). Returns where the count
 * of changes goes (`w.patchU32` it when they are written).
 */
export function writeHeader(
  w: RecordWriter,
  generation: number,
  time: number,
  who: Who,
  requests: readonly RequestSummary[],
  more: boolean,
  first?: string,
): number {
  let size = 8 + 8 + 2 + 1 + 1 + 8 + 4 + 2 + 4;
  for (let i = 0; i < requests.length; i++) size += 5 + requests[i]!.path.length;
  w.room(size);
  w.f64(generation);
  w.f64(time);
  w.u16(who.domid);
  w.u8(CONNECTION_CODE[who.connection]);
  const n = requests.length;
  const id = who.id;
  const small = id !== undefined && id >>> 0 === id; // a whole number below 2^32: as u32, exactly
  w.u8((id === undefined ? 0 : small ? HAS_ID32 : HAS_ID) | (who.tx === undefined ? 0 : HAS_TX) | (more ? MORE_REQUESTS : 0));
  if (id !== undefined) {
    if (small) w.u32(id);
    else w.f64(id);
  }
  if (who.tx !== undefined) w.u32(who.tx);
  w.u16(n);
  for (let i = 0; i < n; i++) {
    const r = requests[i]!;
    if (r.path === first) {
      w.u8(OP_CODE[r.op] | SAME_PATH);
    } else {
      w.u8(OP_CODE[r.op]);
      w.str(r.path);
    }
  }
  const at = w.offset;
  w.u32(0);
  return at;
}

/**
 * `writeChange(w, ...)`: one change; absent values and permissions are left out, and new
 * permissions that are the old ones (the same list) are not written twice.
 */
export function writeChange(
  w: RecordWriter,
  path: string,
  kind: ChangeKind,
  old: string | undefined,
  oldPerms: Perms | undefined,
  value: string | undefined,
  newPerms: Perms | undefined,
): void {
  const same = oldPerms !== undefined && oldPerms === newPerms;
  w.room(changeBytes(path, old, oldPerms, value, newPerms, same));
  w.u8(KIND_CODE[kind] | changeFlags(old, oldPerms, value, newPerms, same));
  w.str(path);
  if (old !== undefined) w.str(old);
  if (oldPerms !== undefined) writePerms(w, oldPerms);
  if (value !== undefined) w.str(value);
  if (newPerms !== undefined && !same) writePerms(w, newPerms);
}

/** The bytes `writeChange` writes for a change (both writers reserve room with it). */
function changeBytes(path: string, old: string | undefined, oldPerms: Perms | undefined, value: string | undefined, newPerms: Perms | undefined, same: boolean): number {
  return (
    5 +
    path.length +
    (old === undefined ? 0 : 4 + old.length) +
    (value === undefined ? 0 : 4 + value.length) +
    (oldPerms === undefined ? 0 : 2 + 3 * oldPerms.length) +
    (newPerms === undefined || same ? 0 : 2 + 3 * newPerms.length)
  );
}

/** A change's flags byte, less its kind: which values and permission lists follow. */
function changeFlags(old: string | undefined, oldPerms: Perms | undefined, value: string | undefined, newPerms: Perms | undefined, same: boolean): number {
  return (
    (old === undefined ? 0 : HAS_OLD) |
    (oldPerms === undefined ? 0 : HAS_OLD_PERMS) |
    (value === undefined ? 0 : HAS_NEW) |
    (same ? SAME_PERMS : newPerms === undefined ? 0 : HAS_NEW_PERMS)
  );
}

/** The change kinds' codes, for `writeRequestRecord`'s callers. */
export const ADDED = 0;
export const REMOVED = 1;
export const CHANGED = 2;
export const PERMS = 3;

/**
 * `writeRequestRecord(w, ...)` writes the record of a plain request whose one change is on the
 * request's own path (a node's value or permissions rewritten, a node without children made or
 * removed): the bytes `writeHeader` and `writeChange` write for it (store/history.test.ts
 * compares them), in one pass: one room check, the codes by comparison rather than a keyed
 * lookup, and the fields stored at a local position instead of through the writer's methods
 * (issue 14: the general path's calls, lookups and repeated bounds were more of a write's
 * recording than its bytes). `kind` is one of ADDED, REMOVED, CHANGED, PERMS; absent values and
 * permissions are left out as `writeChange` leaves them. `payload`: the WRITE request's bytes as
 * received, `path\0value`, when `path` and `value` were read from them; the change is then
 * written joined, its path and value copied from them in one block.
 */
export function writeRequestRecord(
  w: RecordWriter,
  generation: number,
  time: number,
  domid: number,
  connection: ConnectionName,
  id: number | undefined,
  op: RequestSummary['op'],
  kind: number,
  path: string,
  old: string | undefined,
  oldPerms: Perms | undefined,
  value: string | undefined,
  newPerms: Perms | undefined,
  payload?: Buffer,
): void {
  const same = oldPerms !== undefined && oldPerms === newPerms;
  const joined = payload !== undefined && value !== undefined && carries(payload, path, value);
  w.room(REQUEST_HEADER_BYTES + changeBytes(path, old, oldPerms, value, newPerms, same));
  const b = w.buf;
  const v = w.view;
  let p = putRequestHeader(b, v, w.pos, generation, time, domid, connection, id, op);
  if (joined) {
    b[p] = kind | JOINED | changeFlags(old, oldPerms, undefined, newPerms, same);
    v.setUint32(p + 1, payload.length, true);
    b.set(payload, p + 5);
    p += 5 + payload.length;
    if (old !== undefined) p = putStr(b, v, p, old);
    if (oldPerms !== undefined) p = putPerms(b, v, p, oldPerms);
  } else {
    b[p] = kind | changeFlags(old, oldPerms, value, newPerms, same);
    p = putStr(b, v, p + 1, path);
    if (old !== undefined) p = putStr(b, v, p, old);
    if (oldPerms !== undefined) p = putPerms(b, v, p, oldPerms);
    if (value !== undefined) p = putStr(b, v, p, value);
  }
  if (newPerms !== undefined && !same) p = putPerms(b, v, p, newPerms);
  w.pos = p;
}

/**
 * Whether a WRITE's payload is shaped as `path\0value` (its length, the NUL after the path), so
 * that a record can hold it joined; anything else is written field by field. The bytes are not
 * compared: the caller read `path` and `value` from that payload (dispatch/handlers/tree.ts).
 */
export function carries(payload: Buffer, path: string, value: string): boolean {
  return payload.length === path.length + 1 + value.length && payload[path.length] === 0;
}

/** The most `putRequestHeader` writes: everything of a one-request record before its change's flags. */
const REQUEST_HEADER_BYTES = 8 + 8 + 2 + 1 + 1 + 8 + 2 + 1 + 4;

/**
 * The header of a one-request record whose request names its one change's path (what
 * `writeHeader` writes for it), at `p`; where the change's flags byte goes.
 */
function putRequestHeader(b: Buffer, v: DataView, p: number, generation: number, time: number, domid: number, connection: ConnectionName, id: number | undefined, op: RequestSummary['op']): number {
  const small = id !== undefined && id >>> 0 === id;
  v.setFloat64(p, generation, true);
  v.setFloat64(p + 8, time, true);
  v.setUint16(p + 16, domid, true);
  b[p + 18] = connectionCode(connection);
  b[p + 19] = id === undefined ? 0 : small ? HAS_ID32 : HAS_ID;
  p += 20;
  if (id !== undefined) {
    if (small) {
      v.setUint32(p, id, true);
      p += 4;
    } else {
      v.setFloat64(p, id, true);
      p += 8;
    }
  }
  v.setUint16(p, 1, true);
  b[p + 2] = opCode(op) | SAME_PATH;
  v.setUint32(p + 3, 1, true);
  return p + 7;
}

/**
 * `writeValueRecord(w, ...)` is `writeRequestRecord` for the commonest commit of all, a WRITE that
 * gave a node a new value and kept its permissions, whose payload it was given (`carries`): the
 * same bytes, from a function that does nothing else. Issue 14: the daemon's work per write runs
 * through more machine code than the first-level instruction cache holds (valgrind: ~1 100 misses
 * a write), and history's misses cost more than its instructions; in the general writer the other
 * kinds' branches sat between the ones this commit runs (~12 misses a write fewer this way).
 */
export function writeValueRecord(w: RecordWriter, generation: number, time: number, domid: number, connection: ConnectionName, id: number | undefined, payload: Buffer, old: string, perms: Perms): void {
  w.room(REQUEST_HEADER_BYTES + 1 + 4 + payload.length + 4 + old.length + 2 + 3 * perms.length);
  const b = w.buf;
  const v = w.view;
  let p = putRequestHeader(b, v, w.pos, generation, time, domid, connection, id, 'write');
  b[p] = CHANGED | JOINED | HAS_OLD | HAS_OLD_PERMS | SAME_PERMS;
  v.setUint32(p + 1, payload.length, true);
  b.set(payload, p + 5);
  p = putStr(b, v, p + 5 + payload.length, old);
  w.pos = putPerms(b, v, p, perms);
}

/** As `RecordWriter.str`: the length, then one byte per code unit (a loop for short strings, Node's copy for long ones). */
function putStr(b: Buffer, v: DataView, p: number, s: string): number {
  const n = s.length;
  v.setUint32(p, n, true);
  p += 4;
  if (n < 64) {
    for (let i = 0; i < n; i++) b[p + i] = s.charCodeAt(i);
  } else {
    b.latin1Write(s, p, n);
  }
  return p + n;
}

function putPerms(b: Buffer, v: DataView, p: number, perms: Perms): number {
  const n = perms.length;
  v.setUint16(p, n, true);
  p += 2;
  for (let i = 0; i < n; i++) {
    const e = perms[i]!;
    b[p] = e.access.charCodeAt(0);
    v.setUint16(p + 1, e.domid, true);
    p += 3;
  }
  return p;
}

/** `CONNECTION_CODE[c]` by comparison: a keyed load with a variable key is a megamorphic lookup per record. */
function connectionCode(c: ConnectionName): number {
  switch (c) {
    case 'socket':
      return 0;
    case 'socket_ro':
      return 1;
    case 'domain':
      return 2;
    case 'http':
      return 3;
    case 'ws':
      return 4;
    case 'ws-binary':
      return 5;
    default:
      return CONNECTION_CODE[c];
  }
}

/** `OP_CODE[op]` by comparison, the plain requests' ops first. */
function opCode(op: RequestSummary['op']): number {
  switch (op) {
    case 'write':
      return 3;
    case 'mkdir':
      return 4;
    case 'rm':
      return 5;
    case 'set-perms':
      return 6;
    default:
      return OP_CODE[op];
  }
}

/**
 * `firstChangePath(w, at)`: the path of the first change of the record being written, whose count
 * of changes is at `at` (`writeHeader`'s answer); undefined when it has none. Such a record's
 * changes come from `writeChange`, never joined.
 */
export function firstChangePath(w: RecordWriter, at: number): string | undefined {
  const p = w.start + at;
  const b = w.buf;
  if ((b[p]! | b[p + 1]! | b[p + 2]! | b[p + 3]!) === 0) return undefined;
  const len = b.readUInt32LE(p + 5);
  return b.toString('latin1', p + 9, p + 9 + len);
}

function writePerms(w: RecordWriter, perms: Perms): void {
  const n = perms.length;
  w.u16(n);
  for (let i = 0; i < n; i++) {
    const e = perms[i]!;
    w.u8(e.access.charCodeAt(0));
    w.u16(e.domid);
  }
}

/** `encodeRecord(r)`: a record already made (read back from disk, or a test's) in bytes. */
export function encodeRecord(r: HistoryRecord): Buffer {
  const w = new RecordWriter(Buffer.allocUnsafe(256), (need) => Buffer.allocUnsafe(need * 2));
  writeInto(w, r);
  return Buffer.from(w.buf.subarray(w.start, w.pos));
}

/** `writeInto(w, r)`: `r`'s bytes at the writer's position (history.ts `restore`). */
export function writeInto(w: RecordWriter, r: HistoryRecord): void {
  const at = writeHeader(w, r.generation, r.time, r.who, r.requests, r.moreRequests, r.changes[0]?.path);
  for (const c of r.changes) writeChange(w, c.path, c.kind, c.old, c.oldPerms, c.new, c.newPerms);
  w.patchU32(at, r.changes.length);
}

/** Reads a record's bytes, checking every bound: a malformed record is EIO. */
class Reader {
  pos: number;
  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }

  need(n: number): void {
    if (this.pos + n > this.end) throw badRecord('truncated');
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  int(what: string): number {
    const v = this.f64();
    if (!Number.isSafeInteger(v) || v < 0) throw badRecord(`bad ${what}`);
    return v;
  }

  str(): string {
    const n = this.u32();
    this.need(n);
    const s = this.buf.toString('latin1', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  skip(): void {
    const n = this.u32();
    this.need(n);
    this.pos += n;
  }

  skipPerms(): void {
    const n = this.u16();
    this.need(3 * n);
    this.pos += 3 * n;
  }

  perms(): Perms {
    const n = this.u16();
    if (n === 0) throw badRecord('empty permissions');
    const out: PermEntry[] = [];
    for (let i = 0; i < n; i++) {
      const letter = String.fromCharCode(this.u8());
      if (letter !== 'n' && letter !== 'r' && letter !== 'w' && letter !== 'b') throw badRecord('bad permission letter');
      out.push(Object.freeze({ access: letter as AccessLetter, domid: this.u16() }));
    }
    return Object.freeze(out);
  }

  done(): boolean {
    return this.pos === this.end;
  }
}

/** The generation, time and author of a record, without its requests and changes (a scan's filter). */
export interface RecordHead {
  readonly generation: number;
  readonly time: number;
  readonly who: Who;
}

function readHead(r: Reader): RecordHead & { flags: number } {
  const generation = r.int('generation');
  if (generation < 1) throw badRecord('bad generation');
  const time = r.f64();
  if (!Number.isFinite(time)) throw badRecord('bad time');
  const domid = r.u16();
  const connection = CONNECTIONS[r.u8()];
  if (connection === undefined) throw badRecord('bad connection');
  const flags = r.u8();
  if ((flags & HAS_ID) !== 0 && (flags & HAS_ID32) !== 0) throw badRecord('bad flags');
  const id = flags & HAS_ID ? r.int('connection id') : flags & HAS_ID32 ? r.u32() : undefined;
  const tx = flags & HAS_TX ? r.u32() : undefined;
  const who: Who = { domid, connection, ...(id === undefined ? {} : { id }), ...(tx === undefined ? {} : { tx }) };
  return { generation, time, who, flags };
}

/** Where the author's domid and connection kind are in a record (fixed: they follow two f64s). */
const DOMID_AT = 16;
const CONNECTION_AT = 18;

/**
 * `domidOf(buf)`, `connectionOf(buf)`: a record's author's domid and connection kind, read in place (a log scan's
 * filters look at every record in the window; decoding each would cost a query seconds).
 */
export function domidOf(buf: Buffer, start = 0, end = buf.length): number {
  if (end - start < CONNECTION_AT + 1) throw badRecord('truncated');
  return buf[start + DOMID_AT]! | (buf[start + DOMID_AT + 1]! << 8);
}

export function connectionOf(buf: Buffer, start = 0, end = buf.length): ConnectionName | undefined {
  return end - start > CONNECTION_AT ? CONNECTIONS[buf[start + CONNECTION_AT]!] : undefined;
}

/**
 * `visitChanges(buf, under, fn)` calls `fn(path, kind)` for each change of the record at or
 * below `under` (store/path.ts `isAncestorOrSelf`), in order, until `fn` returns true; values are
 * skipped and paths elsewhere are compared in place, so a scan makes a string only for what it
 * may use. A malformed record is EIO.
 */
export function visitChanges(
  buf: Buffer,
  under: string,
  fn: (path: string, kind: ChangeKind) => boolean | void,
  start = 0,
  end = buf.length,
): void {
  const r = new Reader(buf, start, end);
  // The head without making its author: only its optional fields' sizes matter here.
  r.need(CONNECTION_AT + 2);
  const flags = buf[start + CONNECTION_AT + 1]!;
  r.pos += CONNECTION_AT + 2 + (flags & HAS_ID ? 8 : 0) + (flags & HAS_ID32 ? 4 : 0) + (flags & HAS_TX ? 4 : 0);
  for (let n = r.u16(); n > 0; n--) {
    if ((r.u8() & SAME_PATH) === 0) r.skip();
  }
  const all = under === '/';
  for (let n = r.u32(); n > 0; n--) {
    const f = r.u8();
    const kind = KINDS[f & 3]!;
    const len = r.u32();
    r.need(len);
    const at = r.pos;
    r.pos += len;
    // A joined change's path ends at its NUL (the new value follows).
    let pathLen = len;
    if (f & JOINED) {
      pathLen = 0;
      while (pathLen < len && buf[at + pathLen] !== 0) pathLen++;
      if (pathLen === len) throw badRecord('bad change');
    }
    if (all || isUnder(buf, at, pathLen, under)) {
      if (fn(buf.toString('latin1', at, at + pathLen), kind) === true) return;
    }
    if (f & HAS_OLD) r.skip();
    if (f & HAS_OLD_PERMS) r.skipPerms();
    if (f & HAS_NEW) r.skip();
    if (f & HAS_NEW_PERMS) r.skipPerms();
  }
}

/** Whether the path of `len` bytes at `at` is `under` or below it. */
function isUnder(buf: Buffer, at: number, len: number, under: string): boolean {
  const n = under.length;
  if (len < n || (len > n && buf[at + n] !== 0x2f)) return false;
  for (let i = 0; i < n; i++) if (buf[at + i] !== under.charCodeAt(i)) return false;
  return true;
}

/**
 * `generationAndTime(buf, start?, end?)`: a record's generation and time, read in place (they
 * open every record: two doubles), checked as `decodeHead` checks them; into `out`, no object made
 * (a start copies a whole window of records back from disk by them).
 */
export function generationAndTime(buf: Buffer, out: { generation: number; time: number }, start = 0, end = buf.length): void {
  if (end - start < 16) throw badRecord('truncated');
  const generation = buf.readDoubleLE(start);
  const time = buf.readDoubleLE(start + 8);
  if (!Number.isSafeInteger(generation) || generation < 1) throw badRecord('bad generation');
  if (!Number.isFinite(time)) throw badRecord('bad time');
  out.generation = generation;
  out.time = time;
}

/** `decodeHead(buf)`: a record's generation, time and author only. */
export function decodeHead(buf: Buffer, start = 0, end = buf.length): RecordHead {
  const { generation, time, who } = readHead(new Reader(buf, start, end));
  return { generation, time, who };
}

/** `decodeRecord(buf, start?, end?)`: the record in `buf` (or in its bytes from `start` to `end`). */
export function decodeRecord(buf: Buffer, start = 0, end = buf.length): HistoryRecord {
  const r = new Reader(buf, start, end);
  const { generation, time, who, flags } = readHead(r);
  // Requests named by the first change's path are completed once the changes are read.
  const ops: RequestSummary['op'][] = [];
  const paths: (string | undefined)[] = [];
  for (let n = r.u16(); n > 0; n--) {
    const code = r.u8();
    const op = OPS[code & ~SAME_PATH];
    if (op === undefined) throw badRecord('bad request');
    ops.push(op);
    paths.push(code & SAME_PATH ? undefined : r.str());
  }
  const count = r.u32();
  // Each change takes at least 5 bytes: a count larger than the record is a lie, not a long loop.
  if (count * 5 > end - start) throw badRecord('bad change count');
  const changes: HistoryChange[] = [];
  for (let n = count; n > 0; n--) {
    const f = r.u8();
    const kind = KINDS[f & 3]!;
    if (f & JOINED && f & HAS_NEW) throw badRecord('bad change');
    if (f & SAME_PERMS && (f & (HAS_OLD_PERMS | HAS_NEW_PERMS)) !== HAS_OLD_PERMS) throw badRecord('bad change');
    let path = r.str();
    let joined: string | undefined;
    if (f & JOINED) {
      const nul = path.indexOf('\0');
      if (nul < 0) throw badRecord('bad change');
      joined = path.slice(nul + 1);
      path = path.slice(0, nul);
    }
    const old = f & HAS_OLD ? r.str() : undefined;
    const oldPerms = f & HAS_OLD_PERMS ? r.perms() : undefined;
    const value = f & HAS_NEW ? r.str() : joined;
    const newPerms = f & HAS_NEW_PERMS ? r.perms() : f & SAME_PERMS ? oldPerms : undefined;
    changes.push(Object.freeze({ path, kind, old, oldPerms, new: value, newPerms }));
  }
  if (!r.done()) throw badRecord('trailing bytes');
  const requests: RequestSummary[] = [];
  for (let i = 0; i < ops.length; i++) {
    const path = paths[i] ?? changes[0]?.path;
    if (path === undefined) throw badRecord('bad request');
    requests.push(Object.freeze({ op: ops[i]!, path }));
  }
  return Object.freeze({
    generation,
    time,
    who: Object.freeze(who),
    requests: Object.freeze(requests),
    moreRequests: (flags & MORE_REQUESTS) !== 0,
    changes: Object.freeze(changes),
    bytes: end - start,
  });
}

function badRecord(what: string): XsError {
  return new XsError('EIO', `corrupt history record: ${what}`);
}
