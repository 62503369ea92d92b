import { closeSync, fstatSync, openSync, readSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { SnapshotSource, XsError } from '../../store/index.js';

/** Bytes read per turn of the event loop when the whole file is read in the background. */
const LOAD_SLICE = 1 << 20;

/**
 * A snapshot file as the store reads it (store/snapshot-format.ts `SnapshotSource`, issue 16): kept
 * open and read with pread where a request needs it, so that a start reads the head and what the
 * first requests touch, not the whole file. The descriptor keeps the file's inode: a compaction
 * renaming another snapshot over the name does not change what is read. `loadAll` reads the rest
 * in the background, into memory, and closes the descriptor; reads come from memory after.
 *
 * Damage found after the store was opened (`damaged`): the file is renamed to
 * `snapshot.damaged` (if the name it had still holds it), so that the next start falls back to
 * `snapshot.prev` and the log, as it does today for a snapshot damaged at start, and the owner's
 * handler (the journal's: the daemon exits) is told.
 */
export class SnapshotFile implements SnapshotSource {
  readonly size: number;
  private fd: number | undefined;
  private readonly ino: number;
  private bytes: Buffer | undefined;
  private loading: Promise<void> | undefined;
  /** Told of damage (after the file was set aside); set by the journal once the daemon serves. */
  onDamage: ((e: XsError) => void) | undefined;
  /** Whether damage was found: recovery then tries the previous snapshot. */
  isDamaged = false;

  private constructor(
    private readonly dir: string,
    readonly name: string,
    fd: number,
  ) {
    this.fd = fd;
    const st = fstatSync(fd);
    this.size = st.size;
    this.ino = st.ino;
  }

  /** `SnapshotFile.open(dir, name)`, or undefined when there is no such file. */
  static open(dir: string, name: string): SnapshotFile | undefined {
    let fd: number;
    try {
      fd = openSync(join(dir, name), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    return new SnapshotFile(dir, name, fd);
  }

  read(at: number, length: number): Buffer {
    const end = Math.min(this.size, at + length);
    if (this.bytes !== undefined) return this.bytes.subarray(at, end);
    const buf = Buffer.allocUnsafe(Math.max(0, end - at));
    let got = 0;
    while (got < buf.length) {
      const n = readSync(this.fd!, buf, got, buf.length - got, at + got);
      if (n === 0) break; // the file shrank under us: the caller sees a short read, "truncated"
      got += n;
    }
    return buf.subarray(0, got);
  }

  damaged(e: XsError): void {
    if (!this.isDamaged) {
      this.isDamaged = true;
      this.setAside();
    }
    this.onDamage?.(e);
  }

  /** Renames the file to `snapshot.damaged` under whichever name still holds this inode. */
  private setAside(): void {
    for (const name of new Set([this.name, 'snapshot', 'snapshot.prev'])) {
      const path = join(this.dir, name);
      try {
        if (statSync(path).ino !== this.ino) continue;
        renameSync(path, join(this.dir, 'snapshot.damaged'));
        return;
      } catch {
        // gone, or not ours: try the next name
      }
    }
  }

  /**
   * `loadAll()` reads the whole file into memory, a slice per turn of the event loop, then closes
   * the descriptor; idempotent. Requests meanwhile read with pread, as before.
   */
  loadAll(): Promise<void> {
    this.loading ??= (async () => {
      const fd = this.fd;
      if (fd === undefined) return;
      const all = Buffer.allocUnsafe(this.size);
      for (let at = 0; at < this.size; ) {
        const n = readSync(fd, all, at, Math.min(LOAD_SLICE, this.size - at), at);
        if (n === 0) {
          // The file shrank under us: what is missing reads as a short read, "truncated".
          this.bytes = all.subarray(0, at);
          break;
        }
        at += n;
        await new Promise<void>((r) => setImmediate(r));
      }
      this.bytes ??= all;
      this.close();
    })();
    return this.loading;
  }

  /** Closes the descriptor (reads after that come from memory, or are empty). */
  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    this.bytes ??= Buffer.alloc(0);
  }
}
