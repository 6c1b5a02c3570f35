/**
 * Produce (v3-8). Every partition's record set is validated and appended in
 * request order before anything is awaited, so pipelined requests keep their
 * order; then the answer waits for durability (acks 1 and -1) or is skipped
 * (acks 0, which clients send without expecting a reply).
 */
import {
  ErrorCode,
  type InvalidBatchError,
  type ProduceRequest,
  type ProduceResponseInput,
  type ProduceResponsePartitionResponsesInput,
} from "../../protocol/mod.ts";
import { OFFSETS_TOPIC } from "../groups/offsets_log.ts";
import { type Partition, RecordTooLargeError } from "../partitions.ts";
import { ProducerSequenceError } from "../producers/producer_state.ts";
import type { BrokerContext } from "./context.ts";

function errorFor(
  err: InvalidBatchError | RecordTooLargeError | ProducerSequenceError,
): number {
  if (err instanceof RecordTooLargeError) return ErrorCode.MESSAGE_TOO_LARGE;
  if (err instanceof ProducerSequenceError) return err.errorCode;
  // Magic v0/v1 message sets are refused outright rather than converted.
  return err.problem === "unsupported-magic"
    ? ErrorCode.UNSUPPORTED_VERSION
    : ErrorCode.CORRUPT_MESSAGE;
}

export async function handleProduce(
  ctx: BrokerContext,
  req: ProduceRequest,
): Promise<ProduceResponseInput | null> {
  const acks = req.acks;
  const durable: Promise<void>[] = [];
  const responses = req.topicData.map((topic) => ({
    name: topic.name,
    partitionResponses: topic.partitionData.map(
      (pd): ProduceResponsePartitionResponsesInput => {
        const failed = (errorCode: number, errorMessage: string | null) => ({
          index: pd.index,
          errorCode,
          baseOffset: -1n,
          logStartOffset: -1n,
          errorMessage,
        });
        if (acks !== 0 && acks !== 1 && acks !== -1) {
          return failed(
            ErrorCode.INVALID_REQUIRED_ACKS,
            `acks=${acks} is not one of -1, 0, 1`,
          );
        }
        if (topic.name === OFFSETS_TOPIC) {
          return failed(
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            `Topic ${OFFSETS_TOPIC} is internal: clients cannot produce to it`,
          );
        }
        const p: Partition | undefined = ctx.partitions.get(
          topic.name,
          pd.index,
        );
        if (p === undefined) {
          return failed(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, null);
        }
        if (pd.records === null) {
          return failed(ErrorCode.CORRUPT_MESSAGE, "records are null");
        }
        const outcome = ctx.partitions.append(p, pd.records);
        if (!outcome.ok) {
          return failed(errorFor(outcome.error), outcome.error.message);
        }
        durable.push(ctx.partitions.durable(p, outcome.lastOffset));
        return {
          index: pd.index,
          errorCode: ErrorCode.NONE,
          baseOffset: outcome.baseOffset,
          logAppendTimeMs: -1n,
          logStartOffset: p.log.logStartOffset,
        };
      },
    ),
  }));
  const synced = Promise.all(durable);
  if (acks === 0) {
    // Nobody waits for the answer, but a failed sync must still be loud.
    synced.catch((err) => ctx.log(`acks=0 write failed to sync: ${err}`));
    return null;
  }
  await synced;
  return { responses, throttleTimeMs: 0 };
}
