/**
 * DeleteRecords (v0-2): moves partitions' log start forward, each through
 * its Raft group on the leader (ClusterView.deleteRecords). Kafka sends the
 * request to each partition's leader; a partition led elsewhere answers
 * NOT_LEADER_OR_FOLLOWER and the client retries at the new leader.
 */
import type {
  DeleteRecordsRequest,
  DeleteRecordsResponseInput,
} from "../../protocol/mod.ts";
import type { BrokerContext } from "./context.ts";

export async function handleDeleteRecords(
  ctx: BrokerContext,
  req: DeleteRecordsRequest,
): Promise<DeleteRecordsResponseInput> {
  const topics = await Promise.all(req.topics.map(async (t) => ({
    name: t.name,
    partitions: await Promise.all(t.partitions.map(async (p) => ({
      partitionIndex: p.partitionIndex,
      ...await ctx.cluster.deleteRecords(t.name, p.partitionIndex, p.offset),
    }))),
  })));
  return { throttleTimeMs: 0, topics };
}
