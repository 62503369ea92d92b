/** One client connection and the parts it is made of; the rest of the server talks to `Connection`. */
export { Connection, type ConnectionHooks, type ConnectionKind } from './connection.js';
export type { ConnectionState } from './connection-state.js';
export { REQUEST_IDLE_MS, type Admission } from './connection-input.js';
export type { OutputGate } from './durability-hold.js';
export { FlushScheduler, type Flushable } from './flush-scheduler.js';
export { IdleCloses } from './idle-closes.js';
export { eventBytes, type Answer, type AnswerReceiver, type RequestId } from './answer.js';
