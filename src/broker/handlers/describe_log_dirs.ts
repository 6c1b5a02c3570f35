/**
 * DescribeLogDirs (v0-4): raftq keeps every partition log in one directory,
 * the broker's data dir, so the answer holds one log dir with the replicas
 * this broker hosts; a topic or partition not hosted here is left out, as
 * Kafka does. raftq never moves a replica between dirs (AlterReplicaLogDirs),
 * so no replica is a future one.
 */
import type {
  DescribeLogDirsRequest,
  DescribeLogDirsResponseInput,
  DescribeLogDirsResponseTopicsInput,
} from "../../protocol/mod.ts";
import { ErrorCode } from "../../protocol/mod.ts";
import { allowsOnCluster } from "./authorize.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";

export function handleDescribeLogDirs(
  ctx: BrokerContext,
  req: DescribeLogDirsRequest,
  request: RequestInfo,
): DescribeLogDirsResponseInput {
  // Before v3 there is no top-level error: such a client sees no log dir.
  if (!allowsOnCluster(ctx, request, "describe")) {
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
      results: [],
    };
  }
  // Null asks for every topic.
  const wanted = req.topics === null ? null : new Map(
    req.topics.map((t) => [t.topic, new Set(t.partitions)]),
  );
  const dir = ctx.cluster.logDir();
  const topics = new Map<string, DescribeLogDirsResponseTopicsInput>();
  const replicas = [...dir.replicas].sort((a, b) =>
    a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition
  );
  for (const r of replicas) {
    if (wanted !== null && !wanted.get(r.topic)?.has(r.partition)) continue;
    let topic = topics.get(r.topic);
    if (topic === undefined) {
      topic = { name: r.topic, partitions: [] };
      topics.set(r.topic, topic);
    }
    topic.partitions.push({
      partitionIndex: r.partition,
      partitionSize: BigInt(r.sizeBytes),
      offsetLag: r.offsetLag,
      isFutureKey: false,
    });
  }
  return {
    throttleTimeMs: 0,
    errorCode: ErrorCode.NONE,
    results: [{
      errorCode: ErrorCode.NONE,
      logDir: dir.path,
      topics: [...topics.values()],
      totalBytes: dir.totalBytes,
      usableBytes: dir.usableBytes,
    }],
  };
}
