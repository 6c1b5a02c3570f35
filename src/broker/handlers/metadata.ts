/**
 * Metadata (v4-10): brokers, controller, topics and their partition leaders.
 * Topics named by a client that allows auto-creation are created here, which
 * is how kcat -P and the kafkajs producer get their topics.
 */
import {
  ErrorCode,
  type MetadataRequest,
  type MetadataResponseInput,
  type MetadataResponseTopicsInput,
} from "../../protocol/mod.ts";
import { OFFSETS_TOPIC } from "../groups/offsets_log.ts";
import { TopicError, type TopicInfo } from "../topics.ts";
import type { BrokerContext } from "./context.ts";

const NO_AUTHORIZED_OPERATIONS = -2147483648;
const ZERO_UUID = "0".repeat(32);

export function describeTopic(
  ctx: BrokerContext,
  topic: TopicInfo,
): MetadataResponseTopicsInput {
  const self = ctx.self.nodeId;
  const partitions = [];
  for (let i = 0; i < topic.partitions; i++) {
    partitions.push({
      errorCode: ErrorCode.NONE,
      partitionIndex: i,
      leaderId: self,
      leaderEpoch: 0,
      replicaNodes: [self],
      isrNodes: [self],
      offlineReplicas: [],
    });
  }
  return {
    errorCode: ErrorCode.NONE,
    name: topic.name,
    topicId: topic.topicId,
    isInternal: topic.name === OFFSETS_TOPIC,
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

function lookupOrCreate(
  ctx: BrokerContext,
  name: string,
  allowAutoCreate: boolean,
): MetadataResponseTopicsInput {
  // The offsets topic is created by the coordinator, with its own settings.
  if (name === OFFSETS_TOPIC) ctx.groups();
  const known = ctx.topics.get(name);
  if (known !== undefined) return describeTopic(ctx, known);
  if (!allowAutoCreate || !ctx.topicDefaults.autoCreate) {
    return topicError(name, ZERO_UUID, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  }
  try {
    const created = ctx.createTopic({
      name,
      partitions: ctx.topicDefaults.partitions,
      replicationFactor: ctx.topicDefaults.replicationFactor,
      configs: {},
    });
    ctx.log(`auto-created topic "${name}"`);
    return describeTopic(ctx, created);
  } catch (err) {
    if (err instanceof TopicError) return topicError(name, ZERO_UUID, err.code);
    throw err;
  }
}

export function handleMetadata(
  ctx: BrokerContext,
  req: MetadataRequest,
): MetadataResponseInput {
  let topics: MetadataResponseTopicsInput[];
  if (req.topics === null) {
    topics = ctx.topics.list().map((t) => describeTopic(ctx, t));
  } else {
    topics = req.topics.map((t) => {
      if (t.name === null) {
        const byId = ctx.topics.byId(t.topicId);
        return byId === undefined
          ? topicError("", t.topicId, ErrorCode.UNKNOWN_TOPIC_ID)
          : describeTopic(ctx, byId);
      }
      return lookupOrCreate(ctx, t.name, req.allowAutoTopicCreation);
    });
  }
  return {
    throttleTimeMs: 0,
    brokers: [{
      nodeId: ctx.self.nodeId,
      host: ctx.self.host,
      port: ctx.self.port,
      rack: null,
    }],
    clusterId: ctx.self.clusterId,
    controllerId: ctx.self.nodeId,
    topics,
    clusterAuthorizedOperations: NO_AUTHORIZED_OPERATIONS,
  };
}
