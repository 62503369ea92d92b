import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The files of a data directory:
 *   snapshot         the newest complete snapshot (store/snapshot.ts format)
 *   snapshot.prev    the one before it, the fallback when `snapshot` is damaged
 *   snapshot.tmp     a snapshot being written (ignored, overwritten)
 *   wal-<G>          log segments; `wal-<G>` holds the records from generation G on, until the next
 *                    segment's first generation. G is zero-padded so names sort by generation.
 */
export const SNAPSHOT = 'snapshot';
export const SNAPSHOT_PREV = 'snapshot.prev';
const SNAPSHOT_TMP = 'snapshot.tmp';
const SEGMENT = /^wal-(\d{16})$/;

export function segmentName(firstGeneration: number): string {
  return `wal-${String(firstGeneration).padStart(16, '0')}`;
}

export interface Segment {
  readonly name: string;
  readonly first: number;
}

/** `segments(dir)` lists the log segments in generation order. */
export function segments(dir: string): Segment[] {
  const out: Segment[] = [];
  for (const name of readdirSync(dir)) {
    const m = SEGMENT.exec(name);
    if (m) out.push({ name, first: Number(m[1]) });
  }
  return out.sort((a, b) => a.first - b.first);
}

export function prepareDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** `readIfExists(path)` is the file's bytes, or undefined when there is no such file. */
export function readIfExists(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** `readHead(path, n)` is the file's first `n` bytes (fewer if shorter), or undefined if absent. */
export function readHead(path: string, n: number): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const buf = Buffer.alloc(n);
    return buf.subarray(0, readSync(fd, buf, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * `fsyncDir(dir)`: a rename or a new file is durable only once its directory entry is (rename(2)
 * is atomic, not durable; ext4's and xfs's documentation ask for the directory fsync).
 */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * `writeSnapshotFile(dir, bytes)` installs a new snapshot: written to `snapshot.tmp` and fsynced,
 * the current one renamed to `snapshot.prev`, the new one renamed into place, the directory
 * fsynced. A crash at any point leaves `snapshot` or `snapshot.prev` (or both) complete.
 */
export async function writeSnapshotFile(dir: string, bytes: Buffer): Promise<void> {
  const tmp = join(dir, SNAPSHOT_TMP);
  // fs/promises taken when first used (issue 16: loading it costs a cold start ~2 ms).
  const fh = await process.getBuiltinModule('node:fs/promises').open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } catch (e) {
    // A half-written snapshot on a full disk would keep the space the log needs to resume.
    await fh.close();
    rmSync(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    renameSync(join(dir, SNAPSHOT), join(dir, SNAPSHOT_PREV));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  renameSync(tmp, join(dir, SNAPSHOT));
  fsyncDir(dir);
}

/** Synchronous variant for tests and tools that prepare a data directory. */
export function writeSnapshotFileSync(dir: string, bytes: Buffer): void {
  prepareDataDir(dir);
  writeFileSync(join(dir, SNAPSHOT), bytes, { mode: 0o600 });
  fsyncDir(dir);
}
