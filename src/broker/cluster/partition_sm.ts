/**
 * The state machine of one partition's Raft group: committed entries carry
 * produced record sets, and applying one appends it to the partition log
 * through PartitionManager.append, so every replica assigns the same
 * offsets and makes the same idempotence calls. DeleteRecords is an entry
 * too, so every replica (and one replaying its WAL) moves its log start at
 * the same point among the appends.
 *
 * The Raft WAL is what makes an entry durable; the partition log is synced
 * in the background as data piles up, and a snapshot, whose content is just
 * the log's offsets at that index, names the state as of the last finished
 * sync (durableSnapshot), so the host never waits for one. After a crash
 * the log is cut back to the last snapshot's end (or emptied, without one)
 * and the host replays the entries after it: the log never holds an offset
 * the WAL cannot rebuild.
 */
import {
  completeBatchSize,
  readBatchHeader,
  validatedRecordSetCrc32c,
} from "../../protocol/mod.ts";
import { assert, noteCrc32c } from "../../util/mod.ts";
import type { Entry, StateMachine } from "../../raft/mod.ts";
import type {
  AppendOutcome,
  Partition,
  PartitionManager,
} from "../partitions.ts";

/**
 * A produce entry is the record set itself, its baseOffset zeroed, so its
 * first byte is 0; the other kinds start with their kind byte.
 */
const ENTRY_RECORDS = 0;
/** A kind byte, then one record set (written before ENTRY_RECORDS). */
const ENTRY_PRODUCE = 1;
/** Changes nothing; a leader proposes one to learn it has applied all. */
const ENTRY_BARRIER = 2;
/** Several record sets merged by the leader's ProduceBatcher. */
const ENTRY_PRODUCE_SETS = 3;
/** A kind byte, then the int64 offset the log start moves up to. */
const ENTRY_DELETE_RECORDS = 4;
const DELETE_RECORDS_BYTES = 1 + 8;
/** Kind byte and record set count of an ENTRY_PRODUCE_SETS entry. */
const SETS_HEADER_BYTES = 1 + 4;
/** Each set's length prefix in an ENTRY_PRODUCE_SETS entry. */
const SET_LENGTH_BYTES = 4;
/**
 * Log bytes appended since the last sync that start one in the background,
 * so the sync a snapshot needs (on the event loop) finds little left.
 */
const BACKGROUND_SYNC_BYTES = 4 * 1024 * 1024;
const SNAPSHOT_VERSION = 1;
const SNAPSHOT_BYTES = 1 + 8 + 8 + 8;

/**
 * A produce entry for one record set: the set itself, not a copy. Its
 * first batch's baseOffset is zeroed in place (producers send 0 there, and
 * every replica stamps the real offset when it appends; the batch CRC does
 * not cover it), so the entry starts with ENTRY_RECORDS. A fresh 64 KiB
 * buffer per produce, whose pages fault in, cost a single broker half its
 * throughput. The caller hands the set over: it must not change it after.
 * Every batch's CRC must have been checked (validateRecordSet): the WAL's
 * CRC of the entry is derived from them instead of read again.
 */
export function encodeProduceEntry(records: Uint8Array): Uint8Array {
  assert(
    records.length >= 8,
    "A record set starts with an 8-byte baseOffset",
    { bytes: records.length },
  );
  records.fill(0, 0, 8);
  noteCrc32c(records, validatedRecordSetCrc32c(records));
  return records;
}

/**
 * The entry for record sets merged by one leader, applied in this order:
 * a kind byte, a uint32 count, then each set behind its uint32 length. One
 * set is written as a plain produce entry, which is 8 bytes shorter.
 */
export function encodeProduceEntries(sets: readonly Uint8Array[]): Uint8Array {
  assert(sets.length > 0, "A produce entry needs a record set", {});
  if (sets.length === 1) return encodeProduceEntry(sets[0]!);
  let bytes = SETS_HEADER_BYTES;
  for (const set of sets) bytes += SET_LENGTH_BYTES + set.length;
  const out = new Uint8Array(bytes);
  const v = new DataView(out.buffer);
  out[0] = ENTRY_PRODUCE_SETS;
  v.setUint32(1, sets.length);
  let pos = SETS_HEADER_BYTES;
  for (const set of sets) {
    v.setUint32(pos, set.length);
    out.set(set, pos + SET_LENGTH_BYTES);
    pos += SET_LENGTH_BYTES + set.length;
  }
  return out;
}

