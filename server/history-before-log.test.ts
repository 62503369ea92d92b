import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KeptTransport } from '../bench/kept-transport.js';
import { encodeFrame, Op } from '../protocol/index.js';
import { replies, write } from '../test/helpers/kept-daemon.js';
import { Daemon } from './daemon.js';
import { HistoryLog, Journal, recover, SegmentFile, type SyncMode } from './persistence/index.js';
import { Quotas } from './quotas/index.js';

/**
 * With `--data-dir`, history's records of a turn's commits reach their segment before the
 * write-ahead log's batch of those commits (server/daemon.ts `writeHistory`): a crash between the
 * two must never leave the store recovered past the records, which would cut history on disk off
 * from it (persistence/history-log.ts). Records go to their segment when a turn ends, and the
 * log's batch may be written before that: checked at every batch the log writes, in each sync mode.
 */
const log = pino({ level: 'silent' });
const dirs: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Waits for `n` replies in all: held until the log's batch is written (with `--sync always`, synced: a busy disk takes its time). */
async function answered(client: KeptTransport, n: number): Promise<void> {
  for (const t0 = Date.now(); replies(client).length < n && Date.now() - t0 < 10_000; ) await new Promise((r) => setTimeout(r, 1));
  expect(replies(client)).toHaveLength(n);
}

describe('history on disk and the write-ahead log', () => {
  it.each<SyncMode>(['always', 'batch', 'none'])('has every record of a batch on disk before the log writes it (--sync %s)', async (sync) => {
    const d = mkdtempSync(join(tmpdir(), 'nxs-hbl-'));
    dirs.push(d);
    const store = recover(d).store;
    const journal = await Journal.open({ dir: d, sync, log }, store);
    const historyLog = new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log);
    const daemon = new Daemon({ rundir: '/nonexistent', log, quotas: new Quotas(), accessLog: false, store, journal, historyLog, history: { records: 1000 } });
    const client = new KeptTransport();
    daemon.attach(client, 'socket', { domid: 0, privileged: true });
    // At each batch the log writes: how many records history has on disk that end at the live store, and its generation.
    const seen: [number, number][] = [];
    const append = SegmentFile.prototype.append;
    vi.spyOn(SegmentFile.prototype, 'append').mockImplementation(function (this: SegmentFile, batch, syncIt) {
      const live = daemon.store;
      seen.push([new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log).load(live, 1e6).records.length, live.generation]);
      return append.call(this, batch, syncIt);
    });
    // Turns of pipelined rewrites, a MKDIR among them.
    let req = 0;
    for (let t = 0; t < 6; t++) {
      client.emit('data', Buffer.concat([write('/a', `v${t}`, ++req), write('/b', `w${t}`, ++req), encodeFrame(Op.MKDIR, ++req, 0, Buffer.from(`/c${t}\0`, 'latin1')), write('/a', `x${t}`, ++req)]));
      await answered(client, req);
    }
    await journal.idle();
    expect(seen.length).toBeGreaterThanOrEqual(1);
    // Every record from the first generation on, up to the live one: none missing behind the log.
    for (const [onDisk, generation] of seen) expect(onDisk).toBe(generation);
    expect(daemon.store.generation).toBe(24);
    daemon.shutdown();
    historyLog.close();
    await journal.close(daemon.store);
    expect(new HistoryLog(d, { ageMs: 1e12, bytes: 1e9 }, log).load(recover(d).store, 1e6).records).toHaveLength(24);
  });
});
