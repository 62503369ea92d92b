/**
 * Public surface of protocol/xen-state/: Xen's xenstore migration stream (`docs/designs/
 * xenstore-migration.md`), pure encoding both ways. The daemon's side (what the records mean for
 * our store and connections) is server/xen-state/.
 */
export { RecordType, DOMID_INVALID } from './records.js';
export type {
  ConnectionEnd,
  ConnectionRecord,
  DomainRecord,
  GlobalQuotaRecord,
  GlobalRecord,
  NodeRecord,
  QuotaList,
  StatePerm,
  StateRecord,
  StateStream,
  TransactionRecord,
  WatchRecord,
} from './records.js';
export { pad8 } from './record-codec.js';
export { PREAMBLE_SIZE, decodeStream, encodeStream } from './stream.js';
