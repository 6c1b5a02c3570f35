/**
 * The group APIs: FindCoordinator (v0-4, of groups and transactional ids),
 * JoinGroup (v0-6), SyncGroup (v0-4), Heartbeat (v0-4), LeaveGroup (v0-4),
 * OffsetCommit (v2-8), OffsetFetch (v1-8), DescribeGroups (v0-5),
 * ListGroups (v0-4), DeleteGroups (v0-2), OffsetDelete (v0) and
 * TxnOffsetCommit (v0-3). They translate between wire versions and the
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
  type TxnOffsetCommitRequest,
  type TxnOffsetCommitResponseInput,
} from "../../protocol/mod.ts";
import { OFFSETS_TOPIC } from "../groups/offsets_log.ts";
import { TXN_STATE_TOPIC } from "../transactions/txn_records.ts";
import type { Operation } from "../security/authorizer.ts";
import {
  allows,
  allowsOnCluster,
  authorizedOperations,
  NO_AUTHORIZED_OPERATIONS,
} from "./authorize.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";

const KEY_TYPE_GROUP = 0;
const KEY_TYPE_TRANSACTION = 1;
const GROUP_REFUSED = ErrorCode.GROUP_AUTHORIZATION_FAILED;

function onGroup(
  ctx: BrokerContext,
  request: RequestInfo,
  resource: { groupId: string; operation: Operation },
): boolean {
  return allows(ctx, request, {
    type: "group",
    name: resource.groupId,
    operation: resource.operation,
  });
}

/** The topics the principal may do `operation` on, and the others. */
function byTopicAccess<T extends { name: string }>(
  ctx: BrokerContext,
  request: RequestInfo,
  topics: readonly T[],
  operation: Operation,
): { allowed: T[]; refused: T[] } {
  const allowed: T[] = [];
  const refused: T[] = [];
  for (const t of topics) {
    const ok = allows(ctx, request, { type: "topic", name: t.name, operation });
    (ok ? allowed : refused).push(t);
  }
  return { allowed, refused };
}

/** What FindCoordinator looks up for a key type; null for an unknown one. */
function coordinatorKind(
  ctx: BrokerContext,
  request: RequestInfo,
  keyType: number,
): {
  what: string;
  topic: string;
  partitionFor(key: string): number;
  allowed(key: string): boolean;
  refused: number;
} | null {
  if (keyType === KEY_TYPE_GROUP) {
    const groups = ctx.groups();
    return {
      what: "group",
      topic: OFFSETS_TOPIC,
      partitionFor: (key) => groups.partitionFor(key),
      allowed: (key) =>
        onGroup(ctx, request, { groupId: key, operation: "describe" }),
      refused: GROUP_REFUSED,
    };
  }
  if (keyType === KEY_TYPE_TRANSACTION) {
    const transactions = ctx.transactions();
    return {
      what: "transactional id",
      topic: TXN_STATE_TOPIC,
      partitionFor: (key) => transactions.partitionFor(key),
      allowed: (key) =>
        allows(ctx, request, {
          type: "transactional_id",
          name: key,
          operation: "describe",
        }),
      refused: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    };
  }
  return null;
}

