/**
 * Storage: Kafka's segmented per-partition log.
 *
 * - `PartitionLog`: a directory of segments (`<base offset>.log`, `.index`,
 *   `.timeindex`) holding record batches as producers sent them, with only the
 *   base offset and leader epoch stamped. Appends are synchronous and not yet
 *   durable; `sync()` fdatasyncs, `syncAsync()` does so off the event loop.
 *   Open recovers a torn or corrupt tail.
 *
 * Seams: the broker gives each log its directory and options; a Raft
 * partition state machine drives append/truncateTo/deleteRecordsBefore.
 * Imports only protocol's mod.ts (for the record-batch header) and util
 * (for CRC-32C); never the broker or raft.
 */
export {
  type CleanOptions,
  type CleanResult,
  DEFAULT_LOG_OPTIONS,
  type LogOptions,
  OffsetOutOfRangeError,
  PartitionLog,
} from "./partition_log.ts";
