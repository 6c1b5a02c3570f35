/**
 * The group APIs: FindCoordinator (v0-4), JoinGroup (v0-6), SyncGroup
 * (v0-4), Heartbeat (v0-4), LeaveGroup (v0-4), OffsetCommit (v2-8),
 * OffsetFetch (v1-8), DescribeGroups (v0-5), ListGroups (v0-4),
 * DeleteGroups (v0-2) and OffsetDelete (v0). They translate between wire versions and the
 * GroupCoordinator, which holds the protocol's rules.
 */
import {
  type DeleteGroupsRequest,
  type DeleteGroupsResponseInput,
  type DescribeGroupsRequest,
  type DescribeGroupsResponseInput,
  ErrorCode,
  type FindCoordinatorRequest,
  type FindCoordinatorResponseInput,
  type HeartbeatRequest,
  type HeartbeatResponseInput,
  type JoinGroupRequest,
  type JoinGroupResponseInput,
  type LeaveGroupRequest,
  type LeaveGroupResponseInput,
  type ListGroupsRequest,
  type ListGroupsResponseInput,
  type OffsetCommitRequest,
  type OffsetCommitResponseInput,
  type OffsetDeleteRequest,
  type OffsetDeleteResponseInput,
  type OffsetFetchRequest,
  type OffsetFetchResponseInput,
  type SyncGroupRequest,
  type SyncGroupResponseInput,
} from "../../protocol/mod.ts";
import { OFFSETS_TOPIC } from "../groups/offsets_log.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";

const KEY_TYPE_GROUP = 0;
const NO_AUTHORIZED_OPERATIONS = -2147483648;

export function handleFindCoordinator(
  ctx: BrokerContext,
  req: FindCoordinatorRequest,
  { version, listener }: RequestInfo,
): FindCoordinatorResponseInput {
  const keys = version >= 4 ? req.coordinatorKeys : [req.key];
  // Creates the offsets topic on first use; until its partitions have
  // leaders, clients are told to ask again.
  const coordinator = ctx.groups();
  const offsets = ctx.cluster.topic(OFFSETS_TOPIC);
  const brokers = ctx.cluster.brokers(listener.name);
  const answers = keys.map((key) => {
    const unavailable = (errorMessage: string) => ({
      key,
      nodeId: -1,
      host: "",
      port: -1,
      errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE,
      errorMessage,
    });
    if (req.keyType !== KEY_TYPE_GROUP) {
      return unavailable("raftq has no transaction coordinator");
    }
    if (offsets === undefined) {
      return unavailable(`${OFFSETS_TOPIC} is being created`);
    }
    const leader = ctx.cluster.partitionView(
      offsets,
      coordinator.partitionFor(key),
    ).leaderId;
    const broker = brokers.find((b) => b.nodeId === leader);
    if (broker === undefined) {
      return unavailable(`the coordinator of group "${key}" is being elected`);
    }
    return {
      key,
      nodeId: broker.nodeId,
      host: broker.host,
      port: broker.port,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
    };
  });
  const first = answers[0]!;
  return {
    throttleTimeMs: 0,
    errorCode: first.errorCode,
    errorMessage: first.errorMessage,
    nodeId: first.nodeId,
    host: first.host,
    port: first.port,
    coordinators: answers,
  };
}

export async function handleJoinGroup(
  ctx: BrokerContext,
  req: JoinGroupRequest,
  request: RequestInfo,
): Promise<JoinGroupResponseInput> {
  const answer = await ctx.groups().join(req, request);
  // protocol_name is nullable only from v7 on; before, "" stands for none.
  const protocolName = request.version >= 7
    ? answer.protocolName
    : answer.protocolName ?? "";
  return { throttleTimeMs: 0, ...answer, protocolName };
}

export async function handleSyncGroup(
  ctx: BrokerContext,
  req: SyncGroupRequest,
): Promise<SyncGroupResponseInput> {
  return { throttleTimeMs: 0, ...(await ctx.groups().sync(req)) };
}

