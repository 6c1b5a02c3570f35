/**
 * CreateTopics (v2-7), DeleteTopics (v1-6) and CreatePartitions (v0-3). A
 * partition count or replication factor of -1 means "the broker's default",
 * which kafkajs and @platformatic/kafka send when the caller leaves them out.
 */
import {
  type CreatePartitionsRequest,
  type CreatePartitionsResponseInput,
  type CreateTopicsRequest,
  type CreateTopicsResponseInput,
  type CreateTopicsResponseTopicsInput,
  type DeleteTopicsRequest,
  type DeleteTopicsResponseInput,
  ErrorCode,
} from "../../protocol/mod.ts";
import { TopicError } from "../topics.ts";
import type { TopicSpec } from "../ports.ts";
import { allows, allowsOnCluster, topicRefusal } from "./authorize.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";

/** Throws the refusal a TopicError carries when the topic operation is not allowed. */
function authorizeTopic(
  ctx: BrokerContext,
  request: RequestInfo,
  resource: { name: string; operation: "create" | "delete" | "alter" },
): void {
  const allowed = allows(ctx, request, { type: "topic", ...resource }) ||
    (resource.operation === "create" &&
      allowsOnCluster(ctx, request, "create"));
  if (!allowed) {
    throw new TopicError(
      ErrorCode.TOPIC_AUTHORIZATION_FAILED,
      topicRefusal(resource.operation, resource.name),
    );
  }
}

const TOPIC_CONFIG_SOURCE = 1;

function specOf(
  ctx: BrokerContext,
  t: CreateTopicsRequest["topics"][number],
): TopicSpec {
  const configs: Record<string, string> = {};
  for (const c of t.configs) {
    if (c.value !== null) configs[c.name] = c.value;
  }
  if (t.assignments.length > 0) {
    // Manual assignment: raftq places replicas itself, but accepts an
    // assignment that names only live brokers and one replica count.
    const rf = t.assignments[0]!.brokerIds.length;
    const known = new Set(ctx.cluster.brokers().map((b) => b.nodeId));
    for (const a of t.assignments) {
      if (
        a.brokerIds.length !== rf || a.brokerIds.some((id) => !known.has(id)) ||
        a.partitionIndex < 0 || a.partitionIndex >= t.assignments.length
      ) {
        throw new TopicError(
          ErrorCode.INVALID_REPLICA_ASSIGNMENT,
          `Replica assignment for partition ${a.partitionIndex} names brokers [${a.brokerIds}] that cannot hold it`,
        );
      }
    }
    return {
      name: t.name,
      partitions: t.assignments.length,
      replicationFactor: rf,
      configs,
    };
  }
  return {
    name: t.name,
    partitions: t.numPartitions === -1
      ? ctx.topicDefaults.partitions
      : t.numPartitions,
    replicationFactor: t.replicationFactor === -1
      ? ctx.topicDefaults.replicationFactor
      : t.replicationFactor,
    configs,
  };
}

export async function handleCreateTopics(
  ctx: BrokerContext,
  req: CreateTopicsRequest,
  request: RequestInfo,
): Promise<CreateTopicsResponseInput> {
  const topics = await Promise.all(req.topics.map(async (t): Promise<
    CreateTopicsResponseTopicsInput
  > => {
    try {
      authorizeTopic(ctx, request, { name: t.name, operation: "create" });
      const spec = specOf(ctx, t);
      if (req.validateOnly) {
        ctx.cluster.checkTopic(spec);
        return {
          name: t.name,
          errorCode: ErrorCode.NONE,
          errorMessage: null,
          numPartitions: spec.partitions,
          replicationFactor: spec.replicationFactor,
          configs: [],
        };
      }
      const info = await ctx.cluster.createTopic(spec);
      ctx.log(
        `created topic "${info.name}" with ${info.partitions} partition(s)`,
      );
      return {
        name: info.name,
        topicId: info.topicId,
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        numPartitions: info.partitions,
        replicationFactor: info.replicationFactor,
        configs: Object.entries(info.configs).map(([name, value]) => ({
          name,
          value,
          readOnly: false,
          configSource: TOPIC_CONFIG_SOURCE,
          isSensitive: false,
        })),
      };
    } catch (err) {
      if (!(err instanceof TopicError)) throw err;
      return { name: t.name, errorCode: err.code, errorMessage: err.message };
    }
  }));
  return { throttleTimeMs: 0, topics };
}

export async function handleDeleteTopics(
  ctx: BrokerContext,
  req: DeleteTopicsRequest,
  request: RequestInfo,
): Promise<DeleteTopicsResponseInput> {
  const version = request.version;
  const named = version >= 6
    ? req.topics.map((t) => ({
      name: t.name ?? ctx.cluster.topicById(t.topicId)?.name ?? null,
      topicId: t.topicId,
    }))
    : req.topicNames.map((name) => ({ name, topicId: "0".repeat(32) }));
  const responses = await Promise.all(named.map(async ({ name, topicId }) => {
    if (name === null) {
      return {
        name: null,
        topicId,
        errorCode: ErrorCode.UNKNOWN_TOPIC_ID,
        errorMessage: `Topic id ${topicId} does not exist`,
      };
    }
    try {
      authorizeTopic(ctx, request, { name, operation: "delete" });
      const info = await ctx.cluster.deleteTopic(name);
      ctx.log(`deleted topic "${name}"`);
      return {
        name,
        topicId: info.topicId,
        errorCode: ErrorCode.NONE,
        errorMessage: null,
      };
    } catch (err) {
      if (!(err instanceof TopicError)) throw err;
      return { name, topicId, errorCode: err.code, errorMessage: err.message };
    }
  }));
  return { throttleTimeMs: 0, responses };
}

export async function handleCreatePartitions(
  ctx: BrokerContext,
  req: CreatePartitionsRequest,
  request: RequestInfo,
): Promise<CreatePartitionsResponseInput> {
  const seen = new Map<string, number>();
  for (const t of req.topics) seen.set(t.name, (seen.get(t.name) ?? 0) + 1);
  const results = await Promise.all(req.topics.map(async (t) => {
    if (seen.get(t.name)! > 1) {
      return {
        name: t.name,
        errorCode: ErrorCode.INVALID_REQUEST,
        errorMessage: `Topic "${t.name}" appears more than once in the request`,
      };
    }
    if (
      !allows(ctx, request, { type: "topic", name: t.name, operation: "alter" })
    ) {
      return {
        name: t.name,
        errorCode: ErrorCode.TOPIC_AUTHORIZATION_FAILED,
        errorMessage: topicRefusal("alter", t.name),
      };
    }
    const outcome = await ctx.cluster.createPartitions(t.name, t.count, {
      assignments: t.assignments?.map((a) => a.brokerIds) ?? null,
      validateOnly: req.validateOnly,
    });
    if (outcome.errorCode === ErrorCode.NONE && !req.validateOnly) {
      ctx.log(`topic "${t.name}" now has ${t.count} partitions`);
    }
    return { name: t.name, ...outcome };
  }));
  return { throttleTimeMs: 0, results };
}
