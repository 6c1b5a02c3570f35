/**
 * The ports of the broker: what request handlers and the group coordinator
 * ask of the cluster, split by role. The replicated view
 * (cluster/view.ts) implements them all over the controller group's state
 * and the Raft host; handlers import only these interfaces, so nothing
 * below the broker's composition imports upward.
 */
import type { AppendOutcome, Partition } from "./partitions.ts";
import type { ProducerSummary } from "./producers/producer_state.ts";
import type { TopicInfo } from "./topics.ts";
import type {
  AclBinding,
  Command,
  ConfigOp,
  ScramMechanismName,
  StoredScramCredential,
} from "./controller/mod.ts";
import type { DynamicBrokerConfigs } from "./configs.ts";

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

/** Who leads a partition, as a broker that does not lead it knows. */
export interface LeaderHint {
  readonly leaderId: number;
  readonly leaderEpoch: number;
}

/**
 * `leader`: on NOT_LEADER_OR_FOLLOWER, the live leader this broker knows
 * of, which KIP-951 clients go to without asking Metadata first.
 */
export type Leading =
  | { ok: true; partition: Partition }
  | { ok: false; errorCode: number; leader?: LeaderHint };

/** `logAppendTimeMs`: the time a LogAppendTime topic stamped the write with. */
export type WriteOutcome =
  | (AppendOutcome & { logAppendTimeMs?: bigint })
  | { ok: false; errorCode: number };

/** How a produce request asks for its write to be held. */
export interface WriteOptions {
  /**
   * -1 (acks=all) holds the write to the topic's min.insync.replicas;
   * 1 and 0 to a Raft commit alone.
   */
  readonly acks: number;
  /** How long acks=all waits for min.insync.replicas after the commit. */
  readonly timeoutMs: number;
}

/** A partition whose replicas are moving (Kafka's ongoing reassignment). */
export interface Reassignment {
  readonly topic: string;
  readonly partition: number;
  /** Every broker hosting the partition while it moves. */
  readonly replicas: readonly number[];
  readonly addingReplicas: readonly number[];
  readonly removingReplicas: readonly number[];
}

/** An AlterConfigs (`replace`) or IncrementalAlterConfigs change. */
export interface ConfigChange {
  readonly replace: boolean;
  readonly ops: ConfigOp[];
  readonly validateOnly: boolean;
}

/** The outcome of one partition's entry in an admin request. */
export interface PartitionOutcome {
  readonly errorCode: number;
  readonly errorMessage: string | null;
}

/** How far each replica's log has come, as the partition's leader knows it. */
export interface QuorumView {
  readonly leaderId: number;
  readonly leaderEpoch: number;
  /**
   * Positions are Raft log indexes: commit is what is replicated to a
   * quorum, last what the leader's log holds.
   */
  readonly commitIndex: number;
  readonly lastIndex: number;
  readonly voters: readonly ReplicaPosition[];
  /** Learners: replicas still catching up before they may vote. */
  readonly observers: readonly ReplicaPosition[];
}

export interface ReplicaPosition {
  readonly replicaId: number;
  /** The highest index known to be in the replica's log. */
  readonly matchIndex: number;
}

/** Who is in the cluster and where each topic's partitions are led. */
export interface MetadataPort {
  clusterId(): string;
  /** -1 while no controller is elected. */
  controllerId(): number;
  /** Addresses on the named listener; the first listener's by default. */
  brokers(listener?: string): BrokerAddress[];
  /** Brokers that can take a replica now. */
  liveBrokers(): number;
  topic(name: string): TopicInfo | undefined;
  topicById(topicId: string): TopicInfo | undefined;
  topics(): TopicInfo[];
  partitionView(topic: TopicInfo, index: number): PartitionView;
  /** The dynamic broker configs in force for this broker. */
  brokerConfigs(): DynamicBrokerConfigs;
}

/** Reads and writes of the partitions this broker leads. */
export interface PartitionPort {
  /** The local partition when this broker leads it, else the error to answer. */
  leading(topic: string, index: number): Leading;
  /**
   * Appends a record set to a partition this broker leads, resolving once
   * it is committed by the partition's Raft group and applied here.
   * Whatever is synchronous happens before this returns, so the order of
   * calls is the order of offsets.
   */
  write(
    p: Partition,
    records: Uint8Array,
    opts?: WriteOptions,
  ): Promise<WriteOutcome>;
  /**
   * The idempotent producers with state in a partition this broker leads
   * (DescribeProducers), else the error to answer: a replica that does
   * not lead may lag, so only the leader's table is the partition's.
   */
  producers(
    topic: string,
    index: number,
  ): ProducerSummary[] | { errorCode: number };
  /**
   * Deletes the records below `beforeOffset` (-1: the high watermark) of a
   * partition this broker leads, on every replica: a command of the
   * partition's Raft group. Resolves with the new log start once it is
   * committed and applied here; an offset past the high watermark is
   * OFFSET_OUT_OF_RANGE and moves nothing.
   */
  deleteRecords(
    topic: string,
    partition: number,
    beforeOffset: bigint,
  ): Promise<DeleteRecordsOutcome>;
}

