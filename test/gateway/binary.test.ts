/**
 * The binary WebSocket mode (subprotocol `xenstore`): raw wire frames in and out. The same
 * sequence of frames is sent over a Unix socket and over a WebSocket, and the replies must be
 * the same bytes (type, req_id, tx_id, payload), errors and watch events included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { FrameDecoder, Op, type Frame } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { frame, header, Wire } from '../helpers/wire.js';

let d: RunningDaemon;
let wsUrl: string;
let root: string;

beforeAll(async () => {
  d = await startDaemon({ args: ['--http', '127.0.0.1:0'] });
  const g = await d.gateway();
  wsUrl = `${g.url.replace(/^http/, 'ws')}/v1/ws`;
  root = g.token;
});
afterAll(async () => {
  await d?.stop();
});

/** A binary-mode client: sends bytes, collects every frame it gets back. */
class BinaryWs {
  readonly frames: Frame[] = [];
  private readonly decoder = new FrameDecoder();
  private waiter: (() => void) | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.decoder.push(data);
      for (let f = this.decoder.next(); f !== undefined; f = this.decoder.next()) {
        this.frames.push({ header: f.header, payload: Buffer.from(f.payload) });
      }
      this.waiter?.();
    });
    this.closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
  }

  static open(token?: string): Promise<BinaryWs> {
    const ws = new WebSocket(`${wsUrl}${token === undefined ? '' : `?token=${token}`}`, ['xenstore']);
    return new Promise((res, rej) => {
      ws.once('open', () => res(new BinaryWs(ws)));
      ws.once('error', rej);
    });
  }

  async until(n: number): Promise<Frame[]> {
    const deadline = Date.now() + 10_000;
    while (this.frames.length < n) {
      if (Date.now() > deadline) throw new Error(`wanted ${n} frames, got ${this.frames.length}`);
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 100);
      });
    }
    return this.frames.slice(0, n);
  }
}

/** Collects `n` frames from a Unix socket client, events included, in arrival order. */
async function unixFrames(w: Wire, bytes: Buffer[], n: number): Promise<Frame[]> {
  const start = w.received.length;
  // Each chunk is one request: announce its reply to the Wire (it refuses unexpected replies).
  const replies = bytes.map(() => w.awaitReply());
  for (const b of bytes) await w.sendRaw(b);
  await Promise.all(replies);
  const deadline = Date.now() + 10_000;
  while (w.received.length - start < n) {
    if (Date.now() > deadline) throw new Error(`wanted ${n} frames`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return w.received.slice(start, start + n);
}

const show = (frames: Frame[]) =>
  frames.map((f) => `${f.header.type} ${f.header.reqId} ${f.header.txId} ${f.payload.toString('latin1').replaceAll('\0', '|')}`);

/** One session's requests under `base`; replies and events must not depend on which transport. */
function script(base: string): Buffer[] {
  return [
    frame(Op.WATCH, `${base}|w|`, 1),
    frame(Op.WRITE, `${base}/a|value`, 2),
    frame(Op.READ, `${base}/a|`, 3),
    frame(Op.READ, `${base}/none|`, 4),
    frame(Op.MKDIR, `${base}/d|`, 5),
    frame(Op.DIRECTORY, `${base}|`, 6),
    frame(Op.TRANSACTION_START, '|', 7),
    frame(Op.WRITE, `${base}/t|in tx`, 8, 1),
    frame(Op.READ, `${base}/t|`, 9, 1),
    frame(Op.TRANSACTION_END, 'T|', 10, 1),
    frame(Op.SET_PERMS, `${base}/a|n0|r5|`, 11),
    frame(Op.GET_PERMS, `${base}/a|`, 12),
    frame(Op.READ, 'bad path|', 13),
    frame(Op.READ, `${base}/a|`, 14, 77),
    frame(99, '', 15),
    frame(Op.RM, `${base}/d|`, 16),
    frame(Op.UNWATCH, `${base}|w|`, 17),
    frame(Op.GET_DOMAIN_PATH, '3|', 18),
  ];
}

describe('binary mode', () => {
  it('answers the same frames as the Unix socket, events included', async () => {
    const unix = await d.connect();
    // 18 replies, plus events: the watch's own, then one per update under the watched path.
    const fromUnix = await unixFrames(unix, script('/same'), 18 + 6);
    await unix.ask(Op.RM, '/same|');

    const ws = await BinaryWs.open(root);
    for (const b of script('/same')) ws.ws.send(b);
    const fromWs = await ws.until(18 + 6);
    expect(show(fromWs)).toEqual(show(fromUnix));
    expect(show(fromWs)).toContain(`${Op.WATCH_EVENT} 0 0 /same/t|w|`); // the commit's event
    expect(show(fromWs)).toContain(`${Op.ERROR} 4 0 ENOENT|`);
    ws.ws.close();
  });

  it('reassembles frames split across messages, and takes several in one', async () => {
    const ws = await BinaryWs.open(root);
    const a = frame(Op.WRITE, '/split/x|1', 1);
    const b = frame(Op.READ, '/split/x|', 2);
    ws.ws.send(a.subarray(0, 5));
    ws.ws.send(a.subarray(5, 20));
    ws.ws.send(Buffer.concat([a.subarray(20), b]));
    expect(show(await ws.until(2))).toEqual([`${Op.WRITE} 1 0 OK|`, `${Op.READ} 2 0 1`]);
    ws.ws.close();
  });

  it('refuses a client without a token at the handshake (401: no anonymous reads by default)', async () => {
    await expect(BinaryWs.open()).rejects.toThrow(/401/);
  });

  it('closes with 1002 on an oversized header (spec §1.3) and 1003 on a text message', async () => {
    const big = await BinaryWs.open(root);
    big.ws.send(header(Op.READ, 1, 0, 4097));
    expect((await big.closed).code).toBe(1002);
    const text = await BinaryWs.open(root);
    text.ws.send('hello');
    expect((await text.closed).code).toBe(1003);
  });
});