/**
 * The record sets of a produce entry of either kind, as views into `data`;
 * null for entries of other kinds. A malformed entry is a bug (its CRC in
 * the WAL held), so it fails an assertion.
 */
export function decodeProduceEntry(data: Uint8Array): Uint8Array[] | null {
  if (data.length === 0) return null;
  if (data[0] === ENTRY_RECORDS) return [data];
  if (data[0] === ENTRY_PRODUCE) return [data.subarray(1)];
  if (data[0] !== ENTRY_PRODUCE_SETS) return null;
  assert(
    data.length >= SETS_HEADER_BYTES,
    "Merged produce entry shorter than its header",
    { bytes: data.length },
  );
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = v.getUint32(1);
  const sets: Uint8Array[] = [];
  let pos = SETS_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    assert(
      pos + SET_LENGTH_BYTES <= data.length,
      "Merged produce entry ends inside a length prefix",
      { bytes: data.length, set: i, count },
    );
    const end = pos + SET_LENGTH_BYTES + v.getUint32(pos);
    assert(
      end <= data.length,
      "Merged produce entry ends inside a record set",
      { bytes: data.length, set: i, count, end },
    );
    sets.push(data.subarray(pos + SET_LENGTH_BYTES, end));
    pos = end;
  }
  assert(
    pos === data.length,
    "Merged produce entry has bytes after its last record set",
    { bytes: data.length, count, end: pos },
  );
  return sets;
}

export function encodeBarrierEntry(): Uint8Array {
  return Uint8Array.of(ENTRY_BARRIER);
}

/**
 * The entry that moves the log start up to `beforeOffset`, which the leader
 * checked against its high watermark; applying it answers the new start.
 */
export function encodeDeleteRecordsEntry(beforeOffset: bigint): Uint8Array {
  assert(beforeOffset >= 0n, "DeleteRecords needs an offset >= 0", {
    beforeOffset,
  });
  const out = new Uint8Array(DELETE_RECORDS_BYTES);
  out[0] = ENTRY_DELETE_RECORDS;
  new DataView(out.buffer).setBigInt64(1, beforeOffset);
  return out;
}

function decodeDeleteRecordsEntry(data: Uint8Array): bigint | null {
  if (data[0] !== ENTRY_DELETE_RECORDS) return null;
  assert(
    data.length === DELETE_RECORDS_BYTES,
    "DeleteRecords entry of the wrong length",
    { bytes: data.length },
  );
  return new DataView(data.buffer, data.byteOffset, data.byteLength)
    .getBigInt64(1);
}

/**
 * What applying one entry answers its proposer: one outcome per record set
 * of a produce entry, the new log start for a DeleteRecords entry, null for
 * other entries and for entries parked behind a gap.
 */
export type PartitionApplyResult = AppendOutcome[] | bigint | null;

export interface PartitionSnapshot {
  /** Raft index of the last entry applied when the snapshot was taken. */
  index: number;
  logStartOffset: bigint;
  logEndOffset: bigint;
}

export function encodePartitionSnapshot(s: PartitionSnapshot): Uint8Array {
  const out = new Uint8Array(SNAPSHOT_BYTES);
  const v = new DataView(out.buffer);
  v.setUint8(0, SNAPSHOT_VERSION);
  v.setBigUint64(1, BigInt(s.index));
  v.setBigInt64(9, s.logStartOffset);
  v.setBigInt64(17, s.logEndOffset);
  return out;
}

export function decodePartitionSnapshot(data: Uint8Array): PartitionSnapshot {
  if (data.length !== SNAPSHOT_BYTES || data[0] !== SNAPSHOT_VERSION) {
    throw new RangeError(
      `Partition snapshot of ${data.length} bytes (version ${
        data[0]
      }) is not a version ${SNAPSHOT_VERSION} snapshot`,
    );
  }
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return {
    index: Number(v.getBigUint64(1)),
    logStartOffset: v.getBigInt64(9),
    logEndOffset: v.getBigInt64(17),
  };
}

