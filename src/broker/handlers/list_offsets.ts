/**
 * ListOffsets (v0-7): -1 is the latest offset (the high watermark, or the
 * last stable offset for read_committed, v2+), -2 the log start, -3 the
 * record with the largest timestamp; any other value the first offset whose
 * timestamp is at or after it, or -1 when there is none, below the same
 * bound. v0 answers a list of offsets instead (ZooKeeper-era consumers):
 * the one offset found, or none.
 */
import {
  decodeRecordBatches,
  ErrorCode,
  type ListOffsetsRequest,
  type ListOffsetsResponseInput,
  type ListOffsetsResponsePartitionsInput,
} from "../../protocol/mod.ts";
import type { PartitionLog } from "../../storage/mod.ts";
import { allows } from "./authorize.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";

const LATEST = -1n;
const EARLIEST = -2n;
const MAX_TIMESTAMP = -3n;
const READ_COMMITTED = 1;

export function handleListOffsets(
  ctx: BrokerContext,
  req: ListOffsetsRequest,
  request: RequestInfo,
): ListOffsetsResponseInput {
  return {
    throttleTimeMs: 0,
    topics: req.topics.map((t) => {
      const describable = allows(ctx, request, {
        type: "topic",
        name: t.name,
        operation: "describe",
      });
      return {
        name: t.name,
        partitions: t.partitions.map(
          (p): ListOffsetsResponsePartitionsInput => {
            const answer = (
              errorCode: number,
              timestamp: bigint,
              offset: bigint,
            ) => ({
              partitionIndex: p.partitionIndex,
              errorCode,
              oldStyleOffsets: request.version === 0 && offset >= 0
                ? [offset]
                : [],
              timestamp,
              offset,
              leaderEpoch: 0,
            });
            if (!describable) {
              return answer(ErrorCode.TOPIC_AUTHORIZATION_FAILED, -1n, -1n);
            }
            const leading = ctx.cluster.leading(t.name, p.partitionIndex);
            if (!leading.ok) return answer(leading.errorCode, -1n, -1n);
            const part = leading.partition;
            const visible = req.isolationLevel === READ_COMMITTED
              ? part.lastStableOffset
              : part.highWatermark;
            if (p.timestamp === LATEST) {
              return answer(ErrorCode.NONE, -1n, visible);
            }
            if (p.timestamp === EARLIEST) {
              return answer(ErrorCode.NONE, -1n, part.log.logStartOffset);
            }
            const batch = p.timestamp === MAX_TIMESTAMP
              ? part.log.maxTimestamp()
              : part.log.offsetForTimestamp(p.timestamp);
            const found = batch === null ? null : firstRecordFrom(
              part.log,
              batch,
              p.timestamp === MAX_TIMESTAMP ? batch.timestamp : p.timestamp,
            );
            // Offsets at or past the bound are not visible yet.
            if (found === null || found.offset >= visible) {
              return answer(ErrorCode.NONE, -1n, -1n);
            }
            return answer(ErrorCode.NONE, found.timestamp, found.offset);
          },
        ),
      };
    }),
  };
}

/**
 * The log's time index names a batch (its base offset and max timestamp);
 * Kafka answers the first *record* at or past the timestamp, which may sit
 * later in that batch, so the batch is read and its records looked at.
 */
function firstRecordFrom(
  log: PartitionLog,
  batch: { offset: bigint; timestamp: bigint },
  timestampMs: bigint,
): { offset: bigint; timestamp: bigint } {
  const records = decodeRecordBatches(
    log.read(batch.offset, { maxBytes: 1 }),
  );
  const hit = records.find((r) =>
    r.offset >= batch.offset && r.timestamp >= timestampMs
  );
  return hit === undefined
    ? batch
    : { offset: hit.offset, timestamp: hit.timestamp };
}
