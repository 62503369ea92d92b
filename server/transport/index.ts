/**
 * Transport: where a request's bytes come in — the listening sockets and run directory, the byte
 * stream a connection reads and writes (`Transport`), and the descriptors the process may open.
 */
export { listen, type Acceptor, type InheritedListeners, type Listeners } from './listeners.js';
export { answers, listenUnix } from './unix-socket.js';
export { SOCKET_IO, socketIoMode, socketTransport, type SocketIo } from './socket-transport.js';
export { netSocketOf, type Transport } from './transport.js';
export { descriptor, restartStreamReading, stopStreamReading } from './node-internals.js';
export { chooseRundir, prepareRundir, SYSTEM_RUNDIR } from './rundir.js';
export { defaultReserve, DescriptorReserve, openFileLimit } from './descriptor-reserve.js';
