/**
 * The bytes of history's records, off the JS heap: entries are written one after another into
 * large Buffers (chunks), and each entry's place, time and count of records are kept in typed
 * arrays. Per commit nothing is left for the garbage collector to copy (issue 14: with a JS
 * object graph per record, every record outlived the young generation and the scavenger copied
 * it twice, which made a write 3-4x slower). An entry holds one record, or several made at one
 * time (a turn's rewrites, history.ts `settle`: one place in the index and one header for all of
 * them, history-codec.ts `writeBatchHead`); `locate(i)` finds record i's entry. Entries are read
 * back as views, decoded on demand (history-codec.ts). Oldest first; the oldest go first (`shift`,
 * or `trimHead` for the first records of an entry), the newest on a rewind (`pop`, `trimTail`).
 *
 * Memory: the entries' bytes (a group's trimmed records' too, until it goes), plus at most one
 * partly used chunk at each end and one spare, plus 45 bytes of index per entry and 4 per record
 * of a group. `bytes` is what the caller counted for them (history.ts counts each record as if it
 * stood alone, so that how they were grouped changes no bound).
 */

/** Chunk size bounds: large enough that a chunk holds thousands of records, small for a small window. */
const CHUNK_MIN = 64 * 1024;
const CHUNK_MAX = 1024 * 1024;

/** Index slots to start with; doubled as needed up to the record bound. */
const INDEX_START = 1024;

/** Bytes of index per entry: chunk, offset, length, time, count, counted, group, head, first. */
const INDEX_BYTES = 4 + 4 + 4 + 8 + 4 + 8 + 1 + 4 + 8;

/** A double's bytes (little-endian on every platform Node runs xenstored on: x86, Arm). */
const F64 = new Float64Array(1);
const F64_WORDS = new Uint32Array(F64.buffer);

/**
 * Strings at least this long are copied by Node's `latin1Write`, shorter ones by a loop
 * (`putLatin1`). From Node 22 that call is a V8 fast API call, ~9-18 ns whatever the length;
 * on Node 20 it is a full binding call, ~38 ns, which a loop of 4-byte stores beats below 32
 * characters. (A 16-byte value: loop of byte stores 31-35 ns on all three, 4-byte stores 21-25,
 * the call 39 ns on Node 20, 8.5 on 22, 17.7 on 24; bench/RESULTS.md, "History", tenth pass.)
 */
