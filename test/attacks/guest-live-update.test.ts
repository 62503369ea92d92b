/**
 * Issue 15: the live-update state file is a Xen state stream, whose CONNECTION_DATA record holds
 * at most 65,535 bytes of a connection's pending input (its length is 16 bits). A guest that
 * pipelines more than that behind a request the update defers (TRANSACTION_START is left unread
 * while open transactions end, live-updater.ts) must neither make the update fail nor lose a
 * byte: what does not fit goes on in NX_STATE (`moreInput`, server/live-update/handoff-file.ts),
 * and the new process answers every request, in order.
 */
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { encodeFrame, Op } from '../../protocol/index.js';
import { guestWithHome } from '../helpers/attack.js';
import { eventually } from '../helpers/poll.js';
import { sharedDaemon } from '../helpers/shared-daemon.js';
import { frame, show, type Reply } from '../helpers/wire.js';

const shared = sharedDaemon();

describe('a guest pipelining past what CONNECTION_DATA holds, across a live update', () => {
  it('every request is answered by the new process, in order; the update goes through', async () => {
    const { d, c } = shared;
    const g = await guestWithHome(d, c, 5);
    // An open transaction makes the update wait (up to -t), with -F it then goes ahead.
    const holder = await d.connect();
    const held = await holder.txStart();
    const before = d.currentPid();
    const update = c.control('live-update', '-s', '-t', '3', '-F');
    await eventually(() => d.output(), (out) => out.includes('live-update: the new process holds the pre-copied version'), 60_000);

    // TRANSACTION_START, deferred, then 100 writes of 1 KiB behind it: 100 KiB unread.
    const value = (i: number) => `${'v'.repeat(1000)}${i}`;
    const frames = [frame(Op.TRANSACTION_START, '|', 1), ...Array.from({ length: 100 }, (_, i) => frame(Op.WRITE, `data/x|${value(i)}`, 2 + i))];
    const bytes = Buffer.concat(frames);
    expect(bytes.length).toBeGreaterThan(0xffff);
    const replies: Promise<Reply>[] = frames.map(() => g.awaitReply());
    await g.sendRaw(bytes);

    expect(await update).toBe('OK');
    expect(d.currentPid()).not.toBe(before);
    // A lost byte leaves the rest unanswered: say so rather than time the whole test out.
    const got = await within(Promise.all(replies), 30_000, 'not every pipelined request was answered');
    expect(got.map((r) => r.reqId)).toEqual(frames.map((_, i) => 1 + i));
    expect(got[0]!.type).toBe(Op.TRANSACTION_START);
    expect(got.slice(1).map(show)).toEqual(Array(100).fill('OK|'));
    expect(await c.read('/local/domain/5/data/x')).toBe(value(99));
    // The guest's transaction is a live one in the new process; dom0's, forced, fails as -F says.
    const tx = Number(got[0]!.payload.toString('latin1').replace(/\0$/, ''));
    expect(await g.txEnd(tx, true)).toBe('OK|');
    expect(await holder.txEnd(held, true)).toBe('EAGAIN');
  }, 120_000);
});

describe('a guest flooding behind a request a live update defers', () => {
  it('is read no further than the deferred request until the update ends (bounded memory)', async () => {
    const { d, c } = shared;
    await guestWithHome(d, c, 6);
    const holder = await d.connect();
    const held = await holder.txStart();
    // Without -F the update waits -t seconds for the open transaction, then fails: the old
    // process serves on, and the guest's requests are taken again.
    const holds = () => d.output().split('live-update: the new process holds the pre-copied version').length;
    const before = holds(); // the test above updated this daemon once already
    const update = c.control('live-update', '-s', '-t', '4');
    await eventually(holds, (n) => n > before, 60_000);

    const g: Socket = await new Promise((resolve) => {
      const s = connect(d.domainSocket(6), () => resolve(s));
    });
    let replied = 0;
    g.on('data', (b: Buffer) => (replied += b.length));
    const start = encodeFrame(Op.TRANSACTION_START, 1, 0, Buffer.from('\0'));
    const chunk = Buffer.concat(Array.from({ length: 64 }, (_, i) => encodeFrame(Op.WRITE, 2 + i, 0, Buffer.from(`x\0${'v'.repeat(2000)}`))));
    g.write(start);
    // Push for 2 s, as fast as the socket takes it. Before, the daemon read all of it into its
    // memory (a guest pushed 1.3 GB in 8 s); now it stops at the deferred request and the rest
    // waits in the kernel's socket buffer, so the socket soon takes no more.
    let handed = 0;
    const until = Date.now() + 2000;
    while (Date.now() < until) {
      handed += chunk.length;
      if (!g.write(chunk)) await drainOrTimeout(g, 100);
    }
    const accepted = handed - g.writableLength;
    expect(accepted).toBeLessThan(16 * 1024 * 1024);
    expect(replied).toBe(0);

    expect(await update).toMatch(/transaction/); // it timed out on the open transaction
    await holder.txEnd(held, false);
    // Served on: everything the guest sent is read and answered after all.
    await eventually(() => g.writableLength, (n) => n === 0, 60_000);
    await eventually(() => replied, (n) => n >= accepted / 100, 60_000); // an OK reply per ~2 KiB request
    expect(await c.read('/local/domain/6/x')).toBe('v'.repeat(2000));
    g.destroy();
  }, 120_000);
});

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Until `socket` drains or `ms` pass; the listener goes either way (they piled up: MaxListenersExceededWarning). */
function drainOrTimeout(socket: Socket, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      socket.off('drain', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    socket.once('drain', done);
  });
}
