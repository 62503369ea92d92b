/** The server: sockets, connections, dispatch, watches and domains around the store. */
export { Daemon, type DaemonOptions } from './daemon.js';
export { listen, type InheritedListeners, type Listeners } from './transport/index.js';
export { SOCKET_IO, socketIoMode, type SocketIo } from './transport/index.js';
export { answers } from './transport/index.js';
export { chooseRundir, prepareRundir, SYSTEM_RUNDIR } from './transport/index.js';
export { createLogger, DeferredLog, type Log, type LogFormat } from './logger.js';
export { Quotas, QUOTA_NAMES } from './quotas/index.js';
export { HANDLERS } from './dispatch/index.js';
export {
  ANONYMOUS_ACCESS,
  startGateway,
  parseListenAddress,
  type AnonymousAccess,
  type GatewayHandle,
  type GatewaySettings,
  type ListenAddress,
} from './gateway/index.js';
