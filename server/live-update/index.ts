/** Live update (Xen's `xenstore-control live-update`): hand the running daemon to a new process. */
export { LiveUpdater, STATE_FLAG, STATE_FILE, type LiveUpdaterOptions } from './live-updater.js';
export { takeOver, PID_FILE, type TakenOver, type TakeOverOptions } from './take-over.js';
export { parseLiveUpdate, DEFAULT_TIMEOUT_SECONDS, type LiveUpdateCommand } from './command.js';
