/**
 * Storage: Kafka's segmented per-partition log, and group commit for it.
 *
 * - `PartitionLog`: a directory of segments (`<base offset>.log`, `.index`,
 *   `.timeindex`) holding record batches as producers sent them, with only the
 *   base offset and leader epoch stamped. Appends are synchronous and not yet
 *   durable; `sync()` fdatasyncs, `syncAsync()` does so off the event loop.
 *   Open recovers a torn or corrupt tail.
 * - `Flusher`: coalesces `durable()` waiters from many produce requests into
 *   one `syncAsync()` per log at a time, or syncs on an interval.
 *
 * Seams: the broker gives each log its directory and options; a Raft
 * partition state machine drives append/truncateTo/deleteRecordsBefore.
 * Imports only protocol's mod.ts (for the record-batch header) and util
 * (for CRC-32C); never the broker or raft.
 */
export {
  DEFAULT_LOG_OPTIONS,
  type LogOptions,
  OffsetOutOfRangeError,
  PartitionLog,
} from "./partition_log.ts";
export {
  Flusher,
  type FlusherOptions,
  type FlushPolicy,
  type SyncableLog,
} from "./flusher.ts";
export { writeFileAtomic } from "./atomic_file.ts";
