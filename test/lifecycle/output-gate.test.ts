/**
 * The durability barrier (`OutputGate`, server/connection/durability-hold.ts): with persistence on, no reply and
 * no watch event leaves before the commit it may reflect is durable, on any connection, reads
 * included, and each connection's output keeps its order. In-process, with a gate the test
 * releases by hand, so the "not yet" is a fact about the daemon's state, not about timing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon, listen, Quotas, type Listeners } from '../../server/index.js';
import type { Store } from '../../store/index.js';
import { Wire } from '../helpers/wire.js';

class ManualGate {
  appended = 0;
  durable = 0;
  records = 0;
  private waiters: { gen: number; release: () => void }[] = [];
  record(_before: Store, after: Store): void {
    this.appended = after.generation;
    this.records++;
  }
  pending(): number | undefined {
    return this.appended > this.durable ? this.appended : undefined;
  }
  after(gen: number, release: () => void): void {
    this.waiters.push({ gen, release });
  }
  /** What the journal does once a batch is synced. */
  sync(): void {
    this.durable = this.appended;
    for (const w of this.waiters.splice(0)) w.release();
  }
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setup(): Promise<{ gate: ManualGate; daemon: Daemon; listeners: Listeners }> {
  const rundir = mkdtempSync(join(tmpdir(), 'nxs-gate-'));
  const gate = new ManualGate();
  const daemon = new Daemon({ rundir, log: pino({ level: 'silent' }), quotas: new Quotas({}), accessLog: false, journal: gate });
  const listeners = await listen(daemon, rundir);
  cleanup.push(() => rmSync(rundir, { recursive: true, force: true }));
  cleanup.push(() => listeners.close());
  cleanup.push(() => daemon.shutdown());
  return { gate, daemon, listeners };
}

/** Lets the daemon (same process) run until the gate has seen `n` records, plus a few turns. */
async function settle(gate: ManualGate, n: number): Promise<void> {
  while (gate.records < n) await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 2));
}

describe('output gate', () => {
  it('holds the reply to a write, a read on another connection, and watch events until the commit is durable', async () => {
    const { gate, listeners } = await setup();
    const writer = await Wire.connect(listeners.socket);
    const reader = await Wire.connect(listeners.socket);
    const watcher = await Wire.connect(listeners.socket);
    await watcher.watch('/g', 'tok');
    await watcher.nextEvent(); // the initial event (nothing pending yet: not held)

    const written = writer.write('/g/x', 'v1');
    await settle(gate, 1);
    const read = reader.read('/g/x'); // sees the unsynced value: must wait too
    await new Promise((r) => setTimeout(r, 20));
    expect(gate.pending()).toBe(1);
    expect(writer.received).toHaveLength(0);
    expect(reader.received).toHaveLength(0);
    expect(watcher.events()).toEqual([]);

    gate.sync();
    await written;
    expect(await read).toBe('v1');
    expect((await watcher.nextEvent()).path).toBe('/g/x');
  });

  it('keeps one connection\'s output in order when later replies need no sync', async () => {
    const { gate, listeners } = await setup();
    const c = await Wire.connect(listeners.socket);
    const w = c.write('/o', '1');
    await settle(gate, 1);
    gate.durable = gate.appended; // durable, but the held reply is not released yet...
    const r = c.read('/o'); // ...so this reply queues behind it rather than overtaking it
    await new Promise((res) => setTimeout(res, 20));
    expect(c.received).toHaveLength(0);
    gate.sync();
    await w;
    expect(await r).toBe('1');
    expect(c.received.map((f) => f.header.type)).toEqual([11 /* WRITE */, 2 /* READ */]);
  });

  it('stops reading a client that pipelines faster than the disk syncs, and resumes after the sync', async () => {
    const { gate, daemon, listeners } = await setup();
    const c = await Wire.connect(listeners.socket);
    const w = c.write('/p', 'x');
    await settle(gate, 1);
    const before = daemon.stats.requests;
    const reads = Array.from({ length: 3000 }, () => c.read('/p'));
    // Every reply is held behind the unsynced write; at 1 024 held (the write's reply and 1 023
    // reads'), the daemon stops reading this client.
    while (daemon.stats.requests - before < 1023) await new Promise((r) => setTimeout(r, 2));
    await new Promise((r) => setTimeout(r, 30));
    expect(daemon.stats.requests - before).toBe(1023);
    gate.sync();
    await w;
    expect(new Set(await Promise.all(reads))).toEqual(new Set(['x']));
    expect(daemon.stats.requests - before).toBe(3000);
  });
});
