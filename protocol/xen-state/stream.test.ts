import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { XsError } from '../xs-error.js';
import { decodeStream, encodeStream, RecordType, type StateRecord } from './index.js';

/**
 * A state_dump Debian's cxenstored 4.17 wrote for `xenstore-control live-update` (a dom0 ring,
 * a watching client, the client asking for the update with its pending OK, the tree of a fresh
 * daemon plus /a/b with perms n0 r5 w7): decoded, and written again byte for byte.
 */
const SAMPLE = fileURLToPath(new URL('./cxenstored-4.17.state_dump', import.meta.url));

const one = (r: StateRecord, version: 1 | 2 = 2): Buffer => encodeStream({ version, records: [r] });
const roundTrip = (r: StateRecord, version: 1 | 2 = 2): StateRecord => decodeStream(one(r, version)).records[0]!;

function errorOf(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (e) {
    if (!(e instanceof XsError)) throw e;
    return `${e.code}: ${e.message}`;
  }
}

describe('each record type, both ways', () => {
  it('GLOBAL_DATA: two descriptor numbers, 8 bytes', () => {
    const r: StateRecord = { type: 'global', socketFd: 3, evtchnFd: -1 };
    expect(one(r).subarray(16, 32).toString('hex')).toBe('0100000008000000' + '03000000ffffffff');
    expect(roundTrip(r)).toEqual(r);
  });

  it('CONNECTION_DATA: ring and socket, input, output with a partial reply, unique id', () => {
    const ring: StateRecord = { type: 'connection', connId: 1, end: { kind: 'ring', domid: 0, target: undefined, evtchn: 2 }, input: Buffer.alloc(0), output: Buffer.alloc(0), partial: 0, uniqueId: undefined };
    expect(one(ring).subarray(16, 48).toString('hex')).toBe('0200000018000000' + '0100000000000000' + '0000f47f02000000' + '0000000000000000');
    expect(roundTrip(ring)).toEqual(ring);
    const sock: StateRecord = {
      type: 'connection',
      connId: 7,
      end: { kind: 'socket', fd: 9 },
      input: Buffer.from('0200000041', 'hex'),
      output: Buffer.from('tail+whole message'),
      partial: 5,
      uniqueId: undefined,
    };
    expect(roundTrip(sock)).toEqual(sock);
    const target: StateRecord = { ...ring, end: { kind: 'ring', domid: 5, target: 6, evtchn: 40 }, input: Buffer.from('abc'), uniqueId: 0x1234567890n };
    expect(roundTrip(target)).toEqual(target);
    // Length: 24 + 3 padded to 32, + 8 for the unique id.
    expect(one(target).readUInt32LE(20)).toBe(40);
  });

  it('WATCH_DATA and WATCH_DATA_EXTENDED (the design document\'s layout, path at offset 12)', () => {
    const w: StateRecord = { type: 'watch', connId: 2, path: '/a', token: '/a', depth: undefined };
    expect(one(w).subarray(16, 40).toString('hex')).toBe('0300000010000000' + '0200000003000300' + '2f61002f61000000');
    expect(roundTrip(w)).toEqual(w);
    const d: StateRecord = { type: 'watch', connId: 2, path: '@releaseDomain', token: 't', depth: 1 };
    const bytes = one(d);
    expect(bytes.readUInt32LE(16)).toBe(RecordType.WATCH_EXTENDED);
    expect(bytes.subarray(24 + 8, 24 + 12).toString('hex')).toBe('01000000');
    expect(bytes.subarray(24 + 12, 24 + 12 + 15).toString('latin1')).toBe('@releaseDomain\0');
    expect(roundTrip(d)).toEqual(d);
  });

  it('TRANSACTION_DATA', () => {
    const t: StateRecord = { type: 'transaction', connId: 3, txId: 17 };
    expect(roundTrip(t)).toEqual(t);
  });

  it('NODE_DATA: permissions with the stale flag, path, value bytes', () => {
    const n: StateRecord = {
      type: 'node',
      connId: 0,
      txId: 0,
      txAccess: 0,
      path: '/a/b',
      value: Buffer.from('hello'),
      perms: [
        { access: 'n', ignore: false, domid: 0 },
        { access: 'r', ignore: true, domid: 5 },
        { access: 'w', ignore: false, domid: 7 },
      ],
    };
    expect(one(n).subarray(16, 64).toString('hex')).toBe(
      '0500000028000000' + '0000000000000000' + '0500050000000300' + '6e000000' + '72010500' + '77000700' + '2f612f6200' + '68656c6c6f' + '0000',
    );
    expect(roundTrip(n)).toEqual(n);
  });

  it('GLOBAL_QUOTA_DATA: per-domain values, then global ones, names after', () => {
    const q: StateRecord = { type: 'global-quota', perDomain: [['nodes', 1000], ['watches', 128]], global: [['connections', 0]] };
    expect(roundTrip(q)).toEqual(q);
  });

  it('DOMAIN_DATA: features only in version 2', () => {
    const d: StateRecord = { type: 'domain', domid: 5, features: 12, quotas: [['nodes', 30]] };
    expect(roundTrip(d)).toEqual(d);
    expect(roundTrip(d, 1)).toEqual({ ...d, features: 0 });
  });

  it('END: 8 zero bytes, last', () => {
    const b = encodeStream({ version: 1, records: [] });
    expect(b.toString('hex')).toBe('78656e73746f7265' + '00000001' + '00000000' + '0000000000000000');
    expect(decodeStream(b)).toEqual({ version: 1, records: [] });
  });

  it('reads the stream cxenstored 4.17 wrote, and writes the same bytes again', () => {
    const bytes = readFileSync(SAMPLE);
    const s = decodeStream(bytes);
    expect(s.version).toBe(1);
    expect(s.records.map((r) => r.type)).toEqual(['global', 'connection', 'connection', 'watch', 'connection', ...Array(12).fill('node')]);
    const last = s.records[s.records.length - 2]!;
    expect(last).toMatchObject({ type: 'node', path: '/a/b', value: Buffer.from('hello') });
    expect(encodeStream(s).equals(bytes)).toBe(true);
  });
});

