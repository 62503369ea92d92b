/**
 * The load generator's pieces that have logic: the latency histogram, the key layouts, the
 * transaction scripts, and the transaction client's retry accounting against a scripted daemon.
 */
import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bucketOf, Histogram, upperOf } from '../../bench/loadgen/histogram.js';
import { dataDir, dataKey, Rng, scaleKey, value16 } from '../../bench/loadgen/keyspace.js';
import { LoadConnection } from '../../bench/loadgen/load-connection.js';
import { txScript, vmScript } from '../../bench/loadgen/loads.js';
import { Recorder } from '../../bench/loadgen/result.js';
import { TransactionClient } from '../../bench/loadgen/transaction-client.js';
import { encodeFrame, FrameDecoder, Op } from '../../protocol/index.js';

describe('Histogram', () => {
  it('is exact below 64 µs and within 1/64 above', () => {
    for (let v = 0; v < 64; v++) expect(upperOf(bucketOf(v))).toBe(v);
    const rng = new Rng(7);
    for (let i = 0; i < 10_000; i++) {
      const v = rng.below(50_000_000);
      const b = bucketOf(v);
      expect(upperOf(b)).toBeGreaterThanOrEqual(v);
      if (b > 0) expect(upperOf(b - 1)).toBeLessThan(v);
      expect(upperOf(b) - v).toBeLessThanOrEqual(Math.max(0, v / 64));
    }
  });

  it('reports percentiles, the max, and merges', () => {
    const h = new Histogram();
    expect(h.percentile(99)).toBe(0);
    for (let v = 1; v <= 100; v++) h.record(v);
    expect(h.count).toBe(100);
    expect(h.percentile(50)).toBe(50);
    expect(h.percentile(99)).toBeGreaterThanOrEqual(99);
    expect(h.percentile(100)).toBe(100);
    const g = new Histogram();
    g.record(5000);
    h.merge(g);
    expect(h.count).toBe(101);
    expect(h.max).toBe(5000);
    expect(h.percentile(100)).toBe(5000);
  });
});

describe('key layouts', () => {
  it('1,000 data keys in 100 directories of 10', () => {
    const keys = new Set(Array.from({ length: 1000 }, (_, i) => dataKey(i)));
    expect(keys.size).toBe(1000);
    expect(new Set(Array.from({ length: 1000 }, (_, i) => dataDir(i))).size).toBe(100);
    expect(dataKey(123).startsWith(`${dataDir(123)}/`)).toBe(true);
  });

  it('the store-size series has fan-out 100 and the same depth at every size', () => {
    expect(scaleKey(0)).toBe('/bench/s/0/0/0');
    expect(scaleKey(999_999)).toBe('/bench/s/99/99/99');
    expect(scaleKey(12_345)).toBe('/bench/s/1/23/45');
    const sample = new Set(Array.from({ length: 20_000 }, (_, i) => scaleKey(i * 50)));
    expect(sample.size).toBe(20_000);
  });

  it('values are 16 bytes and differ by round', () => {
    for (const i of [0, 1, 999, 999_999]) for (const r of [0, 1, 15]) expect(value16(i, r)).toHaveLength(16);
    expect(value16(5, 1)).not.toBe(value16(5, 2));
  });

  it('the random numbers are deterministic per seed and in range', () => {
    const a = new Rng(3);
    const b = new Rng(3);
    for (let i = 0; i < 100; i++) {
      const x = a.below(10);
      expect(x).toBe(b.below(10));
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(10);
    }
  });
});

function decode(frames: readonly Buffer[]): { type: number; payload: string }[] {
  const d = new FrameDecoder();
  for (const f of frames) d.push(f);
  const out = [];
  for (let f = d.next(); f !== undefined; f = d.next()) out.push({ type: f.header.type, payload: f.payload.toString('latin1') });
  return out;
}

describe('transaction scripts', () => {
  it('2 reads + 2 writes in the client own subtree', () => {
    const steps = decode(txScript(3, 0).steps);
    expect(steps.map((s) => s.type)).toEqual([Op.READ, Op.READ, Op.WRITE, Op.WRITE]);
    expect(steps.every((s) => s.payload.startsWith('/bench/tx/c3/'))).toBe(true);
    expect(decode(txScript(3, 1).steps)[2]!.payload).not.toBe(steps[2]!.payload);
  });

  it('a VM start writes the guest, the backend and /vm, reads its own nodes; -dir lists backends first', () => {
    const plain = decode(vmScript(7, false).steps);
    const listed = decode(vmScript(7, true).steps);
    expect(listed[0]).toEqual({ type: Op.DIRECTORY, payload: '/local/domain/0/backend/vbd\0' });
    expect(listed.slice(1)).toEqual(plain);
    const paths = plain.map((s) => s.payload.split('\0')[0]!);
    expect(paths.some((p) => p.startsWith('/local/domain/7/'))).toBe(true);
    expect(paths.some((p) => p.startsWith('/local/domain/0/backend/vbd/7/'))).toBe(true);
    expect(paths.some((p) => p.startsWith('/vm/'))).toBe(true);
    for (const s of plain.filter((x) => x.type === Op.READ)) {
      expect(plain.some((w) => w.type === Op.WRITE && w.payload.startsWith(s.payload))).toBe(true);
    }
    expect(decode(vmScript(7, false).before).map((s) => s.type)).toEqual([Op.RM, Op.RM, Op.RM]);
  });
});

describe('TransactionClient against a scripted daemon', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loadgen-test-'));
  let server: Server | undefined;
  afterAll(() => {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('retries on EAGAIN and reports the longest run of EAGAINs', async () => {
    // Every other commit fails twice before it succeeds: the worst run is 2.
    let ends = 0;
    server = createServer((s) => {
      const d = new FrameDecoder();
      s.on('data', (chunk) => {
        d.push(chunk);
        for (let f = d.next(); f !== undefined; f = d.next()) {
          const h = f.header;
          if (h.type === Op.TRANSACTION_START) s.write(encodeFrame(h.type, h.reqId, 0, '9\0'));
          else if (h.type === Op.TRANSACTION_END && ends++ % 4 < 2) s.write(encodeFrame(Op.ERROR, h.reqId, h.txId, 'EAGAIN\0'));
          else s.write(encodeFrame(h.type, h.reqId, h.txId, 'OK\0'));
        }
      });
    });
    const path = join(dir, 'sock');
    await new Promise<void>((r) => server!.listen(path, r));
    const rec = new Recorder();
    rec.open();
    const conn = await LoadConnection.open(path, { reply: () => undefined });
    const client = new TransactionClient(conn, (n) => txScript(0, n), rec);
    client.start();
    while (rec.ops < 10) await new Promise((r) => setTimeout(r, 5));
    await client.stop();
    rec.close();
    conn.close();
    expect(rec.worstRetries).toBe(2);
    // Two EAGAINs per two commits, give or take the attempt in progress when it stopped.
    expect(Math.abs(rec.eagain - rec.ops)).toBeLessThanOrEqual(2);
    expect(rec.errors).toBe(0);
    expect(rec.latency.count).toBeGreaterThan(rec.ops * 6);
  });
});
