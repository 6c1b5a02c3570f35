/**
 * Durability for every Raft group of a host: one write-ahead log (`Wal`)
 * with CRC-checked records, group commit (one fdatasync per loop turn for all
 * groups), segment files deleted (or kept for reuse) after compaction and
 * torn-tail truncation on open; and `WalStorage`, the per-group RaftStorage
 * on top of it.
 *
 * Also exports raft's binary encoding of entries and snapshots, which the
 * transport reuses. Imports only the raft core, util and the CRC-32C of
 * protocol (a leaf); it does no networking.
 */
export {
  ByteReader,
  ByteWriter,
  DecodeError,
  entriesBytes,
  readEntries,
  readHardState,
  readSnapshot,
  writeEntries,
  writeHardState,
  writeSnapshot,
} from "./binary.ts";
export {
  type PersistableReady,
  type RecoveredGroup,
  Wal,
  WalCorruptionError,
  type WalOptions,
} from "./wal.ts";
export { WalStorage } from "./wal_storage.ts";
