/**
 * What the kernel says about a process, for tests that bound the daemon's resources.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** `vmRss(pid)` is the process's resident set in bytes (`VmRSS` of `/proc/<pid>/status`). */
export function vmRss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  if (m === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** `openFiles(pid)` is how many descriptors the process holds. */
export function openFiles(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
