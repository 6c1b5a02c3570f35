/**
 * Metadata (v0-12): brokers, controller, topics and their partition leaders.
 * Topics named by a client that allows auto-creation are created here, which
 * is how kcat -P and the kafkajs producer get their topics. Before v4 a
 * request cannot say whether to auto-create, so the broker's setting alone
 * decides (as in Kafka), and in v0 an empty topic list means every topic
 * (null only exists from v1): kafka-python 2.0.2 speaks v0/v1 only.
 */
import {
  ErrorCode,
  type MetadataRequest,
  type MetadataResponseInput,
  type MetadataResponseTopicsInput,
} from "../../protocol/mod.ts";
import { OFFSETS_TOPIC } from "../groups/offsets_log.ts";
import { INTERNAL_TOPICS, TopicError, type TopicInfo } from "../topics.ts";
import { TXN_STATE_TOPIC } from "../transactions/txn_records.ts";
import {
  allows,
  allowsOnCluster,
  authorizedOperations,
  clusterAuthorizedOperations,
  NO_AUTHORIZED_OPERATIONS,
} from "./authorize.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";

const ZERO_UUID = "0".repeat(32);

/**
 * The live brokers as Metadata and DescribeCluster list them (no racks), at
 * their addresses on the listener the request came in on.
 */
export function liveBrokers(
  ctx: BrokerContext,
  listener: string,
): { nodeId: number; host: string; port: number; rack: null }[] {
  return ctx.cluster.brokers(listener).map((b) => ({
    nodeId: b.nodeId,
    host: b.host,
    port: b.port,
    rack: null,
  }));
}

export function describeTopic(
  ctx: BrokerContext,
  topic: TopicInfo,
): MetadataResponseTopicsInput {
  const partitions = [];
  for (let i = 0; i < topic.partitions; i++) {
    const view = ctx.cluster.partitionView(topic, i);
    partitions.push({
      errorCode: view.leaderId === -1
        ? ErrorCode.LEADER_NOT_AVAILABLE
        : ErrorCode.NONE,
      partitionIndex: i,
      leaderId: view.leaderId,
      leaderEpoch: view.leaderEpoch,
      replicaNodes: [...view.replicas],
      isrNodes: [...view.isr],
      offlineReplicas: [...view.offline],
    });
  }
  return {
    errorCode: ErrorCode.NONE,
    name: topic.name,
    topicId: topic.topicId,
    isInternal: INTERNAL_TOPICS.has(topic.name),
    partitions,
    topicAuthorizedOperations: NO_AUTHORIZED_OPERATIONS,
  };
}

function topicError(
  name: string,
  topicId: string,
  errorCode: number,
): MetadataResponseTopicsInput {
  return {
    errorCode,
    name,
    topicId,
    isInternal: false,
    partitions: [],
    topicAuthorizedOperations: NO_AUTHORIZED_OPERATIONS,
  };
}

function describable(
  ctx: BrokerContext,
  request: RequestInfo,
  name: string,
): boolean {
  return allows(ctx, request, { type: "topic", name, operation: "describe" });
}

async function lookupOrCreate(
  ctx: BrokerContext,
  request: RequestInfo,
  options: { name: string; allowAutoCreate: boolean },
): Promise<MetadataResponseTopicsInput> {
  const { name, allowAutoCreate } = options;
  if (!describable(ctx, request, name)) {
    return topicError(name, ZERO_UUID, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
  }
  // Internal topics are created by their coordinator, with its settings.
  if (name === OFFSETS_TOPIC) ctx.groups();
  if (name === TXN_STATE_TOPIC) ctx.transactions();
  const known = ctx.cluster.topic(name);
  if (known !== undefined) return describeTopic(ctx, known);
  if (!allowAutoCreate || !ctx.topicDefaults.autoCreate) {
    return topicError(name, ZERO_UUID, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  }
  if (
    !allowsOnCluster(ctx, request, "create") &&
    !allows(ctx, request, { type: "topic", name, operation: "create" })
  ) {
    return topicError(name, ZERO_UUID, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
  }
  try {
    const created = await ctx.cluster.createTopic({
      name,
      partitions: ctx.topicDefaults.partitions,
      replicationFactor: Math.min(
        ctx.topicDefaults.replicationFactor,
        ctx.cluster.liveBrokers(),
      ),
      configs: {},
    });
    ctx.log(`auto-created topic "${name}"`);
    return describeTopic(ctx, created);
  } catch (err) {
    if (err instanceof TopicError) {
      // Another request may have created it meanwhile.
      const now = ctx.cluster.topic(name);
      if (now !== undefined) return describeTopic(ctx, now);
      return topicError(name, ZERO_UUID, err.code);
    }
    throw err;
  }
}

/**
 * The controller Metadata names: while the controller group elects, this
 * broker, which forwards what a controller would do, as a KRaft broker
 * names some live broker. -1 would leave clients that send to "the
 * controller" (kafkajs' admin calls and idempotent InitProducerId) with
 * nowhere to go until their next metadata refresh.
 */
function controllerForClients(
  ctx: BrokerContext,
  brokers: readonly { nodeId: number }[],
): number {
  const controllerId = ctx.cluster.controllerId();
  if (controllerId >= 0) return controllerId;
  const listed = brokers.some((b) => b.nodeId === ctx.self.nodeId);
  return listed ? ctx.self.nodeId : brokers[0]?.nodeId ?? -1;
}

export async function handleMetadata(
  ctx: BrokerContext,
  req: MetadataRequest,
  request: RequestInfo,
): Promise<MetadataResponseInput> {
  let topics: MetadataResponseTopicsInput[];
  const all = req.topics === null ||
    (request.version === 0 && req.topics.length === 0);
  if (all || req.topics === null) {
    // Kafka lists only the topics the principal may describe.
    topics = ctx.cluster.topics()
      .filter((t) => describable(ctx, request, t.name))
      .map((t) => describeTopic(ctx, t));
  } else {
    topics = await Promise.all(req.topics.map((t) => {
      if (t.name === null) {
        const byId = ctx.cluster.topicById(t.topicId);
        return byId === undefined
          ? topicError("", t.topicId, ErrorCode.UNKNOWN_TOPIC_ID)
          : !describable(ctx, request, byId.name)
          ? topicError("", t.topicId, ErrorCode.TOPIC_AUTHORIZATION_FAILED)
          : describeTopic(ctx, byId);
      }
      return lookupOrCreate(ctx, request, {
        name: t.name,
        allowAutoCreate: req.allowAutoTopicCreation,
      });
    }));
  }
  if (req.includeTopicAuthorizedOperations) {
    for (const t of topics) {
      if (t.errorCode !== ErrorCode.NONE || t.name === null) continue;
      t.topicAuthorizedOperations = authorizedOperations(ctx, request, {
        type: "topic",
        name: t.name,
      });
    }
  }
  const brokers = liveBrokers(ctx, request.listener.name);
  return {
    throttleTimeMs: 0,
    brokers,
    clusterId: ctx.cluster.clusterId(),
    controllerId: controllerForClients(ctx, brokers),
    topics,
    clusterAuthorizedOperations: req.includeClusterAuthorizedOperations
      ? clusterAuthorizedOperations(ctx, request)
      : NO_AUTHORIZED_OPERATIONS,
  };
}
