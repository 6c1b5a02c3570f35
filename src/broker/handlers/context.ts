/**
 * What request handlers may touch: the broker's identity, its topic registry
 * and partitions, and the topic operations that combine both. Handlers are
 * plain functions of (context, request) so they can be tested without sockets.
 */
import type { GroupCoordinator } from "../groups/coordinator.ts";
import type { PartitionManager } from "../partitions.ts";
import type { ProducerIdAllocator } from "../producers/producer_ids.ts";
import type { TopicInfo, TopicStore } from "../topics.ts";

export interface BrokerIdentity {
  readonly nodeId: number;
  readonly clusterId: string;
  readonly host: string;
  readonly port: number;
}

export interface TopicDefaults {
  readonly autoCreate: boolean;
  readonly partitions: number;
  readonly replicationFactor: number;
}

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  configs: Record<string, string>;
}

/** Who sent a request, and in which version. */
export interface RequestInfo {
  readonly version: number;
  readonly clientId: string;
  readonly clientHost: string;
}

export interface BrokerContext {
  readonly self: BrokerIdentity;
  readonly topics: TopicStore;
  readonly partitions: PartitionManager;
  readonly topicDefaults: TopicDefaults;
  /** Brokers that can hold a replica now (1 for a single broker). */
  liveBrokers(): number;
  /** Creates a topic and opens its partitions; throws TopicError. */
  createTopic(spec: TopicSpec): TopicInfo;
  /** Deletes a topic and its data; throws TopicError. */
  deleteTopic(name: string): TopicInfo;
  /**
   * The group coordinator. Calling `groups()` first creates the internal
   * offsets topic if it does not exist yet (as Kafka does on first use).
   */
  groups(): GroupCoordinator;
  readonly producerIds: ProducerIdAllocator;
  /** Aborted when the broker stops, so long polls end at once. */
  readonly stopping: AbortSignal;
  log(message: string): void;
}
