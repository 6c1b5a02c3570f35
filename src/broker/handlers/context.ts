/**
 * What request handlers may touch: the broker's identity, its topic registry
 * and partitions, and the topic operations that combine both. Handlers are
 * plain functions of (context, request) so they can be tested without sockets.
 */
import type { GroupCoordinator } from "../groups/coordinator.ts";
import type { AppendOutcome, Partition } from "../partitions.ts";
import type { ProducerIdSource } from "../producers/producer_ids.ts";
import type { TopicInfo } from "../topics.ts";

export interface BrokerIdentity {
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
}

/** A broker as Metadata lists it. */
export interface BrokerAddress {
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
}

/** One partition's placement as Metadata reports it. */
export interface PartitionView {
  /** -1 while no leader is known (clients then see LEADER_NOT_AVAILABLE). */
  readonly leaderId: number;
  readonly leaderEpoch: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  readonly offline: readonly number[];
}

export type Leading =
  | { ok: true; partition: Partition }
  | { ok: false; errorCode: number };

export type WriteOutcome = AppendOutcome | { ok: false; errorCode: number };

/**
 * Where topics live and who leads their partitions: one broker on its own,
 * or a replicated cluster run by a controller Raft group. Handlers go
 * through this and never learn which.
 */
export interface ClusterView {
  clusterId(): string;
  /** -1 while no controller is elected. */
  controllerId(): number;
  brokers(): BrokerAddress[];
  /** Brokers that can take a replica now. */
  liveBrokers(): number;
  topic(name: string): TopicInfo | undefined;
  topicById(topicId: string): TopicInfo | undefined;
  topics(): TopicInfo[];
  partitionView(topic: TopicInfo, index: number): PartitionView;
  /** The local partition when this broker leads it, else the error to answer. */
  leading(topic: string, index: number): Leading;
  /**
   * Appends a record set to a partition this broker leads, resolving once it
   * is durable (one broker) or committed and applied (a cluster). Whatever is
   * synchronous happens before this returns, so the order of calls is the
   * order of offsets.
   */
  write(p: Partition, records: Uint8Array): Promise<WriteOutcome>;
  /** Throws TopicError with the Kafka code if the topic could not be created. */
  checkTopic(spec: TopicSpec): void;
  createTopic(spec: TopicSpec): Promise<TopicInfo>;
  deleteTopic(name: string): Promise<TopicInfo>;
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
  readonly cluster: ClusterView;
  readonly topicDefaults: TopicDefaults;
  /**
   * The group coordinator. Calling `groups()` first creates the internal
   * offsets topic if it does not exist yet (as Kafka does on first use).
   */
  groups(): GroupCoordinator;
  readonly producerIds: ProducerIdSource;
  /** Aborted when the broker stops, so long polls end at once. */
  readonly stopping: AbortSignal;
  log(message: string): void;
}
