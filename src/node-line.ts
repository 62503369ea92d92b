/**
 * The Node line this process runs on, and what the daemon does about it once loaded. Kept apart
 * from runtime.ts so that the daemon can ask without importing runtime.ts, which only the
 * executable may import (see there: the bundled build must keep it in the executable's own file).
 */
export const nodeMajor = Number(process.versions.node.split('.')[0]);

/** A line for the log when this Node is past its end of life, else undefined. */
export const runtimeWarning: string | undefined =
  nodeMajor === 20 ? `Node ${process.version} is past its end of life (April 2026); nxenstored is supported on Node 22 and 24` : undefined;

let onDisk = false;

/** Called by runtime.ts when an earlier start had written the compile cache already. */
export function compileCacheOnDisk(): void {
  onDisk = true;
}

/**
 * Writes what the V8 compile cache (runtime.ts) has gathered so far to disk (Node 22.10+; a no-op
 * where the cache is absent or off). Node writes it only at a normal exit otherwise, and a daemon
 * is often never stopped that way (`kill -9`, a crash, a power cut, or a live update's old process
 * that exits after handing over): its next start would compile every module again.
 *
 * Only when no earlier start had written it: Node's flush serialises every loaded module's code
 * again to compare it with the file (and then skips it, "the same"), ~10 ms of CPU just after
 * `ready`, where the first request of a socket-activated start is waiting (issue 16: measured
 * 2.45x -> 2.23x of `node -e 0` on Node 24, 2.32x -> 2.18x on 22). With the cache on disk, what a
 * start changed is written at its normal exit, as Node does.
 */
export function flushCompileCache(): void {
  if (onDisk) return;
  try {
    (process.getBuiltinModule('node:module') as { flushCompileCache?: () => void }).flushCompileCache?.();
  } catch {
    /* a cache that cannot be written is no error */
  }
}
