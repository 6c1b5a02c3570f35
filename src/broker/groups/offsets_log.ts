/**
 * The coordinator's view of `__consumer_offsets`: append records to one of
 * its partitions (resolving once durable, on the same path as a produce) and
 * read a partition back from the start to rebuild state. The cluster issue
 * puts a Raft group under each partition without changing this seam.
 */
import {
  buildRecordBatch,
  decodeRecordBatches,
  type Record,
  type RecordInput,
} from "../../protocol/mod.ts";
import type { Partition, PartitionManager } from "../partitions.ts";

export const OFFSETS_TOPIC = "__consumer_offsets";
const READ_CHUNK_BYTES = 1 << 20;

export interface OffsetsLog {
  readonly partitionCount: number;
  /** Appends records to one partition; resolves once they are durable. */
  append(partition: number, records: readonly RecordInput[]): Promise<void>;
  /** Every record of one partition, oldest first. */
  read(partition: number): Iterable<Record>;
}

export class OffsetsLogError extends Error {
  override name = "OffsetsLogError";
}

/** An OffsetsLog on the broker's partitions of OFFSETS_TOPIC. */
export class PartitionOffsetsLog implements OffsetsLog {
  readonly partitionCount: number;
  readonly #partitions: PartitionManager;

  constructor(partitions: PartitionManager, partitionCount: number) {
    this.#partitions = partitions;
    this.partitionCount = partitionCount;
  }

  #partition(index: number): Partition {
    const p = this.#partitions.get(OFFSETS_TOPIC, index);
    if (p === undefined) {
      throw new OffsetsLogError(
        `Partition ${OFFSETS_TOPIC}-${index} is not open on this broker`,
      );
    }
    return p;
  }

  async append(
    partition: number,
    records: readonly RecordInput[],
  ): Promise<void> {
    const p = this.#partition(partition);
    const outcome = this.#partitions.append(p, buildRecordBatch(records));
    if (!outcome.ok) throw outcome.error;
    await this.#partitions.durable(p, outcome.lastOffset);
  }

  *read(partition: number): Iterable<Record> {
    const log = this.#partition(partition).log;
    let offset = log.logStartOffset;
    while (offset < log.logEndOffset) {
      const records = decodeRecordBatches(
        log.read(offset, { maxBytes: READ_CHUNK_BYTES }),
      );
      const last = records.at(-1);
      if (last === undefined) break;
      yield* records.filter((r) => r.offset >= offset);
      offset = last.offset + 1n;
    }
  }
}
