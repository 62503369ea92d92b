import { XsError } from '../xs-error.js';
import {
  DOMID_INVALID,
  RecordType,
  type ConnectionRecord,
  type DomainRecord,
  type GlobalQuotaRecord,
  type NodeRecord,
  type QuotaList,
  type StatePerm,
  type StateRecord,
  type WatchRecord,
} from './records.js';

/**
 * One record's body, both ways, little endian (the stream's flags say so; we write and read no
 * other). Field layouts are `xenstore_state.h`'s; every length a body names is checked against
 * the body before it is used, so a corrupt record is an error, never a read past it.
 */

/** A malformed stream is EINVAL whose message says what (stream.ts adds the record's offset). */
const fail = (what: string): never => {
  throw new XsError('EINVAL', what);
};

/** A bounds-checked cursor over one body. */
class Reader {
  private off = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  private need(n: number): number {
    if (this.off + n > this.buf.length) fail(`${this.what}: body of ${this.buf.length} bytes ends inside a field`);
    const at = this.off;
    this.off += n;
    return at;
  }

  u8(): number {
    return this.buf.readUInt8(this.need(1));
  }
  u16(): number {
    return this.buf.readUInt16LE(this.need(2));
  }
  u32(): number {
    return this.buf.readUInt32LE(this.need(4));
  }
  i32(): number {
    return this.buf.readInt32LE(this.need(4));
  }
  u64(): bigint {
    return this.buf.readBigUInt64LE(this.need(8));
  }
  bytes(n: number): Buffer {
    const at = this.need(n);
    return Buffer.from(this.buf.subarray(at, at + n));
  }
  /** A NUL-terminated string of `n` bytes including its NUL. */
  cstring(n: number, field: string): string {
    if (n === 0) fail(`${this.what}: ${field} has no terminating NUL`);
    const b = this.bytes(n);
    if (b[n - 1] !== 0 || b.indexOf(0) !== n - 1) fail(`${this.what}: ${field} is not one NUL-terminated string`);
    return b.toString('latin1', 0, n - 1);
  }
  /** A NUL-terminated string whose length is its NUL's position (quota names). */
  name(): string {
    const nul = this.buf.indexOf(0, this.off);
    if (nul < 0) fail(`${this.what}: a quota name has no terminating NUL`);
    const s = this.buf.toString('latin1', this.off, nul);
    this.off = nul + 1;
    return s;
  }
  skipTo(off: number): void {
    if (off > this.buf.length) fail(`${this.what}: body of ${this.buf.length} bytes ends inside a field`);
    this.off = Math.max(this.off, off);
  }
  get offset(): number {
    return this.off;
  }
  /** Only zero padding may follow the fields. */
  end(): void {
    for (let i = this.off; i < this.buf.length; i++) if (this.buf[i] !== 0) fail(`${this.what}: non-zero byte after its fields`);
  }
}

/** Round up to 8 (Xen's `ROUNDUP(x, 3)`): every record body is padded to it. */
export const pad8 = (n: number): number => (n + 7) & ~7;

function u16(n: number, field: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new XsError('EINVAL', `${field} ${n} does not fit 16 bits`);
  return n;
}

function u32(n: number, field: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new XsError('EINVAL', `${field} ${n} does not fit 32 bits`);
  return n;
}

const cstr = (s: string): Buffer => Buffer.concat([Buffer.from(s, 'latin1'), Buffer.alloc(1)]);

/** `encodeBody(record, version)` is the record's type and its padded body. */
export function encodeBody(r: StateRecord, version: number): { type: number; body: Buffer } {
  switch (r.type) {
    case 'global': {
      const b = Buffer.alloc(8);
      b.writeInt32LE(r.socketFd, 0);
      b.writeInt32LE(r.evtchnFd, 4);
      return { type: RecordType.GLOBAL, body: b };
    }
    case 'connection':
      return { type: RecordType.CONNECTION, body: encodeConnection(r) };
    case 'watch':
      return encodeWatch(r);
    case 'transaction': {
      const b = Buffer.alloc(8);
      b.writeUInt32LE(u32(r.connId, 'conn-id'), 0);
      b.writeUInt32LE(u32(r.txId, 'tx-id'), 4);
      return { type: RecordType.TRANSACTION, body: b };
    }
    case 'node':
      return { type: RecordType.NODE, body: encodeNode(r) };
    case 'global-quota': {
      const head = Buffer.alloc(4);
      head.writeUInt16LE(u16(r.perDomain.length, 'n-dom-quota'), 0);
      head.writeUInt16LE(u16(r.global.length, 'n-glob-quota'), 2);
      return { type: RecordType.GLOBAL_QUOTA, body: padded([head, quotaBytes([...r.perDomain, ...r.global])]) };
    }
    case 'domain': {
      const head = Buffer.alloc(8);
      head.writeUInt16LE(u16(r.domid, 'domain-id'), 0);
      head.writeUInt16LE(u16(r.quotas.length, 'n-quota'), 2);
      // Features are "only valid for version 2 and later": zero in a version 1 stream.
      head.writeUInt32LE(version >= 2 ? u32(r.features, 'features') : 0, 4);
      return { type: RecordType.DOMAIN, body: padded([head, quotaBytes(r.quotas)]) };
    }
  }
}