const LATIN1_CALL_FROM = Number(process.versions.node.split('.')[0]) >= 22 ? 12 : 32;

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
   * first (`4 + s.length` bytes).
   */
  str(s: string): void {
    const n = s.length;
    this.u32(n);
    this.pos = putLatin1(this.buf, this.view, this.pos, s, n);
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

/**
 * `putLatin1(b, v, p, s, n)` copies the `n` code units of `s` to `b` at `p`, one byte each (`v`
 * is `b` as a DataView); where the next byte goes. Short strings four bytes a store: a record's
 * old value is copied on every write (issue 14), and a store per byte cost ~2 ns a character.
 */
export function putLatin1(b: Buffer, v: DataView, p: number, s: string, n: number): number {
  if (n >= LATIN1_CALL_FROM) {
    b.latin1Write(s, p, n);
    return p + n;
  }
  let i = 0;
  for (; i + 4 <= n; i += 4) v.setUint32(p + i, s.charCodeAt(i) | (s.charCodeAt(i + 1) << 8) | (s.charCodeAt(i + 2) << 16) | (s.charCodeAt(i + 3) << 24), true);
  for (; i < n; i++) b[p + i] = s.charCodeAt(i);
  return p + n;
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
  /** Circular index of entries: slot of entry k is (head + k) & (cap - 1). */
  private cap = INDEX_START;
  private head = 0;
  private count = 0;
  /** Where the entry is: its chunk, its start in it and its length, as written (trims keep them). */
  private chunkOf = new Uint32Array(INDEX_START);
  private offsetOf = new Uint32Array(INDEX_START);
  private lengthOf = new Uint32Array(INDEX_START);
  private timeOf = new Float64Array(INDEX_START);
  /** Records the entry holds, and the bytes counted for them (`end`'s `counted`). */
  private countOf = new Uint32Array(INDEX_START);
  private countedOf = new Float64Array(INDEX_START);
  /** 1 for a group (its records marked: `mark`), 0 for one record; a group's head, before its first mark. */
  private groupOf = new Uint8Array(INDEX_START);
  private headOf = new Uint32Array(INDEX_START);
  /**
   * `firstOf[slot]`: the entry's first record, numbered from the first record ever kept
   * (`dropped` records before the oldest kept): records are found by binary search when entries
   * hold several, directly when every entry holds one (`records === count`).
   */
  private firstOf = new Float64Array(INDEX_START);
  private records = 0;
  private dropped = 0;
  private total = 0;
  /**
   * Where each record of a group begins, relative to its entry's start: circular by record
   * number, `startOf[n & (rcap - 1)]`. A group's records are trimmed by moving its first and
   * count, never its bytes: the window's bound reads these, not the records (issue 14: walking
   * the oldest batch's bytes to trim it cost a cache miss per record evicted).
   */
  private rcap = INDEX_START;
  private startOf = new Uint32Array(INDEX_START);
  /** Records marked in the entry being written. */
  private marks = 0;
  private readonly writer: RecordWriter;

  /** `byteBound` (the window's) sizes the chunks. */
  constructor(byteBound: number) {
    this.chunkBytes = Math.max(CHUNK_MIN, Math.min(CHUNK_MAX, 2 ** Math.ceil(Math.log2(Math.max(1, byteBound / 16)))));
    this.chunks.push(Buffer.allocUnsafeSlow(this.chunkBytes));
    this.writer = new RecordWriter(this.chunks[0]!, (need) => this.newChunk(need));
  }

  /** Records kept. */
  get size(): number {
    return this.records;
  }

  /** Entries kept. */
  get entries(): number {
    return this.count;
  }

  /** The bytes counted for the records (`end`'s `counted`). */
  get bytes(): number {
    return this.total;
  }

  /** Bytes this ring holds: its chunks (and spare) and its indexes. */
  get allocated(): number {
    let n = this.spare?.length ?? 0;
    for (const c of this.chunks) n += c.length;
    return n + this.cap * INDEX_BYTES + this.rcap * 4;
  }

  /** The writer, positioned for a new entry at the tail. Finish with `end(...)` or `abandon()`. */
  begin(): RecordWriter {
    const w = this.writer;
    w.start = w.pos;
    this.marks = 0;
    return w;
  }

  /**
   * `mark()`: a record of a group begins at the writer's position (what the entry has before its
   * first mark is the group's head, which its records share).
   */
  mark(): void {
    if (this.records + this.marks >= this.rcap) this.growStarts();
    const w = this.writer;
    this.startOf[(this.dropped + this.records + this.marks) & (this.rcap - 1)] = w.pos - w.start;
    this.marks++;
  }

  /**
   * Keeps the entry just written, made at `time`: one record, or the group of those marked, for
   * which `counted` bytes count (by default its length); its length.
   */
  end(time: number, counted = -1): number {
    const w = this.writer;
    if (this.count === this.cap) this.growIndex();
    const slot = (this.head + this.count) & (this.cap - 1);
    const length = w.pos - w.start;
    const group = this.marks > 0;
    const records = group ? this.marks : 1;
    const c = counted < 0 ? length : counted;
    this.chunkOf[slot] = this.firstChunk + this.chunks.length - 1;
    this.offsetOf[slot] = w.start;
    this.lengthOf[slot] = length;
    this.timeOf[slot] = time;
    this.countOf[slot] = records;
    this.countedOf[slot] = c;
    this.groupOf[slot] = group ? 1 : 0;
    this.headOf[slot] = group ? this.startOf[(this.dropped + this.records) & (this.rcap - 1)]! : 0;
    this.firstOf[slot] = this.dropped + this.records;
    this.marks = 0;
    this.count++;
    this.records += records;
    this.total += c;
    if (w.buf.length > this.chunkBytes) {
      // A chunk made for one large entry holds no more: it goes as soon as that entry does.
      const next = this.spare ?? Buffer.allocUnsafeSlow(this.chunkBytes);
      this.spare = undefined;
      this.chunks.push(next);
      w.use(next);
      w.start = w.pos = 0;
    }
    return length;
  }

  /** Forgets an entry being written (its encoding failed). */
  abandon(): void {
    this.writer.pos = this.writer.start;
    this.marks = 0;
  }

  /** The entry (oldest first) that holds record `i` (oldest first). */
  locate(i: number): number {
    if (!(i >= 0 && i < this.records)) throw new RangeError(`history record ${i} of ${this.records}`);
    if (this.records === this.count) return i;
    // The oldest and newest entries first: the window's bound trims the one, a rewind the other,
    // record by record. Then a binary search on the entries' first records: the last entry whose
    // first is at or before i.
    if (i < this.countOf[this.head]!) return 0;
    const want = this.dropped + i;
    let hi = this.count - 1;
    if (this.firstOf[(this.head + hi) & (this.cap - 1)]! <= want) return hi;
    let lo = 0;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.firstOf[(this.head + mid) & (this.cap - 1)]! <= want) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The record (oldest first) that entry `k` begins with. */
  first(k: number): number {
    return this.firstOf[this.slot(k)]! - this.dropped;
  }

  /** The records entry `k` holds. */
  countIn(k: number): number {
    return this.countOf[this.slot(k)]!;
  }

  /** The bytes counted for entry `k`. */
  countedIn(k: number): number {
    return this.countedOf[this.slot(k)]!;
  }

  /** Whether entry `k` is a group (it stays one when trimmed to a single record). */
  isGroup(k: number): boolean {
    return this.groupOf[this.slot(k)] === 1;
  }

  /** The length of group `k`'s head (0 for one record alone). */
  headIn(k: number): number {
    return this.headOf[this.slot(k)]!;
  }

  /** The bytes of entry `k` (oldest first), as written: a view, valid until that entry goes. */
  bytesOf(k: number): Buffer {
    const v: RecordView = { buf: this.chunks[0]!, start: 0, end: 0 };
    this.view(k, v);
    return v.buf.subarray(v.start, v.end);
  }

  /**
   * `view(k, out)`: where entry `k`'s bytes are, as written (`out.buf` from `out.start` to
   * `out.end`), with no object made: a scan over the window looks at every record.
   */
  view(k: number, out: RecordView): void {
    const slot = this.slot(k);
    out.buf = this.chunks[this.chunkOf[slot]! - this.firstChunk]!;
    out.start = this.offsetOf[slot]!;
    out.end = out.start + this.lengthOf[slot]!;
  }

  /**
   * `part(i, out)`: where record `i`'s own bytes are: its entry's, or, in a group, from its mark to
   * the next one's (or the entry's end).
   */
  part(i: number, out: RecordView): void {
    const k = this.locate(i);
    this.view(k, out);
    const slot = this.slot(k);
    if (this.groupOf[slot] === 0) return;
    const n = this.dropped + i;
    const start = out.start;
    if (n + 1 < this.firstOf[slot]! + this.countOf[slot]!) out.end = start + this.startOf[(n + 1) & (this.rcap - 1)]!;
    out.start = start + this.startOf[n & (this.rcap - 1)]!;
  }

  /** The length of record `i`'s own bytes (`part`). */
  partLength(i: number): number {
    const v = this.scratch;
    this.part(i, v);
    return v.end - v.start;
  }

  private readonly scratch: RecordView = { buf: Buffer.alloc(0), start: 0, end: 0 };

  /** The time of record `i` (its entry's). */
  time(i: number): number {
    return this.timeOf[this.slot(this.locate(i))]!;
  }

  /** Drops the oldest entry; chunks it was the last user of are freed. */
  shift(): void {
    if (this.count === 0) return;
    this.total -= this.countedOf[this.head]!;
    const n = this.countOf[this.head]!;
    this.records -= n;
    this.dropped += n;
    this.head = (this.head + 1) & (this.cap - 1);
    this.count--;
    const keep = this.count === 0 ? this.firstChunk + this.chunks.length - 1 : this.chunkOf[this.head]!;
    while (this.firstChunk < keep) {
      this.recycle(this.chunks.shift()!);
      this.firstChunk++;
    }
  }

  /**
   * `trimHead(records, counted)`: the oldest entry, a group, loses its first `records` records
   * (not all of them) and the `counted` bytes counted for them. Its bytes stay until it goes.
   */
  trimHead(records: number, counted: number): void {
    const slot = this.head;
    if (!(this.count > 0 && this.groupOf[slot] === 1 && records > 0 && records < this.countOf[slot]!)) throw new RangeError(`history entry trimmed by ${records} records`);
    this.countOf[slot] -= records;
    this.countedOf[slot] -= counted;
    this.firstOf[slot] += records;
    this.records -= records;
    this.dropped += records;
    this.total -= counted;
  }

  /** Drops the newest entry; the tail goes back to where it started. */
  pop(): void {
    if (this.count === 0) return;
    this.count--;
    const slot = (this.head + this.count) & (this.cap - 1);
    this.total -= this.countedOf[slot]!;
    this.records -= this.countOf[slot]!;
    this.rewriteFrom(slot, this.offsetOf[slot]!);
  }

  /**
   * `trimTail(records, counted)`: the newest entry, a group, loses its last `records` records (not
   * all of them) and the `counted` bytes counted for them; the next entry is written where the
   * first of them began.
   */
  trimTail(records: number, counted: number): void {
    const slot = (this.head + this.count - 1) & (this.cap - 1);
    if (!(this.count > 0 && this.groupOf[slot] === 1 && records > 0 && records < this.countOf[slot]!)) throw new RangeError(`history entry trimmed by ${records} records`);
    const keep = this.countOf[slot]! - records;
    const end = this.startOf[(this.firstOf[slot]! + keep) & (this.rcap - 1)]!;
    this.lengthOf[slot] = end;
    this.countOf[slot] = keep;
    this.countedOf[slot] -= counted;
    this.records -= records;
    this.total -= counted;
    this.rewriteFrom(slot, this.offsetOf[slot]! + end);
  }

  clear(): void {
    while (this.count > 0) this.pop();
  }

  /** The writer goes back to `at` in the chunk of entry `slot`, the newest; the chunks after it go. */
  private rewriteFrom(slot: number, at: number): void {
    const k = this.chunkOf[slot]! - this.firstChunk;
    while (this.chunks.length - 1 > k) this.recycle(this.chunks.pop()!);
    this.writer.use(this.chunks[k]!);
    this.writer.start = this.writer.pos = at;
  }

  private slot(k: number): number {
    if (!(k >= 0 && k < this.count)) throw new RangeError(`history entry ${k} of ${this.count}`);
    return (this.head + k) & (this.cap - 1);
  }

  private growIndex(): void {
    const cap = this.cap * 2;
    // Oldest first in the new arrays: the part from head to the end, then the wrapped part.
    const tail = this.cap - this.head;
    const move = <T extends Uint8Array | Uint32Array | Float64Array>(a: T, b: T): T => {
      b.set(a.subarray(this.head), 0);
      b.set(a.subarray(0, this.head), tail);
      return b;
    };
    this.chunkOf = move(this.chunkOf, new Uint32Array(cap));
    this.offsetOf = move(this.offsetOf, new Uint32Array(cap));
    this.lengthOf = move(this.lengthOf, new Uint32Array(cap));
    this.timeOf = move(this.timeOf, new Float64Array(cap));
    this.countOf = move(this.countOf, new Uint32Array(cap));
    this.countedOf = move(this.countedOf, new Float64Array(cap));
    this.groupOf = move(this.groupOf, new Uint8Array(cap));
    this.headOf = move(this.headOf, new Uint32Array(cap));
    this.firstOf = move(this.firstOf, new Float64Array(cap));
    this.cap = cap;
    this.head = 0;
  }

  /** Doubles the records' starts, each at its number's new place. */
  private growStarts(): void {
    const rcap = this.rcap * 2;
    const next = new Uint32Array(rcap);
    for (let n = this.dropped, end = this.dropped + this.records + this.marks; n < end; n++) next[n & (rcap - 1)] = this.startOf[n & (this.rcap - 1)]!;
    this.startOf = next;
    this.rcap = rcap;
  }

  /** A chunk for an entry that needs `need` bytes: a fresh standard one, or one its own size. */
  private newChunk(need: number): Buffer {
    let buf: Buffer;
    if (need <= this.chunkBytes) {
      buf = this.spare ?? Buffer.allocUnsafeSlow(this.chunkBytes);
      this.spare = undefined;
    } else {
      buf = Buffer.allocUnsafeSlow(need * 2);
    }
    // A chunk that holds no entry (the current entry began it) is replaced, not kept.
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
