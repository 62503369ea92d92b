import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameDecoder } from './frame-decoder.js';
import type { Frame } from './frame-decoder.js';
import { encodeFrame } from './frame-encoder.js';
import { encodeHeader, HEADER_SIZE, PAYLOAD_MAX } from './header.js';
import type { Header } from './header.js';

interface Msg {
  type: number;
  reqId: number;
  txId: number;
  payload: Uint8Array;
}

const encode = (m: Msg): Buffer => encodeFrame(m.type, m.reqId, m.txId, Buffer.from(m.payload));

/** A header announcing `len` bytes, without the bytes (for lengths encodeFrame refuses). */
function rawHeader(h: Header): Buffer {
  const buf = Buffer.alloc(HEADER_SIZE);
  encodeHeader(buf, 0, h);
  return buf;
}

function drain(d: FrameDecoder): Frame[] {
  const out: Frame[] = [];
  for (let f = d.next(); f !== undefined; f = d.next()) out.push(f);
  return out;
}

/** Frames as plain values, for comparison with the messages that were encoded. */
const asMsgs = (frames: Frame[]): Msg[] =>
  frames.map(({ header: { type, reqId, txId }, payload }) => ({ type, reqId, txId, payload: new Uint8Array(payload) }));
const norm = (msgs: Msg[]): Msg[] => msgs.map((m) => ({ ...m, payload: new Uint8Array(m.payload) }));

const read = { type: 2, reqId: 7, txId: 3, payload: Buffer.from('/a/b\0') };

