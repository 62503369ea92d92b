import { close, fdatasync, fstat, ftruncate, open, writev } from 'node:fs';

/** The calls a log segment makes on its file (a `FileHandle`'s): tests inject a handle that fails. */
export interface SegmentHandle {
  writev(buffers: readonly Buffer[], position: number): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  truncate(len: number): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

/** `openSegment(path, flags)` opens a segment: 'a' never truncates (the first one), 'w' starts it empty. */
export type OpenSegment = (path: string, flags: 'a' | 'w') => Promise<SegmentHandle>;

export const openSegment: OpenSegment = (path, flags) =>
  new Promise((resolve, reject) => open(path, flags, 0o600, (e, fd) => (e ? reject(e) : resolve(new SegmentDescriptor(fd)))));

/**
 * A segment's file by its descriptor, through node:fs's callbacks: the calls of a `FileHandle`,
 * without loading fs/promises (and the readline, fs.Dir and watcher modules it loads) when the
 * log opens at start (issue 16: ~2 ms of a cold start's CPU on Node 24). As a `FileHandle` does,
 * `close()` waits for the calls still running: a descriptor closed under a running writev(2)
 * could be reused by the next open and written to.
 */
class SegmentDescriptor implements SegmentHandle {
  private readonly running = new Set<Promise<unknown>>();

  constructor(private readonly fd: number) {}

  writev(buffers: readonly Buffer[], position: number): Promise<{ bytesWritten: number }> {
    return this.call((done) => writev(this.fd, buffers, position, (e, bytesWritten) => done(e, { bytesWritten })));
  }

  datasync(): Promise<void> {
    return this.call((done) => fdatasync(this.fd, (e) => done(e, undefined)));
  }

  truncate(len: number): Promise<void> {
    return this.call((done) => ftruncate(this.fd, len, (e) => done(e, undefined)));
  }

  stat(): Promise<{ size: number }> {
    return this.call((done) => fstat(this.fd, (e, st) => done(e, st)));
  }

  async close(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
    return new Promise((resolve, reject) => close(this.fd, (e) => (e ? reject(e) : resolve())));
  }

  private call<T>(start: (done: (e: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
    const p = new Promise<T>((resolve, reject) => start((e, value) => (e ? reject(e) : resolve(value))));
    this.running.add(p);
    const forget = () => void this.running.delete(p);
    p.then(forget, forget);
    return p;
  }
}

/**
 * The log segment being appended to. `size` is where its good records end: everything before it
 * was written whole (and synced, when asked), nothing after it counts.
 *
 * `append(batch, sync)` writes every byte of the batch or fails. writev(2) may write fewer bytes
 * than asked and still succeed: on a full file system (it wrote 1,048,576 of 1,400,000, issue
 * 17), and past IOV_MAX buffers, where libuv writes the first 1024 only. The rest is written in
 * the next call; a call that writes nothing, or throws (ENOSPC, EIO), fails the batch.
 *
 * A failed batch is cut off (ftruncate to `size`) before `append` throws, and nothing is appended
 * while a cut has not succeeded: the failed batch holds whole, checksummed records of commits that
 * were never acknowledged, and a good record written after them would make recovery replay them
 * (or, torn, refuse to start). Cutting also makes a failed fdatasync safe to follow with new
 * writes (PostgreSQL's "fsyncgate": after a failed fsync the kernel may have dropped the dirty
 * pages and will not report it again): the pages of the failed batch are gone, the next batch is
 * written afresh from memory, and its own fdatasync reports its own errors.
 */
export class SegmentFile {
  private torn = false;

  private constructor(
    private readonly fh: SegmentHandle,
    public size: number,
  ) {}

  static async open(path: string, flags: 'a' | 'w', openFile: OpenSegment = openSegment): Promise<SegmentFile> {
    const fh = await openFile(path, flags);
    try {
      return new SegmentFile(fh, (await fh.stat()).size);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** `append(batch, sync)` writes the whole batch at `size` (and fdatasyncs it), or cuts it off and throws. */
  async append(batch: readonly Buffer[], sync: boolean): Promise<void> {
    if (this.torn) await this.cut();
    let at = this.size;
    try {
      let rest = batch;
      while (rest.length > 0) {
        const { bytesWritten } = await this.fh.writev(rest, at);
        if (bytesWritten <= 0) throw Object.assign(new Error('writev made no progress'), { code: 'EIO' });
        at += bytesWritten;
        rest = after(rest, bytesWritten);
      }
      if (sync) await this.fh.datasync();
    } catch (e) {
      this.torn = true;
      await this.cut().catch(() => undefined); // retried before the next append
      throw e;
    }
    this.size = at;
  }

  /** `sync()` is fdatasync (`--sync batch`'s timer). */
  sync(): Promise<void> {
    return this.fh.datasync();
  }

  close(): Promise<void> {
    return this.fh.close();
  }

  private async cut(): Promise<void> {
    await this.fh.truncate(this.size);
    this.torn = false;
  }
}

/** The buffers that remain of `batch` once its first `n` bytes are written (no copy). */
function after(batch: readonly Buffer[], n: number): readonly Buffer[] {
  let i = 0;
  while (i < batch.length && n >= batch[i]!.length) n -= batch[i++]!.length;
  if (i === batch.length) return [];
  const rest = batch.slice(i);
  if (n > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}