describe('a corrupt stream is refused with a clear message', () => {
  const good = encodeStream({
    version: 2,
    records: [
      { type: 'global', socketFd: 3, evtchnFd: 6 },
      { type: 'connection', connId: 1, end: { kind: 'socket', fd: 7 }, input: Buffer.from('in'), output: Buffer.from('out'), partial: 0 },
      { type: 'watch', connId: 1, path: '/x', token: 't' },
      { type: 'node', connId: 0, txId: 0, txAccess: 0, path: '/', value: Buffer.alloc(0), perms: [{ access: 'n', ignore: false, domid: 0 }] },
    ],
  });

  it('an unknown record, a wrong version, bad flags, a torn file, bytes after END', () => {
    const unknown = Buffer.from(good);
    unknown.writeUInt32LE(9, 16);
    expect(errorOf(() => decodeStream(unknown))).toBe('EINVAL: unknown record type 0x9 at offset 16');
    const v3 = Buffer.from(good);
    v3.writeUInt32BE(3, 8);
    expect(errorOf(() => decodeStream(v3))).toBe('EINVAL: unsupported state stream version 3 (1 and 2 are known)');
    const be = Buffer.from(good);
    be.writeUInt32LE(1, 12);
    expect(errorOf(() => decodeStream(be))).toMatch(/big-endian/);
    expect(errorOf(() => decodeStream(good.subarray(0, good.length - 8)))).toMatch(/^EINVAL: torn state stream: it ends at byte \d+ without an END record$/);
    expect(errorOf(() => decodeStream(good.subarray(0, 40)))).toMatch(/^EINVAL: torn state stream: the record at offset 32 \(type 2, 32 bytes\) runs past the end \(40 bytes\)/);
    expect(errorOf(() => decodeStream(Buffer.concat([good, Buffer.alloc(8, 1)])))).toMatch(/after the END record/);
    expect(errorOf(() => decodeStream(Buffer.from('xenstorX00000000')))).toMatch(/no "xenstore" identifier/);
  });

  it('fuzz: any truncation or any flipped byte is decoded or refused with EINVAL, never anything else', () => {
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 }), fc.boolean(), (at, byte, truncate) => {
        const bad = truncate ? good.subarray(0, at) : Buffer.from(good);
        if (!truncate) bad[at] = byte;
        try {
          decodeStream(bad);
          if (truncate) return false; // a truncated stream has no END
        } catch (e) {
          return e instanceof XsError && e.code === 'EINVAL' && e.message.length > 0;
        }
        return true;
      }),
      { numRuns: 3000 },
    );
  });

  it('fuzz: random bytes after a valid preamble are refused with EINVAL or decoded, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (tail) => {
        try {
          decodeStream(Buffer.concat([good.subarray(0, 16), Buffer.from(tail)]));
        } catch (e) {
          return e instanceof XsError && e.code === 'EINVAL';
        }
        return true;
      }),
      { numRuns: 3000 },
    );
  });
});
