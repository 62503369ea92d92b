import { connect, type Socket } from 'node:net';
import { FrameDecoder, HEADER_SIZE } from '../../protocol/index.js';

/** What a load does with each reply: a method on a long-lived object, not a closure per request. */
export interface ReplySink {
  reply(conn: LoadConnection, type: number, reqId: number, txId: number, payload: Buffer): void;
}

const SLAB = 256 * 1024;

/**
 * One client socket of the load generator, built so the generator is never the bottleneck:
 * - requests are copied from prebuilt frames (`template`) into a slab, with only req_id and
 *   tx_id patched, and the slab region of one batch leaves in ONE `write` (no per-request
 *   allocation, no Buffer.concat); a new slab is taken when the current one is used up, since
 *   the socket may still hold the old regions;
 * - replies are decoded with the protocol's zero-copy FrameDecoder and handed to the sink;
 * - requests queued while handling a chunk of replies are flushed once, after the chunk.
 * The same code drives every daemon, so the comparison is fair.
 */
export class LoadConnection {
  private readonly decoder = new FrameDecoder();
  private slab = Buffer.allocUnsafe(SLAB);
  private start = 0;
  private pos = 0;
  private inHandler = false;

  private constructor(
    readonly socket: Socket,
    private sink: ReplySink,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /**
   * `open(path, sink)` connects to a xenstored Unix socket. cxenstored listens with a short
   * backlog, so a burst of connects may see EAGAIN: retry a few times.
   */
  static async open(path: string, sink: ReplySink): Promise<LoadConnection> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await LoadConnection.openOnce(path, sink);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || attempt >= 50) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  private static openOnce(path: string, sink: ReplySink): Promise<LoadConnection> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => {
        s.off('error', reject);
        s.on('error', () => undefined); // reported through 'close' by the loads that care
        resolve(new LoadConnection(s, sink));
      });
      s.once('error', reject);
    });
  }

  /** Redirects replies to another sink (a load reusing a prepared connection). */
  setSink(sink: ReplySink): void {
    this.sink = sink;
  }

  /**
   * `queue(template, reqId, txId)` appends a prebuilt frame with its req_id and tx_id patched.
   * It leaves at the end of the current reply chunk, or at `flush()`.
   */
  queue(template: Buffer, reqId: number, txId: number): void {
    const len = template.length;
    if (this.pos + len > this.slab.length) this.renew(len);
    const at = this.pos;
    template.copy(this.slab, at);
    this.slab.writeUInt32LE(reqId >>> 0, at + 4);
    this.slab.writeUInt32LE(txId >>> 0, at + 8);
    this.pos = at + len;
  }

  /** Sends everything queued since the last flush, in one write. */
  flush(): void {
    if (this.pos === this.start) return;
    this.socket.write(this.slab.subarray(this.start, this.pos));
    this.start = this.pos;
  }

  close(): void {
    this.socket.destroy();
  }

  private renew(need: number): void {
    // Send what is queued from the old slab first, so the stream keeps its order.
    this.flush();
    this.slab = Buffer.allocUnsafe(Math.max(SLAB, need));
    this.start = 0;
    this.pos = 0;
  }

  private onData(chunk: Buffer): void {
    this.decoder.push(chunk);
    this.inHandler = true;
    for (let f = this.decoder.next(); f !== undefined; f = this.decoder.next()) {
      const h = f.header;
      this.sink.reply(this, h.type, h.reqId, h.txId, f.payload);
    }
    this.inHandler = false;
    if (this.decoder.error !== undefined) this.socket.destroy(new Error('bad frame from daemon'));
    this.flush();
  }

  /** True while replies are being handled (queued requests will be flushed after them). */
  get handling(): boolean {
    return this.inHandler;
  }
}

/** `frame(type, payload)` is a request frame with req_id = tx_id = 0, to be used as a template. */
export function frame(type: number, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  const out = Buffer.allocUnsafe(HEADER_SIZE + body.length);
  out.writeUInt32LE(type, 0);
  out.writeUInt32LE(0, 4);
  out.writeUInt32LE(0, 8);
  out.writeUInt32LE(body.length, 12);
  body.copy(out, HEADER_SIZE);
  return out;
}