/** lowWatermark is the log start after the deletion, -1 with an error. */
export interface DeleteRecordsOutcome {
  readonly errorCode: number;
  readonly lowWatermark: bigint;
}

/** Changes to topics and placement, each a controller command. */
export interface AdminPort {
  /** Throws TopicError with the Kafka code if the topic could not be created. */
  checkTopic(spec: TopicSpec): void;
  createTopic(spec: TopicSpec): Promise<TopicInfo>;
  deleteTopic(name: string): Promise<TopicInfo>;
  /**
   * Raises the topic's partition count to `count`, each new partition on
   * the replicas `assignments` names (or spread by the controller when
   * null); with `validateOnly` only checks. Resolves once this broker's
   * metadata has the new partitions.
   */
  createPartitions(
    topic: string,
    count: number,
    options: { assignments: number[][] | null; validateOnly: boolean },
  ): Promise<PartitionOutcome>;
  /**
   * Changes a topic's own configs (replace: to exactly the ones set), or
   * with `validateOnly` only checks; resolves once this broker's metadata
   * holds the change.
   */
  alterTopicConfigs(
    topic: string,
    change: ConfigChange,
  ): Promise<PartitionOutcome>;
  /**
   * Changes dynamic broker configs of broker `broker` (a node id), or with
   * "" every broker's default; as alterTopicConfigs otherwise.
   */
  alterBrokerConfigs(
    broker: string,
    change: ConfigChange,
  ): Promise<PartitionOutcome>;
  /**
   * Starts moving a partition to `replicas` (the first becomes its
   * preferred leader), or cancels its move with null; resolves once the
   * controller accepted or refused, long before the move is done.
   */
  reassign(
    topic: string,
    partition: number,
    replicas: readonly number[] | null,
  ): Promise<PartitionOutcome>;
  /**
   * Waits (up to `timeoutMs`) until the partition's preferred replica leads
   * it: ELECTION_NOT_NEEDED if it already does. Leader balancing makes the
   * move; this only waits for it.
   */
  electPreferred(
    topic: string,
    partition: number,
    timeoutMs: number,
  ): Promise<PartitionOutcome>;
  /** The moves running now, by topic then partition. */
  reassignments(): Reassignment[];
  /** The replicas' positions if this broker leads the partition, else the error to answer. */
  quorum(
    topic: string,
    partition: number,
  ): QuorumView | { errorCode: number; leaderId: number };
}

/** What this broker stores, as DescribeLogDirs reports it. */
export interface StoragePort {
  /** The broker's one log directory and every partition replica in it. */
  logDir(): LogDirView;
}

export interface LogDirView {
  /** Absolute. */
  readonly path: string;
  /** Size of the volume holding it, and what is free there; -1n if unknown. */
  readonly totalBytes: bigint;
  readonly usableBytes: bigint;
  readonly replicas: readonly ReplicaLogView[];
}

export interface ReplicaLogView {
  readonly topic: string;
  readonly partition: number;
  /** Bytes of record batches in the replica's segment files. */
  readonly sizeBytes: number;
  /**
   * How many offsets the replica is known to lack below the high
   * watermark: 0 on the leader, and on a follower unless it is copying
   * offsets a snapshot named.
   */
  readonly offsetLag: bigint;
}

/** SASL/SCRAM users, kept in the controller state. */
export interface UsersPort {
  scramCredentials(
    user: string,
  ): ReadonlyMap<ScramMechanismName, StoredScramCredential>;
  /** Sorted. */
  scramUsers(): string[];
  /** Resolves once the change is applied on this broker too. */
  alterScramCredentials(
    change: Omit<Extract<Command, { type: "alterScramCredentials" }>, "type">,
  ): Promise<PartitionOutcome>;
}

/** ACL bindings, kept in the controller state. */
export interface AclsPort {
  /** The same array until the bindings change. */
  acls(): readonly AclBinding[];
  /** Each resolves once the change is applied on this broker too. */
  createAcls(bindings: AclBinding[]): Promise<PartitionOutcome>;
  deleteAcls(bindings: AclBinding[]): Promise<PartitionOutcome>;
}

/** Every port: what the handlers get. */
export type ClusterView =
  & MetadataPort
  & PartitionPort
  & AdminPort
  & StoragePort
  & UsersPort
  & AclsPort;

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  configs: Record<string, string>;
}
