/** systemd integration: socket activation (sd_listen_fds) and readiness (sd_notify). */
export { takeActivation, SD_LISTEN_FDS_START, type Activation } from './activation.js';
export { createNotifier, type Notifier } from './notify.js';
export { idleExitTimer } from './idle-exit.js';
