import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { encodeFrame, Op, type Frame } from '../../protocol/index.js';
import { ConnectionInput, type Admission } from './connection-input.js';
import type { ConnectionState } from './connection-state.js';
import type { Transport } from '../transport/index.js';

class Peer extends EventEmitter implements Transport {
  readonly writableLength = 0;
  readonly writableNeedDrain = false;
  reading = true;
  write(): boolean {
    return true;
  }
  pause(): void {
    this.reading = false;
  }
  resume(): void {
    this.reading = true;
  }
  destroyed: Error | null | undefined;
  destroy(e?: Error): void {
    this.destroyed = e ?? null;
  }
}

function setup(idleMs?: number, onFrame?: () => void) {
  const owner = { state: 'open' as ConnectionState };
  const peer = new Peer();
  const taken: number[] = [];
  let admit: Admission<typeof owner> | undefined;
  // Idle closes go through the closer (idle-closes.ts), which closes them a few per turn.
  const idled: Transport[] = [];
  const closer = { close: (t: Transport) => idled.push(t) && void t.destroy() };
  const input = new ConnectionInput(owner, peer, (_o, f: Frame) => {
    taken.push(f.header.reqId);
    onFrame?.();
  }, () => admit, false, idleMs, closer);
  return { owner, peer, taken, input, idled, setAdmission: (a: typeof admit) => (admit = a) };
}

const request = (reqId: number, type: number = Op.READ) => encodeFrame(type, reqId, 0, Buffer.from('/a\0', 'latin1'));

describe('ConnectionInput', () => {
  it('takes every whole request of a chunk, in order, and keeps a partial one', () => {
    const { peer, taken, input } = setup();
    const third = request(3);
    peer.emit('data', Buffer.concat([request(1), request(2), third.subarray(0, 5)]));
    expect(taken).toEqual([1, 2]);
    expect(input.partialBytes).toBe(5);
    peer.emit('data', third.subarray(5));
    expect(taken).toEqual([1, 2, 3]);
  });

  it('takes no request while a reply is awaited, and the waiting ones after it', async () => {
    const { peer, taken, input } = setup();
    let done!: () => void;
    peer.emit('data', request(1));
    input.awaitReply(new Promise<void>((r) => (done = r)));
    peer.emit('data', Buffer.concat([request(2), request(3)]));
    expect(taken).toEqual([1]);
    expect(input.awaitingReply).toBe(true);
    done();
    await new Promise((r) => setImmediate(r));
    expect(input.awaitingReply).toBe(false);
    expect(taken).toEqual([1, 2, 3]);
  });

  it('takes no request while paused; resume reads on and takes them', () => {
    const { peer, taken, input } = setup();
    input.pause();
    expect(peer.reading).toBe(false);
    peer.emit('data', request(1));
    expect(taken).toEqual([]);
    input.resume();
    expect(peer.reading).toBe(true);
    expect(taken).toEqual([1]);
  });

  it('takes no request while throttled, then reads on unless paused or suspended meanwhile', async () => {
    const { peer, taken, input } = setup();
    input.throttle(5, { suspended: false });
    expect(peer.reading).toBe(false);
    peer.emit('data', request(1));
    input.pause();
    input.resume(); // the drain of a full socket: still throttled
    expect(peer.reading).toBe(false);
    expect(taken).toEqual([]);
    await new Promise((r) => setTimeout(r, 20));
    expect(peer.reading).toBe(true);
    expect(taken).toEqual([1]);
    const suspension = { suspended: true };
    input.throttle(5, suspension);
    await new Promise((r) => setTimeout(r, 20));
    expect(peer.reading).toBe(false); // live update's stop stays
  });

  it('leaves requests the admission refuses, and what follows, unread until pumped again', () => {
    const { peer, taken, input, setAdmission } = setup();
    setAdmission((_o, type) => type !== Op.TRANSACTION_START);
    peer.emit('data', Buffer.concat([request(1), request(2, Op.TRANSACTION_START), request(3)]));
    expect(taken).toEqual([1]);
    expect(input.unread().length).toBe(2 * request(1).length);
    setAdmission(undefined);
    input.pump();
    expect(taken).toEqual([1, 2, 3]);
  });

  it('stops reading while a refused request waits, and reads on once it is taken (state1 flood)', () => {
    const { peer, taken, input, setAdmission } = setup();
    setAdmission((_o, type) => type !== Op.TRANSACTION_START);
    peer.emit('data', Buffer.concat([request(1), request(2, Op.TRANSACTION_START)]));
    // A guest pipelining behind the deferred request now waits in the kernel, not in our memory.
    expect(peer.reading).toBe(false);
    input.pause();
    input.resume(); // the output's flow control does not restart reading while the request waits
    expect(peer.reading).toBe(false);
    setAdmission(undefined);
    input.pump();
    expect(peer.reading).toBe(true);
    expect(taken).toEqual([1, 2]);
  });

  it('takes nothing once the connection is closed', () => {
    const { owner, peer, taken } = setup();
    owner.state = 'closed';
    peer.emit('data', request(1));
    expect(taken).toEqual([]);
  });

  it('ends the connection on a header announcing more than 4096 bytes', () => {
    const { peer, taken } = setup();
    const header = Buffer.alloc(16);
    header.writeUInt32LE(Op.READ, 0);
    header.writeUInt32LE(4097, 12);
    peer.emit('data', header);
    expect(taken).toEqual([]);
    expect(peer.destroyed?.message).toMatch(/oversized request \(4097 bytes\)/);
  });

  it('closes a connection whose request stays half-sent with no byte for the idle interval (issue 18)', async () => {
    const { peer, taken, idled } = setup(200);
    const req = request(1);
    peer.emit('data', req.subarray(0, 8));
    await new Promise((r) => setTimeout(r, 50));
    expect(peer.destroyed).toBeUndefined();
    expect(idled).toEqual([]);
    await new Promise((r) => setTimeout(r, 400));
    // Handed to the idle closer (no Error built: its stack trace was most of a close's cost).
    expect(idled).toEqual([peer]);
    expect(peer.destroyed).toBe(null);
    expect(taken).toEqual([]);
  });

  it('never times out a slow sender that keeps sending, nor a client with nothing half-sent', async () => {
    const { peer, taken, idled } = setup(200);
    const req = request(1);
    // 19 bytes, one every 15 ms: 285 ms in all, longer than the interval.
    for (let i = 0; i < req.length; i++) {
      peer.emit('data', req.subarray(i, i + 1));
      await new Promise((r) => setTimeout(r, 15));
    }
    expect(taken).toEqual([1]);
    await new Promise((r) => setTimeout(r, 400));
    expect(peer.destroyed).toBeUndefined();
    expect(idled).toEqual([]);
  });

  it('takes a pipeline of slow requests in slices, letting the loop turn between them (issue 18)', async () => {
    const busy = () => {
      const t0 = performance.now();
      while (performance.now() - t0 < 1) {
        // each request costs 1 ms
      }
    };
    const { peer, taken } = setup(undefined, busy);
    peer.emit('data', Buffer.concat(Array.from({ length: 20 }, (_, i) => request(i + 1))));
    // At most a slice's worth (2 ms, so 3 requests of 1 ms) before the loop gets its turn.
    expect(taken.length).toBeLessThanOrEqual(3);
    expect(peer.reading).toBe(false);
    for (let i = 0; i < 500 && taken.length < 20; i++) await new Promise((r) => setTimeout(r, 10));
    expect(taken).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(peer.reading).toBe(true);
  });
});