/** Raised when a replica must fetch log data it was sent only a summary of. */
export class PartitionGapError extends Error {
  override name = "PartitionGapError";
}

export class PartitionStateMachine implements StateMachine {
  readonly #partition: Partition;
  readonly #manager: PartitionManager;
  readonly #onGap: (missingFrom: bigint, missingTo: bigint) => void;
  /** False until the log has been cut back to what Raft can replay. */
  #aligned = false;
  #applied = 0;
  /**
   * Set while the log lacks offsets a snapshot named: entries applied
   * meanwhile wait here, since their offsets come after the missing ones.
   */
  #gap: { to: bigint; pending: Entry[] } | null = null;
  /** Bytes appended since the last background sync began. */
  #unsyncedBytes = 0;
  #syncing = false;
  /** A background sync's failure, raised by the next snapshot. */
  #syncError: unknown = null;
  /** The state as of the latest finished background sync: durableSnapshot's answer. */
  #durable: PartitionSnapshot | null = null;
  /** Moves when the log is cut back or restored: a sync begun before then proves nothing. */
  #epoch = 0;

  constructor(
    partition: Partition,
    opts: {
      manager: PartitionManager;
      /** A snapshot named offsets this replica's log lacks. */
      onGap: (missingFrom: bigint, missingTo: bigint) => void;
    },
  ) {
    this.#partition = partition;
    this.#manager = opts.manager;
    this.#onGap = opts.onGap;
  }

  get partition(): Partition {
    return this.#partition;
  }

  /** Without a snapshot, Raft replays the whole log: start it empty. */
  #alignWithoutSnapshot(): void {
    if (this.#aligned) return;
    this.#aligned = true;
    const log = this.#partition.log;
    if (log.logEndOffset > 0n || log.logStartOffset > 0n) {
      this.#epoch++;
      this.#manager.truncate(this.#partition, 0n);
    }
  }

  /** The offset the log must reach before applying resumes, if any. */
  get gapEnd(): bigint | null {
    return this.#gap?.to ?? null;
  }

  /**
   * Appends record batches copied from another replica's log to close the
   * gap; batches at or past its end are left out (Raft entries bring them).
   * Returns true once the gap is closed and the waiting entries applied.
   */
  fillGap(records: Uint8Array): boolean {
    const gap = this.#gap;
    if (gap === null) return true;
    // Batch by batch: each passed max.message.bytes on its way in, while
    // a fetched run of them may not.
    for (let pos = 0;;) {
      const size = completeBatchSize(records, pos);
      if (size === 0) break;
      if (readBatchHeader(records, pos).baseOffset >= gap.to) {
        // The source's log was compacted: nothing is left below gap.to.
        this.#partition.log.skipTo(gap.to);
        break;
      }
      const outcome = this.#manager.append(
        this.#partition,
        records.subarray(pos, pos + size),
        { copied: true },
      );
      if (!outcome.ok) throw outcome.error;
      pos += size;
    }
    if (this.#partition.log.logEndOffset < gap.to) return false;
    this.#gap = null;
    this.#applyNow(gap.pending);
    return true;
  }

  /** One result per entry (PartitionApplyResult). */
  apply(entries: Entry[]): PartitionApplyResult[] {
    this.#alignWithoutSnapshot();
    if (this.#gap !== null) {
      this.#gap.pending.push(...entries);
      this.#applied = entries.at(-1)?.index ?? this.#applied;
      return entries.map(() => null);
    }
    return this.#applyNow(entries);
  }