function padded(parts: Buffer[]): Buffer {
  const b = Buffer.concat(parts);
  return b.length === pad8(b.length) ? b : Buffer.concat([b, Buffer.alloc(pad8(b.length) - b.length)]);
}

function quotaBytes(q: QuotaList): Buffer {
  const vals = Buffer.alloc(4 * q.length);
  q.forEach(([name, v], i) => {
    if (name === '' || name.includes('\0')) throw new XsError('EINVAL', `bad quota name ${JSON.stringify(name)}`);
    vals.writeUInt32LE(u32(v, `quota ${name}`), 4 * i);
  });
  return Buffer.concat([vals, ...q.map(([name]) => cstr(name))]);
}

function encodeConnection(r: ConnectionRecord): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(u32(r.connId, 'conn-id'), 0);
  head.writeUInt16LE(r.end.kind === 'ring' ? 0 : 1, 4);
  head.writeUInt16LE(r.uniqueId === undefined ? 0 : 1, 6);
  if (r.end.kind === 'ring') {
    head.writeUInt16LE(u16(r.end.domid, 'domid'), 8);
    head.writeUInt16LE(u16(r.end.target ?? DOMID_INVALID, 'tdomid'), 10);
    head.writeUInt32LE(u32(r.end.evtchn, 'evtchn'), 12);
  } else {
    head.writeInt32LE(r.end.fd, 8);
  }
  if (r.partial > r.output.length) throw new XsError('EINVAL', `partial ${r.partial} is more than the output`);
  head.writeUInt16LE(u16(r.input.length, 'data-in-len'), 16);
  head.writeUInt16LE(u16(r.partial, 'data-resp-len'), 18);
  head.writeUInt32LE(u32(r.output.length, 'data-out-len'), 20);
  const body = padded([head, r.input, r.output]);
  if (r.uniqueId === undefined) return body;
  const id = Buffer.alloc(8);
  id.writeBigUInt64LE(r.uniqueId);
  return Buffer.concat([body, id]);
}

function encodeWatch(r: WatchRecord): { type: number; body: Buffer } {
  const path = cstr(r.path);
  const token = cstr(r.token);
  if (r.depth === undefined) {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(u32(r.connId, 'conn-id'), 0);
    head.writeUInt16LE(u16(path.length, 'wpath-len'), 4);
    head.writeUInt16LE(u16(token.length, 'token-len'), 6);
    return { type: RecordType.WATCH, body: padded([head, path, token]) };
  }
  // The design document's layout (path at offset 12). Xen 4.22's own writer puts the path at 8
  // and drops the depth (`fwrite(&swe, sizeof(sw))`, xen-migration notes §2.4): we follow the doc.
  const head = Buffer.alloc(12);
  head.writeUInt32LE(u32(r.connId, 'conn-id'), 0);
  head.writeUInt16LE(u16(path.length, 'wpath-len'), 4);
  head.writeUInt16LE(u16(token.length, 'token-len'), 6);
  head.writeUInt16LE(u16(r.depth, 'depth'), 8);
  return { type: RecordType.WATCH_EXTENDED, body: padded([head, path, token]) };
}

function encodeNode(r: NodeRecord): Buffer {
  const path = cstr(r.path);
  const head = Buffer.alloc(16 + 4 * r.perms.length);
  head.writeUInt32LE(u32(r.connId, 'conn-id'), 0);
  head.writeUInt32LE(u32(r.txId, 'ta-id'), 4);
  head.writeUInt16LE(u16(path.length, 'path-len'), 8);
  head.writeUInt16LE(u16(r.value.length, 'data-len'), 10);
  head.writeUInt16LE(u16(r.txAccess, 'access'), 12);
  head.writeUInt16LE(u16(r.perms.length, 'perm-n'), 14);
  r.perms.forEach((p, i) => {
    head.writeUInt8(p.access.charCodeAt(0), 16 + 4 * i);
    head.writeUInt8(p.ignore ? 1 : 0, 17 + 4 * i);
    head.writeUInt16LE(u16(p.domid, 'perm domid'), 18 + 4 * i);
  });
  return padded([head, path, r.value]);
}

const ACCESS = new Set(['n', 'r', 'w', 'b']);

/**
 * `decodeBody(type, body, version)` is the record, or throws XsError EINVAL; undefined for a
 * type we do not know (the stream refuses it: the caller says where).
 */