describe('FrameDecoder', () => {
  it('returns nothing until bytes arrive', () => {
    const d = new FrameDecoder();
    expect(d.next()).toBeUndefined();
    d.push(Buffer.alloc(0));
    expect(d.next()).toBeUndefined();
    expect(d.buffered()).toBe(0);
    expect(d.error).toBeUndefined();
  });

  it('hands out a frame inside one chunk without copying', () => {
    const chunk = Buffer.concat([Buffer.from('xx'), encode(read)]).subarray(2);
    const d = new FrameDecoder();
    d.push(chunk);
    const f = d.next();
    expect(f?.header).toEqual({ type: 2, reqId: 7, txId: 3, len: 5 });
    expect(f?.payload.toString('latin1')).toBe('/a/b\0');
    expect(f?.payload.buffer).toBe(chunk.buffer);
    expect(f?.payload.byteOffset).toBe(chunk.byteOffset + HEADER_SIZE);
    chunk[HEADER_SIZE] = 0x78; // aliasing: the payload sees the chunk's bytes
    expect(f?.payload.toString('latin1')).toBe('xa/b\0');
    expect(d.next()).toBeUndefined();
    expect(d.buffered()).toBe(0);
  });

  it('drains many frames from one chunk, in order', () => {
    const msgs: Msg[] = Array.from({ length: 50 }, (_, i) => ({
      type: i % 27,
      reqId: i,
      txId: 1000 - i,
      payload: Buffer.from(`/n/${i}\0`),
    }));
    const d = new FrameDecoder();
    d.push(Buffer.concat(msgs.map(encode)));
    expect(asMsgs(drain(d))).toEqual(norm(msgs));
    expect(d.buffered()).toBe(0);
  });

  it('feeds byte by byte: a frame appears exactly when its last byte arrives', () => {
    const msgs: Msg[] = [read, { type: 6, reqId: 1, txId: 0, payload: new Uint8Array(0) }, { ...read, reqId: 8 }];
    const stream = Buffer.concat(msgs.map(encode));
    const ends = new Set<number>();
    let end = 0;
    for (const m of msgs) ends.add((end += HEADER_SIZE + m.payload.length));

    const d = new FrameDecoder();
    const got: Frame[] = [];
    let consumed = 0;
    for (let i = 0; i < stream.length; i++) {
      d.push(stream.subarray(i, i + 1));
      const f = d.next();
      if (ends.has(i + 1)) {
        expect(f).toBeDefined();
        got.push(f!);
        consumed = i + 1;
      } else {
        expect(f).toBeUndefined();
      }
      expect(d.buffered()).toBe(i + 1 - consumed);
    }
    expect(asMsgs(got)).toEqual(norm(msgs));
  });

  it('reassembles a header split across chunks, and copies a straddling frame', () => {
    const bytes = encode(read);
    const parts = [bytes.subarray(0, 10), bytes.subarray(10, 16), bytes.subarray(16, 18), bytes.subarray(18)];
    const d = new FrameDecoder();
    for (const p of parts.slice(0, -1)) {
      d.push(p);
      expect(d.next()).toBeUndefined();
    }
    d.push(parts[3]!);
    const f = d.next();
    expect(f?.header).toEqual({ type: 2, reqId: 7, txId: 3, len: 5 });
    // A copy: it survives the reuse of the chunks it was assembled from.
    bytes.fill(0);
    expect(f?.payload.toString('latin1')).toBe('/a/b\0');
  });

  it('delivers a len 0 frame as soon as its header is complete', () => {
    const d = new FrameDecoder();
    const empty = encodeFrame(21, 5, 0, '');
    d.push(empty.subarray(0, 15));
    expect(d.next()).toBeUndefined();
    d.push(empty.subarray(15));
    const f = d.next();
    expect(f?.header).toEqual({ type: 21, reqId: 5, txId: 0, len: 0 });
    expect(f?.payload.length).toBe(0);
    expect(d.buffered()).toBe(0);
  });

  it('accepts a payload of exactly PAYLOAD_MAX bytes', () => {
    const payload = Buffer.alloc(PAYLOAD_MAX, 0x61);
    const d = new FrameDecoder();
    d.push(encodeFrame(11, 1, 0, payload));
    const f = d.next();
    expect(f?.header.len).toBe(PAYLOAD_MAX);
    expect(f?.payload.equals(payload)).toBe(true);
    expect(d.error).toBeUndefined();
  });

  it('dies on a header announcing more than PAYLOAD_MAX, after the frames before it', () => {
    const d = new FrameDecoder();
    d.push(Buffer.concat([encode(read), rawHeader({ type: 2, reqId: 1, txId: 0, len: PAYLOAD_MAX + 1 })]));
    expect(d.next()?.header.reqId).toBe(7);
    expect(d.next()).toBeUndefined();
    expect(d.error).toEqual({ kind: 'oversized', len: PAYLOAD_MAX + 1 });
    expect(d.buffered()).toBe(0);

    // Dead: later input is ignored, even a valid frame.
    d.push(encode(read));
    expect(d.next()).toBeUndefined();
    expect(d.buffered()).toBe(0);
    expect(d.error).toEqual({ kind: 'oversized', len: PAYLOAD_MAX + 1 });
  });

  it('reports the full u32 length of an oversized header, split or not', () => {
    const header = rawHeader({ type: 0, reqId: 0, txId: 0, len: 0xffffffff });
    const d = new FrameDecoder();
    d.push(header.subarray(0, 13));
    expect(d.next()).toBeUndefined();
    expect(d.error).toBeUndefined();
    d.push(header.subarray(13));
    expect(d.next()).toBeUndefined();
    expect(d.error).toEqual({ kind: 'oversized', len: 0xffffffff });
  });

  it('decodes any frame sequence cut at any points', () => {
    const msg = fc.record({
      type: fc.nat({ max: 0xffffffff }),
      reqId: fc.nat({ max: 0xffffffff }),
      txId: fc.nat({ max: 0xffffffff }),
      payload: fc.oneof(
        { weight: 5, arbitrary: fc.uint8Array({ maxLength: 64 }) },
        { weight: 1, arbitrary: fc.uint8Array({ minLength: PAYLOAD_MAX - 2, maxLength: PAYLOAD_MAX }) },
      ),
    });
    const streams = fc.array(msg, { maxLength: 12 });
    const splits = fc.array(fc.nat(), { maxLength: 20 });
    fc.assert(
      fc.property(streams, splits, fc.boolean(), (msgs, cuts, eager) => {
        const stream = Buffer.concat(msgs.map(encode));
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const d = new FrameDecoder();
        const got: Frame[] = [];
        let from = 0;
        for (const to of [...points, stream.length]) {
          d.push(stream.subarray(from, to));
          from = to;
          // Draining after every chunk or only at the end must not matter.
          if (eager) got.push(...drain(d));
        }
        got.push(...drain(d));
        expect(asMsgs(got)).toEqual(norm(msgs));
        expect(d.buffered()).toBe(0);
        expect(d.error).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});

describe('FrameDecoder.unconsumed (live update hands these bytes on)', () => {
  it('is every byte not yet returned, in order, at any split, and leaves the decoder as it was', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        fc.nat(),
        (payloads, cut, take) => {
          const stream = Buffer.concat(payloads.map((p, i) => encode({ type: 2, reqId: i, txId: 0, payload: p })));
          const at = cut % (stream.length + 1);
          const d = new FrameDecoder();
          d.push(stream.subarray(0, Math.min(at, 7)));
          d.push(stream.subarray(Math.min(at, 7), at));
          let consumed = 0;
          let taken = 0;
          for (let n = take % (payloads.length + 1); n > 0; n--) {
            const f = d.next();
            if (f === undefined) break;
            consumed += HEADER_SIZE + f.header.len;
            taken++;
          }
          const rest = d.unconsumed();
          expect(rest).toEqual(stream.subarray(consumed, at));
          expect(d.buffered()).toBe(rest.length);
          // A second decoder fed the copy and then the remainder yields the frames not yet taken.
          const e = new FrameDecoder();
          e.push(rest);
          e.push(stream.subarray(at));
          expect(drain(e).map((f) => f.header.reqId)).toEqual(payloads.map((_, i) => i).slice(taken));
        },
      ),
    );
  });
});

describe('FrameDecoder.peekType', () => {
  it('is the next type once its header is in, without consuming it', () => {
    const d = new FrameDecoder();
    const f = encode({ type: 6, reqId: 1, txId: 0, payload: new Uint8Array([1, 2, 3]) });
    d.push(f.subarray(0, 15));
    expect(d.peekType()).toBeUndefined();
    d.push(f.subarray(15, 17));
    expect(d.peekType()).toBe(6);
    expect(d.next()).toBeUndefined(); // the body is not complete
    d.push(f.subarray(17));
    expect(d.peekType()).toBe(6);
    expect(d.next()?.header.type).toBe(6);
    expect(d.peekType()).toBeUndefined();
  });
});
