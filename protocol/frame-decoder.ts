import { decodeHeader, HEADER_SIZE, PAYLOAD_MAX } from './header.js';
import type { Header } from './header.js';

/** One complete message: its header and exactly `header.len` payload bytes. */
export interface Frame {
  header: Header;
  /**
   * Aliases the pushed chunk when the frame lay inside one chunk (no copy), so keeping it
   * keeps the whole chunk alive: decode what you keep (`toString('latin1')`) or copy it.
   */
  payload: Buffer;
}

/** A protocol violation; after one, the decoder is dead and the connection must close. */
export type DecodeError = { kind: 'oversized'; len: number };

/**
 * Streaming decoder for the byte stream of one connection (spec §1.2, §1.3).
 *
 * Pull-based so the server can stop taking requests while its reply queue is full and
 * leave the rest buffered (oxenstored `xb.ml` `can_input`):
 *
 *     decoder.push(chunk);
 *     for (let f = decoder.next(); f !== undefined; f = decoder.next()) handle(f);
 *     if (decoder.error !== undefined) close();
 *
 * Bytes stay in the chunk list until a whole frame is present; a frame inside one chunk
 * is handed out as a `subarray` and only a frame that straddles chunks is copied
 * (vscode-jsonrpc `messageBuffer.ts`, nats `parser.ts`).
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  /** Bytes of `chunks[0]` already consumed. */
  private head = 0;
  /** Unconsumed bytes across all chunks. */
  private held = 0;
  /** Payload length of the header at the front of the buffer, -1 until it has arrived. */
  private bodyLength = -1;
  private failure: DecodeError | undefined = undefined;

  /** `push(chunk)` appends bytes from the stream; ignored once the decoder is dead. */
  push(chunk: Buffer): void {
    if (this.failure !== undefined || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.held += chunk.length;
  }

  /**
   * `next()` returns the next complete frame, or undefined when more bytes are needed or
   * the decoder is dead (then `error` says why). A `len == 0` frame is returned as soon as
   * its header is complete (spec §1.3: oxenstored stalls on it; we must not).
   */
  next(): Frame | undefined {
    if (this.bodyLength < 0) {
      if (this.held < HEADER_SIZE) return undefined;
      const len = this.peekU32(12);
      if (len > PAYLOAD_MAX) {
        // Spec §1.3: cxenstored drops the connection; oxenstored clamps len to 4096 and
        // the stream desynchronises, so we do not copy it. Nothing after this is trusted.
        this.failure = { kind: 'oversized', len };
        this.chunks = [];
        this.head = 0;
        this.held = 0;
        return undefined;
      }
      this.bodyLength = len;
    }
    const size = HEADER_SIZE + this.bodyLength;
    if (this.held < size) return undefined;

    const first = this.chunks[0];
    let bytes: Buffer;
    let off: number;
    if (first.length - this.head >= size) {
      bytes = first;
      off = this.head;
      this.head += size;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
    } else {
      bytes = this.copyOut(size);
      off = 0;
    }
    this.held -= size;
    this.bodyLength = -1;
    return { header: decodeHeader(bytes, off), payload: bytes.subarray(off + HEADER_SIZE, off + size) };
  }

  /**
   * `peekType()` is the message type of the next frame once its header has arrived (the body may
   * not have), else undefined; nothing is consumed. Lets a server defer a request without taking it.
   */
  peekType(): number | undefined {
    return this.held < HEADER_SIZE ? undefined : this.peekU32(0);
  }

  /** The violation that killed the decoder, if any. */
  get error(): DecodeError | undefined {
    return this.failure;
  }

  /** `buffered()` is the number of bytes held (a partial header or frame); 0 when dead. */
  buffered(): number {
    return this.held;
  }

  /**
   * `unconsumed()` is a copy of every byte held and not yet returned as a frame (whole frames not
   * yet taken, then a partial one), in stream order; the decoder is unchanged. Live update hands
   * these to the next process, which pushes them into its own decoder before any new byte.
   */
  unconsumed(): Buffer {
    if (this.held === 0) return Buffer.alloc(0);
    const out = Buffer.allocUnsafe(this.held);
    let filled = 0;
    let start = this.head;
    for (const chunk of this.chunks) {
      filled += chunk.copy(out, filled, start);
      start = 0;
    }
    return out;
  }

  /** Reads the u32 at byte `at` of the unconsumed bytes; the caller checked they exist. */
  private peekU32(at: number): number {
    let value = 0;
    let index = 0;
    let pos = this.head + at;
    for (let i = 0; i < 4; i++, pos++) {
      while (pos >= this.chunks[index].length) pos -= this.chunks[index++].length;
      value |= this.chunks[index][pos] << (8 * i);
    }
    return value >>> 0;
  }

  /** Copies the first `size` unconsumed bytes into a fresh buffer and consumes them. */
  private copyOut(size: number): Buffer {
    const out = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      const chunk = this.chunks[0];
      const n = Math.min(size - filled, chunk.length - this.head);
      chunk.copy(out, filled, this.head, this.head + n);
      filled += n;
      this.head += n;
      if (this.head === chunk.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    return out;
  }
}
