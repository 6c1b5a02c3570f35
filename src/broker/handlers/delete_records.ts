/**
 * DeleteRecords (v0-2): moves partitions' log start forward, each through
 * its Raft group on the leader (ClusterView.deleteRecords). Kafka sends the
 * request to each partition's leader; a partition led elsewhere answers
 * NOT_LEADER_OR_FOLLOWER and the client retries at the new leader.
 */
import {
  type DeleteRecordsRequest,
  type DeleteRecordsResponseInput,
  ErrorCode,
} from "../../protocol/mod.ts";
import { allows } from "./authorize.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";

export async function handleDeleteRecords(
  ctx: BrokerContext,
  req: DeleteRecordsRequest,
  request: RequestInfo,
): Promise<DeleteRecordsResponseInput> {
  const topics = await Promise.all(req.topics.map(async (t) => {
    const deletable = allows(ctx, request, {
      type: "topic",
      name: t.name,
      operation: "delete",
    });
    return {
      name: t.name,
      partitions: await Promise.all(t.partitions.map(async (p) => ({
        partitionIndex: p.partitionIndex,
        ...(deletable
          ? await ctx.cluster.deleteRecords(t.name, p.partitionIndex, p.offset)
          : {
            lowWatermark: -1n,
            errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED,
          }),
      }))),
    };
  }));
  return { throttleTimeMs: 0, topics };
}
