/**
 * A small file system of our own for tests that fill the disk (test/attacks/): a tmpfs mounted on a
 * fresh directory. Mounting needs root, which the tests have here and in CI; without it the test
 * fails, saying so — a disk-full test that skips itself would pass without testing anything.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

export interface Tmpfs {
  readonly dir: string;
  /** Unmounts and removes the mount point. Idempotent. */
  unmount(): void;
}

/** `mountTmpfs(size)` mounts a tmpfs of `size` (`2m`, `32m`) on a new directory. */
export function mountTmpfs(size: string): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), 'nxs-tmpfs-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`this test needs root: it mounts a ${size} tmpfs to fill (mount: ${(r.stderr || r.error?.message || '').trim()})`);
  }
  let mounted = true;
  return {
    dir,
    unmount: () => {
      if (!mounted) return;
      mounted = false;
      spawnSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `useTmpfs(size)` gives the calling test file a tmpfs, mounted before its first test and unmounted
 * after its last; the returned function is the mount (inside tests and hooks).
 */
export function useTmpfs(size: string): () => Tmpfs {
  let disk: Tmpfs | undefined;
  beforeAll(() => {
    disk = mountTmpfs(size);
  });
  afterAll(() => disk?.unmount());
  return () => disk!;
}

/**
 * `fill(path)` creates `path` and writes to it until the file system has not one byte left (big
 * writes, then single bytes: tmpfs allocates pages, so a page's tail takes bytes after a 64 KiB
 * write fails). Returns the bytes written; remove the file to give the space back.
 */
export function fill(path: string): number {
  const fd = openSync(path, 'w');
  let total = 0;
  try {
    for (const size of [64 * 1024, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        let n: number;
        try {
          n = writeSync(fd, chunk, 0, size, total);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
        total += n;
        if (n < size) break;
      }
    }
  } finally {
    closeSync(fd);
  }
  return total;
}