  #applyNow(entries: Entry[]): PartitionApplyResult[] {
    const results = entries.map((entry): PartitionApplyResult => {
      this.#applied = entry.index;
      const deleteBefore = decodeDeleteRecordsEntry(entry.data);
      if (deleteBefore !== null) return this.#deleteRecordsBefore(deleteBefore);
      const sets = decodeProduceEntry(entry.data);
      // The leader checked every batch's CRC before proposing it, and since
      // then the WAL's own record CRC has guarded the entry: checking the
      // batches again on every replica cost a tenth of a broker's CPU.
      // Each set is appended on its own, so a refused one (a duplicate
      // sequence, too large) refuses only itself, as it would unmerged.
      return sets?.map((records) => {
        this.#unsyncedBytes += records.length;
        return this.#manager.append(this.#partition, records, {
          leaderEpoch: entry.term,
          crcChecked: true,
        });
      }) ?? null;
    });
    this.#partition.advanceHighWatermark(this.#partition.log.logEndOffset);
    if (this.#unsyncedBytes >= BACKGROUND_SYNC_BYTES) this.#syncInBackground();
    return results;
  }

  #deleteRecordsBefore(offset: bigint): bigint {
    const log = this.#partition.log;
    // The leader checked the offset against its high watermark, which is
    // the end of the appends applied before this entry on every replica.
    assert(
      offset <= log.logEndOffset,
      "DeleteRecords entry beyond the log end",
      {
        topic: this.#partition.topic,
        partition: this.#partition.index,
        offset,
      },
    );
    this.#manager.deleteRecordsBefore(this.#partition, offset);
    return log.logStartOffset;
  }

  /** Once it finishes, the state as of its start is durableSnapshot's answer. */
  #syncInBackground(): void {
    if (this.#syncing) return;
    this.#syncing = true;
    this.#unsyncedBytes = 0;
    const log = this.#partition.log;
    const epoch = this.#epoch;
    // Behind a gap the log lacks what applied entries need: no snapshot of it.
    const state = this.#gap === null ? this.#state() : null;
    log.syncAsync().then(() => {
      if (state === null || epoch !== this.#epoch) return;
      if (state.index > (this.#durable?.index ?? -1)) this.#durable = state;
    }, (err) => {
      this.#syncError ??= err;
    }).finally(() => (this.#syncing = false));
  }

  #state(): PartitionSnapshot {
    const log = this.#partition.log;
    return {
      index: this.#applied,
      logStartOffset: log.logStartOffset,
      logEndOffset: log.logEndOffset,
    };
  }

  /**
   * While a gap is open the log lacks offsets below entries already
   * applied (parked in the gap): a snapshot now would let the host drop
   * those entries from its log, and a restart would lose them.
   */
  snapshotReady(): boolean {
    return this.#gap === null;
  }

  snapshot(): Uint8Array {
    if (this.#syncError !== null) throw this.#syncError;
    // The snapshot lets the host drop the WAL entries behind it, so what it
    // names must be on disk first.
    this.#partition.log.sync();
    this.#unsyncedBytes = 0;
    this.#durable = this.#state();
    return encodePartitionSnapshot(this.#durable);
  }

  durableSnapshot(after: number): { index: number; data: Uint8Array } | null {
    if (this.#syncError !== null) throw this.#syncError;
    const durable = this.#durable;
    if (durable !== null && durable.index > after) {
      return { index: durable.index, data: encodePartitionSnapshot(durable) };
    }
    this.#syncInBackground();
    return null;
  }

  restore(data: Uint8Array): void {
    const snap = decodePartitionSnapshot(data);
    this.#epoch++;
    this.#durable = null;
    this.#aligned = true;
    this.#applied = snap.index;
    const log = this.#partition.log;
    if (log.logEndOffset > snap.logEndOffset) {
      this.#manager.truncate(this.#partition, snap.logEndOffset);
    }
    // A newer snapshot supersedes entries that waited for an older gap.
    this.#gap = null;
    // Records below the snapshot's start were deleted on the leader, which
    // can no longer send them: copy only what it still holds.
    if (log.logEndOffset < snap.logStartOffset) {
      this.#manager.restartAt(this.#partition, snap.logStartOffset);
    } else {
      this.#manager.deleteRecordsBefore(this.#partition, snap.logStartOffset);
    }
    if (log.logEndOffset < snap.logEndOffset) {
      // A leader's snapshot names data compacted out of its Raft log; this
      // replica must copy it from the partition log of a replica that has it.
      this.#gap = { to: snap.logEndOffset, pending: [] };
      this.#onGap(log.logEndOffset, snap.logEndOffset);
    }
    assert(
      log.logEndOffset <= snap.logEndOffset,
      "Partition log ends beyond its snapshot after restore",
      { topic: this.#partition.topic, partition: this.#partition.index },
    );
    this.#partition.advanceHighWatermark(log.logEndOffset);
  }
}
