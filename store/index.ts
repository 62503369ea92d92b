/**
 * The store engine: a persistent trie with Xen's paths, permissions, quotas and transactions.
 * Pure: no I/O, no logger, no clock. The server holds the live `Store` and calls these.
 */
export { XsError, XS_ERROR_CODES, isXsErrorCode, type XsErrorCode } from '../protocol/index.js';
export { DOM0, guest, type Caller } from './caller.js';
export { DEFAULT_LIMITS, LIMIT_NAMES, type Limits, type LimitName } from './limits.js';
export {
  ROOT,
  SPECIAL_NAMES,
  homeOf,
  isAncestorOrSelf,
  isSpecialName,
  joinSegs,
  parseNodePath,
  parseWatchPath,
  relativeTo,
  type NodePath,
  type SpecialName,
  type SpecialPath,
} from './path.js';
export {
  DOM0_ONLY,
  Need,
  check,
  formatPerms,
  has,
  lacks,
  parsePerms,
  rights,
  samePerms,
  type AccessLetter,
  type PermEntry,
  type Perms,
} from './perms.js';
export { XsNode } from './node.js';
export { KEPT_SORTED } from './child-names.js';
export { ImmMap } from './imm-map.js';
export { lookup } from './tree.js';
export { owned, type Quota } from './quota.js';
export { size as subtreeSize } from './subtree.js';
export { fromNodeList, toNodeList, type ListedNode } from './node-list.js';
export { createStore, fromRoot, advance, type Store, type SpecialPerms } from './store.js';
export { OK, isUpdate, requestBytes, LOGGED_REQUEST_OVERHEAD, type Change, type StoreOp, type StoreReply, type StoreRequest } from './request.js';
export { execute, type Outcome, type Touched } from './operations.js';
export { Transaction, commit, type CommitPath, type CommitResult } from './transaction.js';
export { History, DEFAULT_HISTORY, type HistoryOptions, type Oldest, type Rebuild } from './history.js';
export {
  INTERNAL,
  REQUESTS_KEPT,
  type ChangeKind,
  type ConnectionName,
  type HistoryChange,
  type HistoryRecord,
  type RecordMeta,
  type RequestSummary,
  type Version,
  type Who,
} from './history-record.js';
export { decodeRecord, encodeRecord, generationAndTime } from './history-codec.js';
export { toEnd, type Steps } from './steps.js';
export {
  QUERY_LIMITS,
  blameOf,
  diffOf,
  generationOf,
  logOf,
  nodeAt,
  parseMoment,
  treeAt,
  versionAt,
  type BlameAnswer,
  type BlameLine,
  type DiffAnswer,
  type LogAnswer,
  type LogEntry,
  type LogFilter,
  type Moment,
  type NodeState,
} from './history-query.js';
export { diff, type Difference } from './diff.js';
export { forgetDomain } from './domain-cleanup.js';
export { checkStore } from './check.js';
export {
  encodeSnapshot,
  decodeSnapshot,
  openSnapshot,
  bufferSource,
  snapshotGeneration,
  snapshotSteps,
  type SnapshotSource,
  type OpenedSnapshot,
} from './snapshot.js';
export { crc32 } from './crc32.js';
export { deltaOf, applyDeltas, applySpan, Replay, type Delta, type DeltaOp } from './delta.js';
export { encodeDelta, decodeDelta, DeltaDecoder } from './delta-codec.js';
