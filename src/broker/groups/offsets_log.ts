/**
 * A coordinator's view of its internal topic (`__consumer_offsets` for the
 * groups, `__transaction_state` for transactions): append records to one of
 * its partitions (resolving once committed, on the same path as a produce)
 * and read a partition back from the start to rebuild state.
 */
import {
  buildRecordBatch,
  decodeRecordBatches,
  type Record,
  type RecordInput,
} from "../../protocol/mod.ts";
import type { AppendOutcome, Partition } from "../partitions.ts";

export const OFFSETS_TOPIC = "__consumer_offsets";
const READ_CHUNK_BYTES = 1 << 20;

export interface OffsetsLog {
  readonly partitionCount: number;
  /** Appends records to one partition; resolves once they are durable. */
  append(partition: number, records: readonly RecordInput[]): Promise<void>;
  /** Every record of one partition, oldest first. */
  read(partition: number): Iterable<Record>;
}

/**
 * The part of the cluster the offsets log writes through, declared here so
 * that groups need nothing from the handlers (which import the coordinator).
 * The handlers' ClusterView has this shape, so the broker passes its view.
 */
export interface OffsetsCluster {
  /** The local partition when this broker leads it, else the error code. */
  leading(
    topic: string,
    index: number,
  ): { ok: true; partition: Partition } | { ok: false; errorCode: number };
  /** Appends a record set to a led partition; resolves once durable. */
  write(
    p: Partition,
    records: Uint8Array,
  ): Promise<AppendOutcome | { ok: false; errorCode: number }>;
}

export class OffsetsLogError extends Error {
  override name = "OffsetsLogError";
}

/**
 * An OffsetsLog on this broker's partitions of an internal topic
 * (OFFSETS_TOPIC unless named), written through each partition's Raft group
 * like any produce.
 */
export class PartitionOffsetsLog implements OffsetsLog {
  readonly partitionCount: number;
  readonly #cluster: OffsetsCluster;
  readonly #topic: string;

  constructor(
    cluster: OffsetsCluster,
    opts: { partitionCount: number; topic?: string },
  ) {
    this.#cluster = cluster;
    this.partitionCount = opts.partitionCount;
    this.#topic = opts.topic ?? OFFSETS_TOPIC;
  }

  #partition(index: number): Partition {
    const leading = this.#cluster.leading(this.#topic, index);
    if (!leading.ok) {
      throw new OffsetsLogError(
        `Partition ${this.#topic}-${index} is not led by this broker (error ${leading.errorCode})`,
      );
    }
    return leading.partition;
  }

  async append(
    partition: number,
    records: readonly RecordInput[],
  ): Promise<void> {
    const p = this.#partition(partition);
    const outcome = await this.#cluster.write(p, buildRecordBatch(records));
    if (!outcome.ok) {
      throw new OffsetsLogError(
        `Writing to ${this.#topic}-${partition} failed: ${
          "errorCode" in outcome
            ? `error ${outcome.errorCode}`
            : outcome.error.message
        }`,
      );
    }
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
