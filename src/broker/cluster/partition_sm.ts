/**
 * The state machine of one partition's Raft group: committed entries carry
 * produced record sets, and applying one appends it to the partition log
 * through the same PartitionManager.append a single broker uses, so every
 * replica assigns the same offsets and makes the same idempotence calls.
 *
 * The Raft WAL is what makes an entry durable; the partition log is synced
 * only when the host asks for a snapshot, whose content is just the log's
 * end offset at that index. So after a crash the log is cut back to the
 * last snapshot's end (or emptied, without one) and the host replays the
 * entries after it: the log never holds an offset the WAL cannot rebuild.
 */
import { completeBatchSize, readBatchHeader } from "../../protocol/mod.ts";
import { assert } from "../../util/mod.ts";
import type { Entry, StateMachine } from "../../raft/mod.ts";
import type {
  AppendOutcome,
  Partition,
  PartitionManager,
} from "../partitions.ts";

const ENTRY_PRODUCE = 1;
/** Changes nothing; a leader proposes one to learn it has applied all. */
const ENTRY_BARRIER = 2;
const SNAPSHOT_VERSION = 1;
const SNAPSHOT_BYTES = 1 + 8 + 8 + 8;

/** A produce entry: a kind byte, then the record set as the producer sent it. */
export function encodeProduceEntry(records: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + records.length);
  out[0] = ENTRY_PRODUCE;
  out.set(records, 1);
  return out;
}

export function encodeBarrierEntry(): Uint8Array {
  return Uint8Array.of(ENTRY_BARRIER);
}

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
      if (readBatchHeader(records, pos).baseOffset >= gap.to) break;
      const outcome = this.#manager.append(
        this.#partition,
        records.subarray(pos, pos + size),
      );
      if (!outcome.ok) throw outcome.error;
      pos += size;
    }
    if (this.#partition.log.logEndOffset < gap.to) return false;
    this.#gap = null;
    this.#applyNow(gap.pending);
    return true;
  }

  apply(entries: Entry[]): (AppendOutcome | null)[] {
    this.#alignWithoutSnapshot();
    if (this.#gap !== null) {
      this.#gap.pending.push(...entries);
      this.#applied = entries.at(-1)?.index ?? this.#applied;
      return entries.map(() => null);
    }
    return this.#applyNow(entries);
  }

  #applyNow(entries: Entry[]): (AppendOutcome | null)[] {
    const results = entries.map((entry) => {
      this.#applied = entry.index;
      if (entry.data.length === 0 || entry.data[0] !== ENTRY_PRODUCE) {
        return null;
      }
      // The leader checked every batch's CRC before proposing it, and since
      // then the WAL's own record CRC has guarded the entry: checking the
      // batches again on every replica cost a tenth of a broker's CPU.
      return this.#manager.append(this.#partition, entry.data.subarray(1), {
        leaderEpoch: entry.term,
        crcChecked: true,
      });
    });
    this.#partition.advanceHighWatermark(this.#partition.log.logEndOffset);
    return results;
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
    const log = this.#partition.log;
    // The snapshot lets the host drop the WAL entries behind it, so what it
    // names must be on disk first.
    log.sync();
    return encodePartitionSnapshot({
      index: this.#applied,
      logStartOffset: log.logStartOffset,
      logEndOffset: log.logEndOffset,
    });
  }

  restore(data: Uint8Array): void {
    const snap = decodePartitionSnapshot(data);
    this.#aligned = true;
    this.#applied = snap.index;
    const log = this.#partition.log;
    if (log.logEndOffset > snap.logEndOffset) {
      this.#manager.truncate(this.#partition, snap.logEndOffset);
    }
    // A newer snapshot supersedes entries that waited for an older gap.
    this.#gap = null;
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