export function handleHeartbeat(
  ctx: BrokerContext,
  req: HeartbeatRequest,
): HeartbeatResponseInput {
  return { throttleTimeMs: 0, errorCode: ctx.groups().heartbeat(req) };
}

export function handleLeaveGroup(
  ctx: BrokerContext,
  req: LeaveGroupRequest,
  { version }: RequestInfo,
): LeaveGroupResponseInput {
  const named = version >= 3
    ? req.members.map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
    }))
    : [{ memberId: req.memberId, groupInstanceId: null }];
  const answer = ctx.groups().leave(req.groupId, named);
  if (version >= 3) {
    return {
      throttleTimeMs: 0,
      errorCode: answer.errorCode,
      members: answer.members,
    };
  }
  return {
    throttleTimeMs: 0,
    errorCode: answer.errorCode !== ErrorCode.NONE
      ? answer.errorCode
      : answer.members[0]?.errorCode ?? ErrorCode.NONE,
  };
}

export async function handleOffsetCommit(
  ctx: BrokerContext,
  req: OffsetCommitRequest,
): Promise<OffsetCommitResponseInput> {
  const topics = await ctx.groups().commit({
    groupId: req.groupId,
    generationId: req.generationIdOrMemberEpoch,
    memberId: req.memberId,
    groupInstanceId: req.groupInstanceId,
    topics: req.topics,
  });
  return { throttleTimeMs: 0, topics };
}

export function handleOffsetFetch(
  ctx: BrokerContext,
  req: OffsetFetchRequest,
  { version }: RequestInfo,
): OffsetFetchResponseInput {
  const coordinator = ctx.groups();
  if (version >= 8) {
    return {
      throttleTimeMs: 0,
      topics: [],
      groups: req.groups.map((g) => {
        const answer = coordinator.fetchOffsets(g.groupId, g.topics);
        return { groupId: g.groupId, ...answer };
      }),
    };
  }
  const answer = coordinator.fetchOffsets(req.groupId, req.topics);
  if (version < 2 && answer.errorCode !== ErrorCode.NONE) {
    // v1 has no top-level error: it goes on every requested partition.
    return {
      throttleTimeMs: 0,
      topics: (req.topics ?? []).map((t) => ({
        name: t.name,
        partitions: t.partitionIndexes.map((partitionIndex) => ({
          partitionIndex,
          committedOffset: -1n,
          metadata: "",
          errorCode: answer.errorCode,
        })),
      })),
    };
  }
  return { throttleTimeMs: 0, ...answer };
}

export function handleDescribeGroups(
  ctx: BrokerContext,
  req: DescribeGroupsRequest,
): DescribeGroupsResponseInput {
  const coordinator = ctx.groups();
  return {
    throttleTimeMs: 0,
    groups: req.groups.map((id) => ({
      ...coordinator.describe(id),
      authorizedOperations: NO_AUTHORIZED_OPERATIONS,
    })),
  };
}

export function handleListGroups(
  ctx: BrokerContext,
  req: ListGroupsRequest,
): ListGroupsResponseInput {
  const groups = ctx.groups().list(req.statesFilter).filter((g) =>
    req.typesFilter.length === 0 ||
    req.typesFilter.some((t) => t.toLowerCase() === g.groupType)
  );
  return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, groups };
}

export async function handleDeleteGroups(
  ctx: BrokerContext,
  req: DeleteGroupsRequest,
): Promise<DeleteGroupsResponseInput> {
  const coordinator = ctx.groups();
  const results = [];
  for (const groupId of req.groupsNames) {
    results.push({
      groupId,
      errorCode: await coordinator.deleteGroup(groupId),
    });
  }
  return { throttleTimeMs: 0, results };
}

export async function handleOffsetDelete(
  ctx: BrokerContext,
  req: OffsetDeleteRequest,
): Promise<OffsetDeleteResponseInput> {
  const answer = await ctx.groups().deleteOffsets(req.groupId, req.topics);
  return { throttleTimeMs: 0, ...answer };
}
