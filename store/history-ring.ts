/**
 * The bytes of history's records, off the JS heap: records are written one after another into
 * large Buffers (chunks), and each record's place and time are kept in typed arrays. Per commit
 * nothing is left for the garbage collector to copy (issue 14: with a JS object graph per record,
 * every record outlived the young generation and the scavenger copied it twice, which made a
 * write 3-4x slower). Records are read back by `bytes(i)`, a view decoded on demand
 * (history-codec.ts). Oldest first; the oldest go first (`drop`), the newest on a rewind (`pop`).
 *
 * Memory: the records' bytes (what the window's byte bound counts), plus at most one partly used
 * chunk at each end and one spare, plus 20 bytes of index per record.
 */

/** Chunk size bounds: large enough that a chunk holds thousands of records, small for a small window. */
const CHUNK_MIN = 64 * 1024;
const CHUNK_MAX = 1024 * 1024;

/** Index slots to start with; doubled as needed up to the record bound. */
const INDEX_START = 1024;

/** A double's bytes (little-endian on every platform Node runs xenstored on: x86, Arm). */
const F64 = new Float64Array(1);
const F64_WORDS = new Uint32Array(F64.buffer);

declare module 'node:buffer' {
  interface Buffer {
    /** Node's own latin1 copy (what `write(s, at, n, 'latin1')` calls), without the encoding lookup. */
    latin1Write(s: string, at: number, n: number): number;
  }
}

/**
 * Writes one record at the ring's tail. A record that outgrows its chunk moves to a new one
 * (a record never spans chunks: a view of it is one slice).
 */
export class RecordWriter {
  /** The chunk being written, the record's start in it, and the write position. */
  buf!: Buffer;
  /**
   * The same bytes as a DataView: a multi-byte field in one store instead of one per byte (issue
   * 14: a plain write's record header cost ~10 instructions a byte written bytewise). Set with
   * `buf` by `use`.
   */
  view!: DataView;
  start = 0;
  pos = 0;

  constructor(
    buf: Buffer,
    private readonly grow: (need: number) => Buffer,
  ) {
    this.use(buf);
  }

  /** Writes into `buf` from now on (the caller sets `start` and `pos`). */
  use(buf: Buffer): void {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  }

  /** Makes room for `n` more bytes of the current record. */
  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const used = this.pos - this.start;
    const next = this.grow(used + n);
    this.buf.copy(next, 0, this.start, this.pos);
    this.use(next);
    this.start = 0;
    this.pos = used;
  }

  // The writes below assume `room` was called for them (one check per change, not per field).

  u8(v: number): void {
    this.buf[this.pos++] = v;
  }

  u16(v: number): void {
    const b = this.buf;
    const p = this.pos;
    b[p] = v;
    b[p + 1] = v >>> 8;
    this.pos = p + 2;
  }

  u32(v: number): void {
    const b = this.buf;
    const p = this.pos;
    b[p] = v;
    b[p + 1] = v >>> 8;
    b[p + 2] = v >>> 16;
    b[p + 3] = v >>> 24;
    this.pos = p + 4;
  }

  f64(v: number): void {
    F64[0] = v;
    this.u32(F64_WORDS[0]!);
    this.u32(F64_WORDS[1]!);
  }

  /**
   * A byte string (one code unit per byte: paths, and values as node.ts keeps them), its length
   * first (`4 + s.length` bytes). Short ones are copied by a loop: cheaper than a call into the runtime.
   */
  str(s: string): void {
    const n = s.length;
    this.u32(n);
    const b = this.buf;
    const p = this.pos;
    if (n < 64) {
      for (let i = 0; i < n; i++) b[p + i] = s.charCodeAt(i);
    } else {
      b.latin1Write(s, p, n);
    }
    this.pos = p + n;
  }

  /** Writes `v` at `at` (a place reserved earlier in this record), relative to the record's start. */
  patchU32(at: number, v: number): void {
    const b = this.buf;
    const p = this.start + at;
    b[p] = v;
    b[p + 1] = v >>> 8;
    b[p + 2] = v >>> 16;
    b[p + 3] = v >>> 24;
  }

  /** Where the next byte goes, relative to the record's start. */
  get offset(): number {
    return this.pos - this.start;
  }
}

