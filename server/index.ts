/** The server: sockets, connections, dispatch, watches and domains around the store. */
export { Daemon, type DaemonOptions } from './daemon.js';
export { listen, type InheritedListeners, type Listeners } from './listeners.js';
export { SOCKET_IO, socketIoMode, type SocketIo } from './socket-transport.js';
export { answers } from './unix-socket.js';
export { chooseRundir, prepareRundir, SYSTEM_RUNDIR } from './rundir.js';
export { createLogger, type LogFormat } from './logger.js';
export { Quotas, QUOTA_NAMES } from './quotas.js';
export { HANDLERS } from './handlers/index.js';
export {
  ANONYMOUS_ACCESS,
  startGateway,
  parseListenAddress,
  type AnonymousAccess,
  type GatewayHandle,
  type GatewaySettings,
  type ListenAddress,
} from './gateway/index.js';
