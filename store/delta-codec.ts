import { XsError } from '../protocol/index.js';
import type { Delta, DeltaOp } from './delta.js';
import { isSpecialName } from './path.js';
import { parsePerms, type AccessLetter, type PermEntry, type Perms } from './perms.js';

/**
 * A delta in bytes: the write-ahead log's record (server/persistence/journal.ts) and the store
 * part of a live update's pause (server/live-update/). Binary, in the layout of history's records
 * (history-codec.ts) and of the snapshot's permission lists:
 *
 *     delta   = u8 2, u32 generation (low), u32 generation (high), u32 count, op*
 *     op      = 's' str path, str value, perms  |  'r' str path  |  'p' str name, perms
 *     str     = u32 length, bytes (latin1: one byte per code unit, as values are kept)
 *     perms   = u16 count, (u8 letter, u16 domid)*
 *
 * Little-endian; the op codes are the letters' bytes. The first byte is the record's format:
 * builds before this one wrote a delta as JSON text (`{"g":…,"ops":[…]}`), whose first byte is
 * `{`, and those records are still read (a log written by them is replayed after an upgrade).
 * Binary because a crash recovery decodes every record since the last snapshot before the first
 * reply (issue 16: 10⁴ of them at 10⁶ nodes): JSON built a tree of arrays per record and checked
 * each value with a regex; this form is read field by field, its strings sliced from the bytes.
 * Older builds cannot read it (README, Persistence: no downgrade).
 *
 * Decoding validates every field, whatever the format: a malformed record (a torn length, an
 * unknown op, a bad path, letter or generation, trailing bytes) is EIO, never a partial delta.
 */
const BINARY = 2;
const JSON_START = 0x7b; // '{'
const SET = 0x73; // 's'
const REMOVE = 0x72; // 'r'
const SPECIAL = 0x70; // 'p'
/** The fewest bytes an op takes ('r' and an empty path): bounds the count before any is read. */
const OP_MIN = 5;

/** `encodeDelta(d)`: the delta's bytes, in the binary form above. */
export function encodeDelta(d: Delta): Buffer {
  let size = 1 + 8 + 4;
  for (const op of d.ops) {
    size += op.kind === 'set' ? 1 + 4 + op.path.length + 4 + op.value.length + 2 + 3 * op.perms.length : op.kind === 'remove' ? 1 + 4 + op.path.length : 1 + 4 + op.name.length + 2 + 3 * op.perms.length;
  }
  const buf = Buffer.allocUnsafe(size);
  buf[0] = BINARY;
  buf.writeUInt32LE(d.generation % 2 ** 32, 1);
  buf.writeUInt32LE(Math.floor(d.generation / 2 ** 32), 5);
  buf.writeUInt32LE(d.ops.length, 9);
  let off = 13;
  for (const op of d.ops) {
    if (op.kind === 'set') {
      buf[off++] = SET;
      off = str(buf, off, op.path);
      off = str(buf, off, op.value);
      off = perms(buf, off, op.perms);
    } else if (op.kind === 'remove') {
      buf[off++] = REMOVE;
      off = str(buf, off, op.path);
    } else {
      buf[off++] = SPECIAL;
      off = str(buf, off, op.name);
      off = perms(buf, off, op.perms);
    }
  }
  return buf;
}

function str(buf: Buffer, off: number, s: string): number {
  buf.writeUInt32LE(s.length, off);
  off += 4;
  // Short strings (most paths and values) byte by byte: cheaper than a call into `write`.
  if (s.length <= 32) {
    for (let i = 0; i < s.length; i++) buf[off + i] = s.charCodeAt(i);
  } else {
    buf.write(s, off, s.length, 'latin1');
  }
  return off + s.length;
}

function perms(buf: Buffer, off: number, p: Perms): number {
  off = buf.writeUInt16LE(p.length, off);
  for (const e of p) {
    buf[off] = e.access.charCodeAt(0);
    off = buf.writeUInt16LE(e.domid, off + 1);
  }
  return off;
}

/**
 * `decodeDelta(buf, start?, end?)`: the delta that `buf[start, end)` holds (the whole buffer by
 * default), binary or, written by an older build, JSON.
 */
export function decodeDelta(buf: Buffer, start = 0, end = buf.length): Delta {
  return new DeltaDecoder().decode(buf, start, end);
}

const PATH = /^\/$|^(?:\/[A-Za-z0-9_@-]+)+$/;
/** Permission lists a decoder keeps for the records after (one or two entries each, see `perms`). */
const PERMS_KEPT = 4096;

/**
 * A decoder for a run of records (recovery: a log's): `decode(buf, start, end)` reads a record
 * where it lies in its segment, and the permission lists the records share (a log's writes
 * mostly carry a handful) are built once and shared, as a live store shares them, instead of once
 * per record.
 */
export class DeltaDecoder {
  private readonly kept = new Map<number, Perms>();
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private end = 0;

  decode(buf: Buffer, start: number, end: number): Delta {
    if (!(0 <= start && start <= end && end <= buf.length)) throw new RangeError(`bad range [${start}, ${end}) of ${buf.length} bytes`);
    if (start < end && buf[start] === BINARY) {
      this.buf = buf;
      this.pos = start + 1;
      this.end = end;
      return this.delta();
    }
    if (start < end && buf[start] === JSON_START) return decodeJsonDelta(buf.toString('utf8', start, end));
    throw bad(start === end ? 'empty record' : `unknown record format ${buf[start]}`);
  }

