import { accessSync, constants, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Where Xen's tools look for the daemon (`XEN_RUN_STORED`, spec §1.1). */
export const SYSTEM_RUNDIR = '/run/xenstored';

/**
 * `chooseRundir(explicit, env)` picks the run directory: `--rundir`, else `XENSTORED_RUNDIR`, else
 * `/run/xenstored` when we may create or write it (root on a Xen host), else a directory of our own
 * so that a newcomer needs no root: `$XDG_RUNTIME_DIR/xenstored`, or `./run/xenstored`.
 */
export function chooseRundir(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return resolve(explicit);
  if (env['XENSTORED_RUNDIR']) return resolve(env['XENSTORED_RUNDIR']);
  if (usable(SYSTEM_RUNDIR)) return SYSTEM_RUNDIR;
  const xdg = env['XDG_RUNTIME_DIR'];
  if (xdg && usable(join(xdg, 'xenstored'))) return join(xdg, 'xenstored');
  return resolve('run', 'xenstored');
}

function usable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** `prepareRundir(dir)` creates the directory (mode 0700, as oxenstored does) if needed. */
export function prepareRundir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}