export function handleFindCoordinator(
  ctx: BrokerContext,
  req: FindCoordinatorRequest,
  request: RequestInfo,
): FindCoordinatorResponseInput {
  const { version, listener } = request;
  const keys = version >= 4 ? req.coordinatorKeys : [req.key];
  // Creates the internal topic on first use; until its partitions have
  // leaders, clients are told to ask again.
  const kind = coordinatorKind(ctx, request, req.keyType);
  const internal = kind === null ? undefined : ctx.cluster.topic(kind.topic);
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
    if (kind === null) {
      return {
        ...unavailable(`Coordinator key type ${req.keyType} is unknown`),
        errorCode: ErrorCode.INVALID_REQUEST,
      };
    }
    if (!kind.allowed(key)) {
      return {
        ...unavailable(`DESCRIBE on ${kind.what} "${key}" is not allowed`),
        errorCode: kind.refused,
      };
    }
    if (internal === undefined) {
      return unavailable(`${kind.topic} is being created`);
    }
    const leader = ctx.cluster.partitionView(
      internal,
      kind.partitionFor(key),
    ).leaderId;
    const broker = brokers.find((b) => b.nodeId === leader);
    if (broker === undefined) {
      return unavailable(
        `the coordinator of ${kind.what} "${key}" is being elected`,
      );
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
  if (!onGroup(ctx, request, { groupId: req.groupId, operation: "read" })) {
    return {
      throttleTimeMs: 0,
      errorCode: GROUP_REFUSED,
      generationId: -1,
      protocolName: request.version >= 7 ? null : "",
      leader: "",
      memberId: req.memberId,
      members: [],
    };
  }
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
  request: RequestInfo,
): Promise<SyncGroupResponseInput> {
  if (!onGroup(ctx, request, { groupId: req.groupId, operation: "read" })) {
    return {
      throttleTimeMs: 0,
      errorCode: GROUP_REFUSED,
      assignment: new Uint8Array(0),
    };
  }
  return { throttleTimeMs: 0, ...(await ctx.groups().sync(req)) };
}

export function handleHeartbeat(
  ctx: BrokerContext,
  req: HeartbeatRequest,
  request: RequestInfo,
): HeartbeatResponseInput {
  if (!onGroup(ctx, request, { groupId: req.groupId, operation: "read" })) {
    return { throttleTimeMs: 0, errorCode: GROUP_REFUSED };
  }
  return { throttleTimeMs: 0, errorCode: ctx.groups().heartbeat(req) };
}

export function handleLeaveGroup(
  ctx: BrokerContext,
  req: LeaveGroupRequest,
  request: RequestInfo,
): LeaveGroupResponseInput {
  const version = request.version;
  if (!onGroup(ctx, request, { groupId: req.groupId, operation: "read" })) {
    return { throttleTimeMs: 0, errorCode: GROUP_REFUSED, members: [] };
  }
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

/** Every partition of `topics` answered with one error code. */
function refuseAll<P extends { partitionIndex: number }>(
  topics: readonly { name: string; partitions: readonly P[] }[],
  errorCode: number,
) {
  return topics.map((t) => ({
    name: t.name,
    partitions: t.partitions.map((p) => ({
      partitionIndex: p.partitionIndex,
      errorCode,
    })),
  }));
}

export async function handleOffsetCommit(
  ctx: BrokerContext,
  req: OffsetCommitRequest,
  request: RequestInfo,
): Promise<OffsetCommitResponseInput> {
  if (!onGroup(ctx, request, { groupId: req.groupId, operation: "read" })) {
    return { throttleTimeMs: 0, topics: refuseAll(req.topics, GROUP_REFUSED) };
  }
  const { allowed, refused } = byTopicAccess(ctx, request, req.topics, "read");
  const committed = await ctx.groups().commit({
    groupId: req.groupId,
    generationId: req.generationIdOrMemberEpoch,
    memberId: req.memberId,
    groupInstanceId: req.groupInstanceId,
    topics: allowed,
  });
  return {
    throttleTimeMs: 0,
    topics: [
      ...committed,
      ...refuseAll(refused, ErrorCode.TOPIC_AUTHORIZATION_FAILED),
    ],
  };
}

/**
 * TxnOffsetCommit (v0-3): a transactional producer commits its consumer
 * group's offsets, which apply when its transaction commits.
 */
export async function handleTxnOffsetCommit(
  ctx: BrokerContext,
  req: TxnOffsetCommitRequest,
  request: RequestInfo,
): Promise<TxnOffsetCommitResponseInput> {
  const refuse = (errorCode: number) => ({
    throttleTimeMs: 0,
    topics: refuseAll(req.topics, errorCode),
  });
  if (
    !allows(ctx, request, {
      type: "transactional_id",
      name: req.transactionalId,
      operation: "write",
    })
  ) {
    return refuse(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  }
  if (!onGroup(ctx, request, { groupId: req.groupId, operation: "read" })) {
    return refuse(GROUP_REFUSED);
  }
  const { allowed, refused } = byTopicAccess(ctx, request, req.topics, "read");
  const committed = await ctx.groups().commitInTransaction({
    groupId: req.groupId,
    generationId: req.generationId,
    memberId: req.memberId,
    groupInstanceId: req.groupInstanceId,
    topics: allowed,
  }, { producerId: req.producerId, producerEpoch: req.producerEpoch });
  return {
    throttleTimeMs: 0,
    topics: [
      ...committed,
      ...refuseAll(refused, ErrorCode.TOPIC_AUTHORIZATION_FAILED),
    ],
  };
}

/**
 * A group's committed offsets as the principal may see them: topics it may
 * not DESCRIBE are left out of "every topic" and refused when named.
 */
function visibleOffsets(
  ctx: BrokerContext,
  request: RequestInfo,
  query: {
    groupId: string;
    topics: readonly { name: string; partitionIndexes: number[] }[] | null;
  },
  opts: { requireStable: boolean },
): ReturnType<ReturnType<BrokerContext["groups"]>["fetchOffsets"]> {
  if (
    !onGroup(ctx, request, { groupId: query.groupId, operation: "describe" })
  ) {
    return { errorCode: GROUP_REFUSED, topics: [] };
  }
  const named = query.topics === null
    ? null
    : byTopicAccess(ctx, request, query.topics, "describe");
  const answer = ctx.groups().fetchOffsets(
    query.groupId,
    named?.allowed ?? null,
    opts,
  );
  const shown = named !== null ? answer.topics : byTopicAccess(
    ctx,
    request,
    answer.topics,
    "describe",
  ).allowed;
  const refused = (named?.refused ?? []).map(
    (t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((partitionIndex) => ({
        partitionIndex,
        committedOffset: -1n,
        committedLeaderEpoch: -1,
        metadata: "",
        errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED,
      })),
    }),
  );
  return { errorCode: answer.errorCode, topics: [...shown, ...refused] };
}

export function handleOffsetFetch(
  ctx: BrokerContext,
  req: OffsetFetchRequest,
  request: RequestInfo,
): OffsetFetchResponseInput {
  const version = request.version;
  if (version >= 8) {
    return {
      throttleTimeMs: 0,
      topics: [],
      groups: req.groups.map((g) => {
        const answer = visibleOffsets(ctx, request, g, req);
        return { groupId: g.groupId, ...answer };
      }),
    };
  }
  const answer = visibleOffsets(ctx, request, req, req);
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
  request: RequestInfo,
): DescribeGroupsResponseInput {
  const coordinator = ctx.groups();
  return {
    throttleTimeMs: 0,
    groups: req.groups.map((id) => {
      if (!onGroup(ctx, request, { groupId: id, operation: "describe" })) {
        return {
          errorCode: GROUP_REFUSED,
          groupId: id,
          groupState: "",
          protocolType: "",
          protocolData: "",
          members: [],
          authorizedOperations: NO_AUTHORIZED_OPERATIONS,
        };
      }
      return {
        ...coordinator.describe(id),
        authorizedOperations: req.includeAuthorizedOperations
          ? authorizedOperations(ctx, request, { type: "group", name: id })
          : NO_AUTHORIZED_OPERATIONS,
      };
    }),
  };
}

export function handleListGroups(
  ctx: BrokerContext,
  req: ListGroupsRequest,
  request: RequestInfo,
): ListGroupsResponseInput {
  // DESCRIBE on the cluster shows every group, else those it may describe.
  const everyGroup = allowsOnCluster(ctx, request, "describe");
  const groups = ctx.groups().list(req.statesFilter).filter((g) =>
    (req.typesFilter.length === 0 ||
      req.typesFilter.some((t) => t.toLowerCase() === g.groupType)) &&
    (everyGroup ||
      onGroup(ctx, request, { groupId: g.groupId, operation: "describe" }))
  );
  return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, groups };
}

export async function handleDeleteGroups(
  ctx: BrokerContext,
  req: DeleteGroupsRequest,
  request: RequestInfo,
): Promise<DeleteGroupsResponseInput> {
  const coordinator = ctx.groups();
  const results = [];
  for (const groupId of req.groupsNames) {
    results.push({
      groupId,
      errorCode: onGroup(ctx, request, { groupId, operation: "delete" })
        ? await coordinator.deleteGroup(groupId)
        : GROUP_REFUSED,
    });
  }
  return { throttleTimeMs: 0, results };
}

export async function handleOffsetDelete(
  ctx: BrokerContext,
  req: OffsetDeleteRequest,
  request: RequestInfo,
): Promise<OffsetDeleteResponseInput> {
  if (!onGroup(ctx, request, { groupId: req.groupId, operation: "delete" })) {
    return { throttleTimeMs: 0, errorCode: GROUP_REFUSED, topics: [] };
  }
  const { allowed, refused } = byTopicAccess(ctx, request, req.topics, "read");
  const answer = await ctx.groups().deleteOffsets(req.groupId, allowed);
  return {
    throttleTimeMs: 0,
    ...answer,
    topics: [
      ...answer.topics,
      ...refuseAll(refused, ErrorCode.TOPIC_AUTHORIZATION_FAILED),
    ],
  };
}
