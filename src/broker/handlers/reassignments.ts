/**
 * AlterPartitionReassignments (v0), ListPartitionReassignments (v0),
 * ElectLeaders (v0-2, PREFERRED only) and DescribeQuorum (v0-1). Any broker takes a reassignment: it forwards the
 * command to the controller, as it does for topic creation. DescribeQuorum
 * is keyed by topic and partition and answered by the partition's leader,
 * the only broker that knows its followers' positions; there, a position
 * (LogEndOffset, HighWatermark) is a Raft log index, not a Kafka offset.
 */
import {
  type AlterPartitionReassignmentsRequest,
  type AlterPartitionReassignmentsResponseInput,
  type DescribeQuorumRequest,
  type DescribeQuorumResponseInput,
  type ElectLeadersRequest,
  type ElectLeadersResponseInput,
  ErrorCode,
  type ListPartitionReassignmentsRequest,
  type ListPartitionReassignmentsResponseInput,
} from "../../protocol/mod.ts";
import type { ReplicaPosition } from "../ports.ts";
import { allowsOnCluster, clusterRefusal } from "./authorize.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";

export async function handleAlterPartitionReassignments(
  ctx: BrokerContext,
  req: AlterPartitionReassignmentsRequest,
  request: RequestInfo,
): Promise<AlterPartitionReassignmentsResponseInput> {
  if (!allowsOnCluster(ctx, request, "alter")) {
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
      errorMessage: clusterRefusal("alter"),
      responses: [],
    };
  }
  const responses = await Promise.all(req.topics.map(async (t) => ({
    name: t.name,
    partitions: await Promise.all(t.partitions.map(async (p) => ({
      partitionIndex: p.partitionIndex,
      ...(await ctx.cluster.reassign(t.name, p.partitionIndex, p.replicas)),
    }))),
  })));
  return {
    throttleTimeMs: 0,
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    responses,
  };
}

export function handleListPartitionReassignments(
  ctx: BrokerContext,
  req: ListPartitionReassignmentsRequest,
  request: RequestInfo,
): ListPartitionReassignmentsResponseInput {
  if (!allowsOnCluster(ctx, request, "describe")) {
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
      errorMessage: clusterRefusal("describe"),
      topics: [],
    };
  }
  const wanted = req.topics === null
    ? null
    : new Map(req.topics.map((t) => [t.name, new Set(t.partitionIndexes)]));
  const byTopic = new Map<
    string,
    ListPartitionReassignmentsResponseInput["topics"][number]
  >();
  for (const r of ctx.cluster.reassignments()) {
    if (wanted !== null && wanted.get(r.topic)?.has(r.partition) !== true) {
      continue;
    }
    let topic = byTopic.get(r.topic);
    if (topic === undefined) {
      topic = { name: r.topic, partitions: [] };
      byTopic.set(r.topic, topic);
    }
    topic.partitions.push({
      partitionIndex: r.partition,
      replicas: [...r.replicas],
      addingReplicas: [...r.addingReplicas],
      removingReplicas: [...r.removingReplicas],
    });
  }
  return {
    throttleTimeMs: 0,
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    topics: [...byTopic.values()],
  };
}

/** ElectLeaders' election types (KIP-460). */
const ELECTION_PREFERRED = 0;

/**
 * Raft elects leaders by itself, so only a PREFERRED election makes sense:
 * it waits for leader balancing to hand each partition to its preferred
 * replica. An UNCLEAN election (a replica without the committed log) is
 * something Raft never does.
 */
export async function handleElectLeaders(
  ctx: BrokerContext,
  req: ElectLeadersRequest,
  request: RequestInfo,
): Promise<ElectLeadersResponseInput> {
  if (!allowsOnCluster(ctx, request, "alter")) {
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
      replicaElectionResults: [],
    };
  }
  const wanted = req.topicPartitions ??
    ctx.cluster.topics().map((t) => ({
      topic: t.name,
      partitions: Array.from({ length: t.partitions }, (_, i) => i),
    }));
  const results = await Promise.all(wanted.map(async (t) => ({
    topic: t.topic,
    partitionResult: await Promise.all(t.partitions.map(async (p) => ({
      partitionId: p,
      ...(req.electionType === ELECTION_PREFERRED
        ? await ctx.cluster.electPreferred(t.topic, p, req.timeoutMs)
        : {
          errorCode: ErrorCode.INVALID_REQUEST,
          errorMessage:
            `Election type ${req.electionType} is not supported: raftq's Raft groups elect only leaders with the committed log`,
        }),
    }))),
  })));
  return {
    throttleTimeMs: 0,
    errorCode: ErrorCode.NONE,
    replicaElectionResults: results,
  };
}

const UNKNOWN_TIME = -1n;

function replicaState(r: ReplicaPosition) {
  return {
    replicaId: r.replicaId,
    logEndOffset: BigInt(r.matchIndex),
    lastFetchTimestamp: UNKNOWN_TIME,
    lastCaughtUpTimestamp: UNKNOWN_TIME,
  };
}

export function handleDescribeQuorum(
  ctx: BrokerContext,
  req: DescribeQuorumRequest,
  request: RequestInfo,
): DescribeQuorumResponseInput {
  if (!allowsOnCluster(ctx, request, "describe")) {
    return {
      errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
      errorMessage: clusterRefusal("describe"),
      nodes: [],
      topics: [],
    };
  }
  return {
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    nodes: [],
    topics: req.topics.map((t) => ({
      topicName: t.topicName,
      partitions: t.partitions.map((p) => {
        const q = ctx.cluster.quorum(t.topicName, p.partitionIndex);
        if ("errorCode" in q) {
          return {
            partitionIndex: p.partitionIndex,
            errorCode: q.errorCode,
            errorMessage: null,
            leaderId: q.leaderId,
            leaderEpoch: -1,
            highWatermark: -1n,
            currentVoters: [],
            observers: [],
          };
        }
        return {
          partitionIndex: p.partitionIndex,
          errorCode: ErrorCode.NONE,
          errorMessage: null,
          leaderId: q.leaderId,
          leaderEpoch: q.leaderEpoch,
          highWatermark: BigInt(q.commitIndex),
          currentVoters: q.voters.map(replicaState),
          observers: q.observers.map(replicaState),
        };
      }),
    })),
  };
}
