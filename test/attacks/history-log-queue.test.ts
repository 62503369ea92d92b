/**
 * With `--data-dir`, history's records wait in one buffer for the end of the turn that made them
 * (server/persistence/history-log.ts `append`, `flush`). A turn's flood of large commits (a guest's
 * transactions of many values, each record up to its whole transaction) must not make that buffer
 * grow with it: past 1 MiB queued, the records are written at once, and a buffer grown for a large
 * record is not kept past its write.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { HistoryLog } from '../../server/persistence/index.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const MIB = 1024 * 1024;
/** A record's bytes, framed (the log's 8-byte head). */
const FRAMED = (n: number): number => n + 8;

function onDisk(d: string): number {
  return readdirSync(d).reduce((n, f) => n + statSync(join(d, f)).size, 0);
}

describe("history's queue for the disk under a flood", () => {
  it('holds at most 1 MiB and one record however many are appended before the turn ends', () => {
    const d = mkdtempSync(join(tmpdir(), 'nxs-hq-'));
    dirs.push(d);
    const l = new HistoryLog(d, { ageMs: 1e12, bytes: 1e12 }, log);
    const record = Buffer.alloc(60 * 1024, 7);
    let appended = 0;
    for (let i = 0; i < 200; i++) {
      appended += l.append(record, 0, record.length);
      // What is not on disk yet is what the queue holds.
      expect(appended - onDisk(d)).toBeLessThan(MIB + FRAMED(record.length));
    }
    expect(appended).toBe(200 * FRAMED(record.length));
    l.flush();
    expect(onDisk(d)).toBe(appended);
    l.close();
  });

  it('writes a record larger than the bound at once, and a view of a larger buffer as only its range', () => {
    const d = mkdtempSync(join(tmpdir(), 'nxs-hq-'));
    dirs.push(d);
    const l = new HistoryLog(d, { ageMs: 1e12, bytes: 1e12 }, log);
    const big = Buffer.alloc(3 * MIB, 1);
    expect(l.append(big, MIB, 3 * MIB)).toBe(FRAMED(2 * MIB));
    expect(onDisk(d)).toBe(FRAMED(2 * MIB));
    // The buffer grown for it is not kept; the next turn's records queue as usual (not written at once).
    expect((l as unknown as { out: Buffer }).out.length).toBeLessThanOrEqual(MIB);
    l.append(big, 0, 100);
    expect(onDisk(d)).toBe(FRAMED(2 * MIB));
    l.close();
    expect(onDisk(d)).toBe(FRAMED(2 * MIB) + FRAMED(100));
  });
});
