import { readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepareDataDir } from './data-dir.js';

/** `<data-dir>/lock`: the pid of the daemon that writes the directory. */
export const LOCK = 'lock';

/**
 * One daemon per data directory. Two daemons appending to one log and renaming each other's
 * snapshots would lose acknowledged writes, so the second one refuses to start and names the
 * first. Node has no flock(2), so the lock is a pid file checked for liveness: a lock left by a
 * crashed daemon (`kill -9`, power loss) names a pid that is gone, or that now runs something
 * else, and is taken over. A live update's next process takes the lock from its predecessor
 * (`handedOverBy`), which exits without removing it.
 *
 * `lockDataDir(dir, handedOverBy?)` takes the lock (making the directory if need be) and returns the
 * function that releases it on a clean stop; it throws an Error naming the holder otherwise.
 */
export function lockDataDir(dir: string, handedOverBy?: number): () => void {
  prepareDataDir(dir);
  const path = join(dir, LOCK);
  const holder = readHolder(path);
  if (holder !== undefined && holder !== process.pid && holder !== handedOverBy && isDaemon(holder)) {
    throw new Error(`data directory ${dir} is in use by process ${holder} (${path}); one daemon per data directory`);
  }
  // Written whole, then renamed: a reader never sees half a pid.
  try {
    writeFileSync(`${path}.tmp`, `${process.pid}\n`, { mode: 0o644 });
    renameSync(`${path}.tmp`, path);
  } catch (e) {
    if (!noSpace(e)) throw e;
    // A full disk (issue 17) must not keep the daemon from starting to serve reads, and a pid
    // file needs a data block. A symbolic link whose target is the pid needs none (ext4 and tmpfs
    // keep a short target in the inode), and is renamed into place just as atomically.
    rmSync(`${path}.tmp`, { force: true });
    symlinkSync(String(process.pid), `${path}.tmp`);
    renameSync(`${path}.tmp`, path);
  }
  return () => {
    if (readHolder(path) === process.pid) unlinkSync(path);
  };
}

function readHolder(path: string): number | undefined {
  try {
    const pid = Number(readLockText(path).trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The pid's text: a file's contents, or a symbolic link's target (written on a full disk). */
function readLockText(path: string): string {
  try {
    return readlinkSync(path, 'latin1');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
    return readFileSync(path, 'latin1');
  }
}

/** True when `pid` runs and is a node process (a reused pid of another program is not a holder). */
function isDaemon(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return /node|nxenstored/.test(readFileSync(`/proc/${pid}/cmdline`, 'latin1'));
  } catch {
    return true; // alive, and we cannot tell what it is: assume the worst
  }
}

function noSpace(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
