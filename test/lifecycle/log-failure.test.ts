/**
 * What clients see when a batch of commits cannot be made durable (issue 17 item 4; design in
 * server/persistence/journal.ts `Journal`): in-process, with a log the test fails by hand, so that
 * every request is known to have run before the failure. The store goes back to the durable
 * version; replies held behind the lost commits become ENOSPC (watch replies stay OK); watch
 * events are delivered; transactions started on a lost version are gone, older ones abandoned.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon, listen, Quotas } from '../../server/index.js';
import { createStore, XsError, type Store, type XsErrorCode } from '../../store/index.js';
import { Wire } from '../helpers/wire.js';

/** A log whose batches the test makes durable (`sync`) or lost (`lose`). */
class ManualLog {
  appended = 0;
  durable = 0;
  records = 0;
  refusing = false;
  private latest: Store;
  private durableStore: Store;
  private rollBack: ((s: Store) => void) | undefined;
  private waiters: ((lost?: XsErrorCode) => void)[] = [];
  constructor(readonly initial: Store) {
    this.latest = this.durableStore = initial;
  }
  record(_before: Store, after: Store): number {
    this.appended = after.generation;
    this.latest = after;
    this.records++;
    return 100;
  }
  pending(): number | undefined {
    return this.appended > this.durable ? this.appended : undefined;
  }
  after(_gen: number, release: (lost?: XsErrorCode) => void): void {
    this.waiters.push(release);
  }
  admit(): void {
    if (this.refusing) throw new XsError('ENOSPC', 'full');
  }
  onRollBack(fn: (s: Store) => void): void {
    this.rollBack = fn;
  }
  sync(): void {
    this.durable = this.appended;
    this.durableStore = this.latest;
    for (const w of this.waiters.splice(0)) w();
  }
  lose(code: XsErrorCode): void {
    this.appended = this.durable;
    this.latest = this.durableStore;
    this.rollBack!(this.durableStore);
    for (const w of this.waiters.splice(0)) w(code);
  }
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setup(): Promise<{ log: ManualLog; daemon: Daemon; socket: string }> {
  const rundir = mkdtempSync(join(tmpdir(), 'nxs-logfail-'));
  const store = createStore();
  const log = new ManualLog(store);
  const daemon = new Daemon({ rundir, log: pino({ level: 'silent' }), quotas: new Quotas({}), accessLog: false, store, journal: log });
  const listeners = await listen(daemon, rundir);
  cleanup.push(() => rmSync(rundir, { recursive: true, force: true }));
  cleanup.push(() => listeners.close());
  cleanup.push(() => daemon.shutdown());
  return { log, daemon, socket: listeners.socket };
}

async function settle(log: ManualLog, n: number): Promise<void> {
  while (log.records < n) await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 2));
}

describe('a lost batch', () => {
  it('rolls the store back and answers everything built on it ENOSPC, keeping watch replies and events', async () => {
    const { log, daemon, socket } = await setup();
    const [writer, reader, txer, watcher] = await Promise.all([1, 2, 3, 4].map(() => Wire.connect(socket)));
    const w1 = writer.write('/a', '1');
    await settle(log, 1);
    log.sync();
    await w1;
    const durable = daemon.store;
    await watcher.watch('/a', 'wa');
    await watcher.nextEvent();
    const oldTx = await txer.txStart(); // on the durable version
    await txer.write('/t', 'x', oldTx);

    // Requests on top of an unsynced commit: all of their output is held.
    const w2 = writer.write('/a', '2');
    await settle(log, 2);
    const before = daemon.stats.requests;
    const r2 = reader.read('/a');
    const newTx = txer.txStart();
    const watchB = watcher.watch('/b', 'wb');
    // All three have run (against the unsynced version) before the batch is lost.
    while (daemon.stats.requests - before < 3) await new Promise((r) => setTimeout(r, 2));
    await new Promise((r) => setTimeout(r, 20));
    expect([writer, reader, txer].map((c) => c.received.length)).toEqual([1, 0, 2]);

    log.lose('ENOSPC');
    await expect(w2).rejects.toThrow(/ENOSPC/);
    await expect(r2).rejects.toThrow(/ENOSPC/);
    await expect(newTx).rejects.toThrow(/ENOSPC/);
    await watchB; // OK: the watch exists whatever the store holds
    expect((await watcher.nextEvent()).path).toBe('/a'); // spurious now: a re-read shows '1'

    expect(daemon.store).toBe(durable);
    expect(await reader.read('/a')).toBe('1');
    expect(await txer.txEnd(oldTx, true)).toBe('EAGAIN');
    expect(await txer.ask(11 /* WRITE */, '/t2|v', { txId: oldTx + 1 })).toBe('ENOENT'); // the lost one's id is unknown
    await expect(txer.read('/t')).rejects.toThrow(/ENOENT/);

    // The next commit reuses the lost generation and goes through.
    const w3 = writer.write('/c', 'again');
    await settle(log, 3);
    expect(daemon.store.generation).toBe(durable.generation + 1);
    log.sync();
    await w3;
    expect(await reader.read('/c')).toBe('again');
  });

  it('refuses a write before it changes anything while the log refuses, and a commit too', async () => {
    const { log, daemon, socket } = await setup();
    const c = await Wire.connect(socket);
    const tx = await c.txStart();
    await c.write('/in-tx', 'v', tx);
    log.refusing = true;
    const before = daemon.store;
    await expect(c.write('/x', 'v')).rejects.toThrow(/ENOSPC/);
    expect(await c.txEnd(tx, true)).toBe('ENOSPC');
    expect(daemon.store).toBe(before);
    expect(log.records).toBe(0);
    await expect(c.read('/x')).rejects.toThrow(/ENOENT/);
    log.refusing = false;
    const w = c.write('/x', 'v');
    await settle(log, 1);
    log.sync();
    await w;
  });
});
