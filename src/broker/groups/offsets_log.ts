/**
 * A coordinator's view of its internal topic (`__consumer_offsets` for the
 * groups, `__transaction_state` for transactions): append records to one of
 * its partitions (resolving once committed, on the same path as a produce)
 * and read a partition back from the start to rebuild state.
 */
import {
  buildRecordBatch,
  decodeBatches,
  isControlBatch,
  type Record,
  type RecordInput,
  TRANSACTIONAL_BIT,
} from "../../protocol/mod.ts";
import type { AppendOutcome, Partition } from "../partitions.ts";
import { markerOf } from "../transactions/marker_batch.ts";
import type { TxnResult } from "../transactions/txn_metadata.ts";

export const OFFSETS_TOPIC = "__consumer_offsets";
const READ_CHUNK_BYTES = 1 << 20;

/** A producer's transaction that records are written in. */
export interface LogTransaction {
  readonly producerId: bigint;
  readonly producerEpoch: number;
}

/**
 * One partition's log read back: a record, with the producer whose
 * transaction wrote it (null outside transactions), or a transaction's
 * marker.
 */
export type LogEntry =
  | { kind: "record"; record: Record; producerId: bigint | null }
  | { kind: "marker"; producerId: bigint; result: TxnResult };

export interface OffsetsLog {
  readonly partitionCount: number;
  /**
   * Appends records to one partition, in a transaction if named; resolves
   * once they are durable.
   */
  append(
    partition: number,
    records: readonly RecordInput[],
    txn?: LogTransaction,
  ): Promise<void>;
  /** Every entry of one partition, oldest first. */
  read(partition: number): Iterable<LogEntry>;
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
    txn?: LogTransaction,
  ): Promise<void> {
    const p = this.#partition(partition);
    const batch = buildRecordBatch(
      records,
      txn === undefined ? {} : { ...txn, transactional: true },
    );
    const outcome = await this.#cluster.write(p, batch);
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

  *read(partition: number): Iterable<LogEntry> {
    const log = this.#partition(partition).log;
    let offset = log.logStartOffset;
    while (offset < log.logEndOffset) {
      const batches = decodeBatches(
        log.read(offset, { maxBytes: READ_CHUNK_BYTES }),
      );
      const last = batches.at(-1);
      if (last === undefined) break;
      for (const batch of batches) {
        const { header, records } = batch;
        if (isControlBatch(header.attributes)) {
          const marker = markerOf(batch);
          if (header.baseOffset >= offset && marker !== null) {
            yield { kind: "marker", ...marker };
          }
          continue;
        }
        const producerId = (header.attributes & TRANSACTIONAL_BIT) !== 0
          ? header.producerId
          : null;
        for (const record of records) {
          if (record.offset >= offset) {
            yield { kind: "record", record, producerId };
          }
        }
      }
      offset = last.header.baseOffset + BigInt(last.header.lastOffsetDelta) +
        1n;
    }
  }
}