/** A record's bytes in place: `buf` from `start` to `end`. */
export interface RecordView {
  buf: Buffer;
  start: number;
  end: number;
}

export class HistoryRing {
  /** Chunks in order; `chunks[k]` has sequence number `firstChunk + k`. */
  private chunks: Buffer[] = [];
  private firstChunk = 0;
  private spare: Buffer | undefined;
  private readonly chunkBytes: number;
  /** Circular index of records: slot of record i is (head + i) & (cap - 1). */
  private cap = INDEX_START;
  private head = 0;
  private count = 0;
  private chunkOf = new Uint32Array(INDEX_START);
  private offsetOf = new Uint32Array(INDEX_START);
  private lengthOf = new Uint32Array(INDEX_START);
  private timeOf = new Float64Array(INDEX_START);
  private total = 0;
  private readonly writer: RecordWriter;

  /** `byteBound` (the window's) sizes the chunks. */
  constructor(byteBound: number) {
    this.chunkBytes = Math.max(CHUNK_MIN, Math.min(CHUNK_MAX, 2 ** Math.ceil(Math.log2(Math.max(1, byteBound / 16)))));
    this.chunks.push(Buffer.allocUnsafeSlow(this.chunkBytes));
    this.writer = new RecordWriter(this.chunks[0]!, (need) => this.newChunk(need));
  }

  get size(): number {
    return this.count;
  }

  /** The records' bytes. */
  get bytes(): number {
    return this.total;
  }

  /** Bytes this ring holds: its chunks (and spare) and its index. */
  get allocated(): number {
    let n = this.spare?.length ?? 0;
    for (const c of this.chunks) n += c.length;
    return n + this.cap * 20;
  }

  /** The writer, positioned for a new record at the tail. Finish with `end(time)` or `abandon()`. */
  begin(): RecordWriter {
    const w = this.writer;
    w.start = w.pos;
    return w;
  }

  /** Keeps the record just written, made at `time`; its length. */
  end(time: number): number {
    const w = this.writer;
    if (this.count === this.cap) this.growIndex();
    const slot = (this.head + this.count) & (this.cap - 1);
    const length = w.pos - w.start;
    this.chunkOf[slot] = this.firstChunk + this.chunks.length - 1;
    this.offsetOf[slot] = w.start;
    this.lengthOf[slot] = length;
    this.timeOf[slot] = time;
    this.count++;
    this.total += length;
    if (w.buf.length > this.chunkBytes) {
      // A chunk made for one large record holds no more: it goes as soon as that record does.
      const next = this.spare ?? Buffer.allocUnsafeSlow(this.chunkBytes);
      this.spare = undefined;
      this.chunks.push(next);
      w.use(next);
      w.start = w.pos = 0;
    }
    return length;
  }

  /** Forgets a record being written (its encoding failed). */
  abandon(): void {
    this.writer.pos = this.writer.start;
  }

  /** The bytes of record `i` (oldest first): a view, valid until that record goes. */
  bytesOf(i: number): Buffer {
    const slot = this.slot(i);
    const at = this.offsetOf[slot]!;
    return this.chunks[this.chunkOf[slot]! - this.firstChunk]!.subarray(at, at + this.lengthOf[slot]!);
  }

  /**
   * `view(i, out)`: where record `i`'s bytes are (`out.buf` from `out.start` to `out.end`), with
   * no object made: a scan over the window looks at every record.
   */
  view(i: number, out: RecordView): void {
    const slot = this.slot(i);
    out.buf = this.chunks[this.chunkOf[slot]! - this.firstChunk]!;
    out.start = this.offsetOf[slot]!;
    out.end = out.start + this.lengthOf[slot]!;
  }

  time(i: number): number {
    return this.timeOf[this.slot(i)]!;
  }

  length(i: number): number {
    return this.lengthOf[this.slot(i)]!;
  }

