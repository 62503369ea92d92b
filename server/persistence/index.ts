/** Persistence: the write-ahead log, snapshots and crash recovery of `--data-dir`. */
export { COMPACT_AFTER_DEFAULT, encodeInSlices, Journal, recover, SYNC_MODES, type JournalOptions, type Recovery, type SyncMode } from './journal.js';
export { segmentName, segments, writeSnapshotFileSync, SNAPSHOT, SNAPSHOT_PREV } from './data-dir.js';
export { frameRecord, scanRecords } from './wal.js';
export { HistoryLog, HISTORY_RETENTION_DEFAULT, type HistoryRetention } from './history-log.js';
export { lockDataDir, LOCK } from './data-dir-lock.js';
export { openSegment, SegmentFile, type OpenSegment, type SegmentHandle } from './segment-file.js';