export function decodeBody(type: number, body: Buffer, version: number): StateRecord | undefined {
  switch (type) {
    case RecordType.GLOBAL: {
      const r = new Reader(body, 'GLOBAL_DATA');
      const rec = { type: 'global', socketFd: r.i32(), evtchnFd: r.i32() } as const;
      r.end();
      return rec;
    }
    case RecordType.CONNECTION:
      return decodeConnection(new Reader(body, 'CONNECTION_DATA'));
    case RecordType.WATCH:
    case RecordType.WATCH_EXTENDED:
      return decodeWatch(new Reader(body, type === RecordType.WATCH ? 'WATCH_DATA' : 'WATCH_DATA_EXTENDED'), type === RecordType.WATCH_EXTENDED);
    case RecordType.TRANSACTION: {
      const r = new Reader(body, 'TRANSACTION_DATA');
      const rec = { type: 'transaction', connId: r.u32(), txId: r.u32() } as const;
      r.end();
      return rec;
    }
    case RecordType.NODE:
      return decodeNode(new Reader(body, 'NODE_DATA'));
    case RecordType.GLOBAL_QUOTA: {
      const r = new Reader(body, 'GLOBAL_QUOTA_DATA');
      const nDom = r.u16();
      const nGlob = r.u16();
      const all = decodeQuotas(r, nDom + nGlob);
      const rec: GlobalQuotaRecord = { type: 'global-quota', perDomain: all.slice(0, nDom), global: all.slice(nDom) };
      return rec;
    }
    case RecordType.DOMAIN: {
      const r = new Reader(body, 'DOMAIN_DATA');
      const domid = r.u16();
      const n = r.u16();
      const features = r.u32();
      const rec: DomainRecord = { type: 'domain', domid, features: version >= 2 ? features : 0, quotas: decodeQuotas(r, n) };
      return rec;
    }
    default:
      return undefined;
  }
}

function decodeQuotas(r: Reader, n: number): QuotaList {
  const vals = Array.from({ length: n }, () => r.u32());
  const out = vals.map((v) => [r.name(), v] as const);
  r.end();
  return out;
}

function decodeConnection(r: Reader): ConnectionRecord {
  const connId = r.u32();
  const kind = r.u16();
  const fields = r.u16();
  let end: ConnectionRecord['end'];
  if (kind === 0) {
    const domid = r.u16();
    const tdomid = r.u16();
    end = { kind: 'ring', domid, target: tdomid === DOMID_INVALID ? undefined : tdomid, evtchn: r.u32() };
  } else if (kind === 1) {
    end = { kind: 'socket', fd: r.i32() };
    r.u32();
  } else {
    return fail(`CONNECTION_DATA: unknown conn-type ${kind}`);
  }
  const inLen = r.u16();
  const partial = r.u16();
  const outLen = r.u32();
  if (partial > outLen) fail(`CONNECTION_DATA: data-resp-len ${partial} is more than data-out-len ${outLen}`);
  const input = r.bytes(inLen);
  const output = r.bytes(outLen);
  let uniqueId: bigint | undefined;
  if ((fields & 1) !== 0) {
    r.skipTo(pad8(24 + inLen + outLen));
    uniqueId = r.u64();
  }
  r.end();
  return { type: 'connection', connId, end, input, output, partial, uniqueId };
}

function decodeWatch(r: Reader, extended: boolean): WatchRecord {
  const connId = r.u32();
  const pathLen = r.u16();
  const tokenLen = r.u16();
  let depth: number | undefined;
  if (extended) {
    const d = r.u16();
    r.u16();
    depth = d === 0xffff ? undefined : d;
  }
  const path = r.cstring(pathLen, 'wpath');
  const token = r.cstring(tokenLen, 'token');
  r.end();
  return { type: 'watch', connId, path, token, depth };
}

function decodeNode(r: Reader): NodeRecord {
  const connId = r.u32();
  const txId = r.u32();
  const pathLen = r.u16();
  const dataLen = r.u16();
  const txAccess = r.u16();
  const n = r.u16();
  const perms: StatePerm[] = [];
  for (let i = 0; i < n; i++) {
    const access = String.fromCharCode(r.u8());
    const flags = r.u8();
    const domid = r.u16();
    if (!ACCESS.has(access)) fail(`NODE_DATA: permission ${i} has access ${JSON.stringify(access)}`);
    perms.push({ access: access as StatePerm['access'], ignore: (flags & 1) !== 0, domid });
  }
  if (n === 0) fail('NODE_DATA: no permissions (entry 0 is the owner)');
  const path = r.cstring(pathLen, 'path');
  const value = r.bytes(dataLen);
  r.end();
  return { type: 'node', connId, txId, txAccess, path, value, perms };
}
