/**
 * Produce (v3-11). Every partition's record set is validated and appended in
 * request order before anything is awaited, so pipelined requests keep their
 * order; then the answer waits for durability (acks 1 and -1) or is skipped
 * (acks 0, which clients send without expecting a reply).
 */
import {
  ErrorCode,
  type ProduceRequest,
  type ProduceResponseInput,
  type ProduceResponsePartitionResponsesInput,
} from "../../protocol/mod.ts";
import { appendErrorCode } from "../partitions.ts";
import { INTERNAL_TOPICS } from "../topics.ts";
import { allows } from "./authorize.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";
import { LeaderHints } from "./leader_hints.ts";

export async function handleProduce(
  ctx: BrokerContext,
  req: ProduceRequest,
  request: RequestInfo,
): Promise<ProduceResponseInput | null> {
  const started = performance.now();
  const acks = req.acks;
  const pending: Promise<void>[] = [];
  const hints = new LeaderHints();
  const responses = req.topicData.map((topic) => {
    const writable = allows(ctx, request, {
      type: "topic",
      name: topic.name,
      operation: "write",
    });
    return {
      name: topic.name,
      partitionResponses: topic.partitionData.map(
        (pd): ProduceResponsePartitionResponsesInput => {
          const failed = (
            errorCode: number,
            errorMessage: string | null,
            currentLeader?: { leaderId: number; leaderEpoch: number },
          ) => ({
            index: pd.index,
            errorCode,
            baseOffset: -1n,
            logStartOffset: -1n,
            errorMessage,
            ...(currentLeader === undefined ? {} : { currentLeader }),
          });
          if (acks !== 0 && acks !== 1 && acks !== -1) {
            return failed(
              ErrorCode.INVALID_REQUIRED_ACKS,
              `acks=${acks} is not one of -1, 0, 1`,
            );
          }
          if (!writable) {
            return failed(ErrorCode.TOPIC_AUTHORIZATION_FAILED, null);
          }
          if (INTERNAL_TOPICS.has(topic.name)) {
            return failed(
              ErrorCode.INVALID_TOPIC_EXCEPTION,
              `Topic ${topic.name} is internal: clients cannot produce to it`,
            );
          }
          const leading = ctx.cluster.leading(topic.name, pd.index);
          if (!leading.ok) {
            return failed(
              leading.errorCode,
              null,
              hints.currentLeader(leading),
            );
          }
          if (pd.records === null) {
            return failed(ErrorCode.CORRUPT_MESSAGE, "records are null");
          }
          const p = leading.partition;
          const records = pd.records;
          // Filled in when the write settles; the response is built after.
          const answer: ProduceResponsePartitionResponsesInput = {
            index: pd.index,
            errorCode: ErrorCode.NONE,
            baseOffset: -1n,
            logAppendTimeMs: -1n,
            logStartOffset: -1n,
          };
          pending.push(
            ctx.cluster.write(p, records, {
              acks,
              timeoutMs: req.timeoutMs,
            }).then((outcome) => {
              if (outcome.ok) {
                p.traffic.bytesIn += records.length;
                p.traffic.recordsIn +=
                  Number(outcome.lastOffset - outcome.baseOffset) + 1;
                answer.baseOffset = outcome.baseOffset;
                answer.logAppendTimeMs = outcome.logAppendTimeMs ?? -1n;
                answer.logStartOffset = p.log.logStartOffset;
              } else if ("errorCode" in outcome) {
                answer.errorCode = outcome.errorCode;
              } else {
                answer.errorCode = appendErrorCode(outcome.error);
                answer.errorMessage = outcome.error.message;
              }
            }),
          );
          return answer;
        },
      ),
    };
  });
  const synced = Promise.all(pending);
  if (acks === 0) {
    ctx.metrics.produceAck(acks, (performance.now() - started) / 1000);
    // Nobody waits for the answer, but a failed sync must still be loud.
    synced.catch((err) => ctx.log(`acks=0 write failed to sync: ${err}`));
    return null;
  }
  await synced;
  ctx.metrics.produceAck(acks, (performance.now() - started) / 1000);
  return {
    responses,
    throttleTimeMs: 0,
    nodeEndpoints: hints.nodeEndpoints(ctx, request.listener.name),
  };
}