  /**
   * `excess(records, bytes)`: how many of the oldest records must go for the ring to hold at most
   * `records` records and `bytes` bytes (the newest stays, however large). Read from the index
   * alone: the records' own bytes, long out of the caches, are not touched.
   */
  excess(records: number, bytes: number): number {
    const mask = this.cap - 1;
    let k = this.count > records ? this.count - records : 0;
    let held = this.total;
    for (let i = 0; i < k; i++) held -= this.lengthOf[(this.head + i) & mask]!;
    while (held > bytes && this.count - k > 1) held -= this.lengthOf[(this.head + k++) & mask]!;
    return k;
  }

  /**
   * Drops the `k` oldest records (at most all) in one step; chunks they were the last users of are
   * freed. Issue 14: one at a time, a full window paid a call, a range check and a chunk check per
   * record evicted, i.e. per commit (~60 instructions a write more: bench/RESULTS.md, "History",
   * seventeenth pass).
   */
  drop(k: number): void {
    if (k > this.count) k = this.count;
    if (!(k > 0)) return;
    const mask = this.cap - 1;
    let freed = 0;
    for (let i = 0; i < k; i++) freed += this.lengthOf[(this.head + i) & mask]!;
    this.total -= freed;
    this.head = (this.head + k) & mask;
    this.count -= k;
    const keep = this.count === 0 ? this.firstChunk + this.chunks.length - 1 : this.chunkOf[this.head]!;
    while (this.firstChunk < keep) {
      this.recycle(this.chunks.shift()!);
      this.firstChunk++;
    }
  }

  /** Drops the newest record; the tail goes back to where it started. */
  pop(): void {
    if (this.count === 0) return;
    this.count--;
    const slot = (this.head + this.count) & (this.cap - 1);
    this.total -= this.lengthOf[slot]!;
    const k = this.chunkOf[slot]! - this.firstChunk;
    while (this.chunks.length - 1 > k) this.recycle(this.chunks.pop()!);
    this.writer.use(this.chunks[k]!);
    this.writer.start = this.writer.pos = this.offsetOf[slot]!;
  }

  clear(): void {
    while (this.count > 0) this.pop();
  }

  private slot(i: number): number {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`history record ${i} of ${this.count}`);
    return (this.head + i) & (this.cap - 1);
  }

  private growIndex(): void {
    const cap = this.cap * 2;
    // Oldest first in the new arrays: the part from head to the end, then the wrapped part.
    const tail = this.cap - this.head;
    const move = <T extends Uint32Array | Float64Array>(a: T, b: T): T => {
      b.set(a.subarray(this.head), 0);
      b.set(a.subarray(0, this.head), tail);
      return b;
    };
    this.chunkOf = move(this.chunkOf, new Uint32Array(cap));
    this.offsetOf = move(this.offsetOf, new Uint32Array(cap));
    this.lengthOf = move(this.lengthOf, new Uint32Array(cap));
    this.timeOf = move(this.timeOf, new Float64Array(cap));
    this.cap = cap;
    this.head = 0;
  }

  /** A chunk for a record that needs `need` bytes: a fresh standard one, or one its own size. */
  private newChunk(need: number): Buffer {
    let buf: Buffer;
    if (need <= this.chunkBytes) {
      buf = this.spare ?? Buffer.allocUnsafeSlow(this.chunkBytes);
      this.spare = undefined;
    } else {
      buf = Buffer.allocUnsafeSlow(need * 2);
    }
    // A chunk that holds no record (the current record began it) is replaced, not kept.
    const last = this.chunks.length - 1;
    const lastUsed = this.count > 0 && this.chunkOf[(this.head + this.count - 1) & (this.cap - 1)] === this.firstChunk + last;
    if (!lastUsed && this.writer.start === 0) {
      this.recycle(this.chunks.pop()!);
    }
    this.chunks.push(buf);
    return buf;
  }

  private recycle(buf: Buffer): void {
    if (buf.length === this.chunkBytes && this.spare === undefined) this.spare = buf;
  }
}
