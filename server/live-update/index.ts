/** Live update (Xen's `xenstore-control live-update`): hand the running daemon to a new process. */
import type { TakenOver, TakeOverOptions } from './take-over.js';

export { LiveUpdater, STATE_FLAG, STATE_FILE, type LiveUpdaterOptions } from './live-updater.js';
export type { TakenOver, TakeOverOptions } from './take-over.js';
export { drainOutput } from './drain-output.js';
export { parseLiveUpdate, DEFAULT_TIMEOUT_SECONDS, type LiveUpdateCommand } from './command.js';

/**
 * `takeOver(file, options)`: take-over.ts `takeOver`, loaded when a process starts as a live
 * update's next one (it reads the state with zod, which no other start needs: issue 16).
 */
export async function takeOver(file: string, options: TakeOverOptions): Promise<TakenOver> {
  const m = await import('./take-over.js');
  return m.takeOver(file, options);
}