  private delta(): Delta {
    const low = this.u32();
    const g = this.u32() * 2 ** 32 + low;
    if (!Number.isSafeInteger(g) || g < 1) throw bad(`bad generation ${g}`);
    const count = this.u32();
    if (count > (this.end - this.pos) / OP_MIN) throw bad(`${count} ops in ${this.end - this.pos} bytes`);
    const ops: DeltaOp[] = [];
    for (let i = 0; i < count; i++) ops.push(this.op());
    if (this.pos !== this.end) throw bad(`${this.end - this.pos} bytes after the last op`);
    return { generation: g, ops };
  }

  private op(): DeltaOp {
    this.need(1);
    const kind = this.buf[this.pos++];
    if (kind === SET) {
      const path = this.path();
      const value = this.str();
      return { kind: 'set', path, value, perms: this.perms() };
    }
    if (kind === REMOVE) return { kind: 'remove', path: this.path() };
    if (kind === SPECIAL) {
      const name = this.str();
      if (!isSpecialName(name)) throw bad(`bad special name ${JSON.stringify(name)}`);
      return { kind: 'special', name, perms: this.perms() };
    }
    throw bad(`bad op ${kind}`);
  }

  private path(): string {
    const p = this.str();
    if (!PATH.test(p)) throw bad(`bad path ${JSON.stringify(p)}`);
    return p;
  }

  /**
   * A list of one or two entries (nearly all of them: an owner, maybe one grant) is looked up by
   * its bytes as a number, (entry₁ + 1) · 2²⁴ + entry₂ with an entry letter · 2¹⁶ + domid, and
   * built only the first time.
   */
  private perms(): Perms {
    const b = this.buf;
    this.need(2);
    const n = b[this.pos]! | (b[this.pos + 1]! << 8);
    this.pos += 2;
    if (n === 0) throw bad('empty permissions');
    const at = this.pos;
    this.need(3 * n);
    this.pos += 3 * n;
    let key = -1;
    if (n <= 2) {
      key = b[at]! * 65536 + (b[at + 1]! | (b[at + 2]! << 8));
      if (n === 2) key = (key + 1) * 2 ** 24 + b[at + 3]! * 65536 + (b[at + 4]! | (b[at + 5]! << 8));
      const hit = this.kept.get(key);
      if (hit !== undefined) return hit;
    }
    // Pushed, not preallocated: a packed array, as every other list in the store (parsePerms,
    // the snapshot's), so that the code reading lists sees one kind of array.
    const out: PermEntry[] = [];
    for (let i = 0; i < n; i++) {
      const o = at + 3 * i;
      const letter = String.fromCharCode(b[o]!);
      if (letter !== 'n' && letter !== 'r' && letter !== 'w' && letter !== 'b') throw bad(`bad permission letter at byte ${o}`);
      out.push(Object.freeze({ access: letter as AccessLetter, domid: b[o + 1]! | (b[o + 2]! << 8) }));
    }
    const perms = Object.freeze(out);
    if (key >= 0 && this.kept.size < PERMS_KEPT) this.kept.set(key, perms);
    return perms;
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw bad(`truncated at byte ${this.pos}`);
  }

  private u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16)) + b[p + 3]! * 2 ** 24;
  }

  private str(): string {
    const n = this.u32();
    this.need(n);
    const s = this.buf.toString('latin1', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

const BYTES = /^[\u0000-\u00ff]*$/;

/**
 * A record written by a build before the binary form: `{"g": generation, "ops": [op…]}` in
 * UTF-8, op = `["s", path, value, perms]` | `["r", path]` | `["p", name, perms]`, perms in the
 * wire form (`["n0", "r5"]`). Values are byte strings, which JSON carried exactly.
 */
function decodeJsonDelta(text: string): Delta {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  if (typeof raw !== 'object' || raw === null) throw bad('not an object');
  const { g, ops } = raw as { g?: unknown; ops?: unknown };
  if (typeof g !== 'number' || !Number.isSafeInteger(g) || g < 1) throw bad(`bad generation ${String(g)}`);
  if (!Array.isArray(ops)) throw bad('no ops');
  return { generation: g, ops: ops.map(decodeJsonOp) };
}

function decodeJsonOp(op: unknown): DeltaOp {
  if (!Array.isArray(op)) throw bad('op is not a list');
  const [kind, a, b, c] = op as unknown[];
  const str = (x: unknown): string => {
    if (typeof x !== 'string') throw bad(`expected a string, got ${typeof x}`);
    return x;
  };
  const perms = (x: unknown): Perms => {
    if (!Array.isArray(x) || !x.every((e) => typeof e === 'string')) throw bad('bad permissions');
    try {
      return parsePerms(x as string[]);
    } catch (e) {
      throw bad((e as Error).message);
    }
  };
  if (kind === 's' && op.length === 4) {
    const path = str(a);
    const value = str(b);
    if (!PATH.test(path) || !BYTES.test(value)) throw bad(`bad set of ${path}`);
    return { kind: 'set', path, value, perms: perms(c) };
  }
  if (kind === 'r' && op.length === 2 && PATH.test(str(a))) return { kind: 'remove', path: a as string };
  if (kind === 'p' && op.length === 3) {
    const name = str(a);
    if (!isSpecialName(name)) throw bad(`bad special name ${name}`);
    return { kind: 'special', name, perms: perms(b) };
  }
  throw bad(`bad op ${JSON.stringify(kind)}`);
}

function bad(what: string): XsError {
  return new XsError('EIO', `corrupt delta: ${what}`);
}
