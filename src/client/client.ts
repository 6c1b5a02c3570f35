/**
 * A small Kafka client: metadata, topic admin, produce of ready-made record
 * batches, fetch and list offsets. It routes each partition request to the
 * partition leader over one connection per broker, and retries retriable
 * errors (a leader moved or not yet elected) after refreshing metadata.
 */
import {
  type AclBinding,
  ApiKey,
  ErrorCode,
  type RequestInput,
  type ResponseBodies,
  saltPassword,
  SCRAM_HASHES,
  type ScramMechanism,
} from "../protocol/mod.ts";
import {
  BrokerConnection,
  type ClientApi,
  type ConnectionOptions,
  parseAddress,
  type SecurityOptions,
} from "./connection.ts";
import {
  CONSUMER_PROTOCOL_TYPE,
  decodeAssignment,
  type TopicPartitions,
} from "./consumer_protocol.ts";
import { ConnectionError, KafkaError, throwIfError } from "./errors.ts";
import {
  aclCreation,
  type AclFilter,
  aclFilterToWire,
  aclFromWire,
} from "./acls.ts";

export interface BrokerMetadata {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
}

export interface PartitionMetadata {
  partition: number;
  errorCode: number;
  /** Node id of the leader; -1 while there is none. */
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
}

export interface TopicMetadata {
  name: string;
  topicId: string;
  errorCode: number;
  isInternal: boolean;
  partitions: PartitionMetadata[];
}

export interface ClusterMetadata {
  clusterId: string | null;
  controllerId: number;
  brokers: BrokerMetadata[];
  topics: TopicMetadata[];
}

/** A partition whose replicas are moving. */
export interface PartitionReassignment {
  topic: string;
  partition: number;
  /** Every broker hosting the partition while it moves. */
  replicas: number[];
  addingReplicas: number[];
  removingReplicas: number[];
}

/** One replica's position in a partition's replicated log. */
export interface ReplicaPosition {
  nodeId: number;
  /** As the broker reports it (raftq: its Raft log index). */
  logEndOffset: bigint;
  /** False for a replica still catching up before it may vote. */
  voter: boolean;
}

/** DescribeQuorum for one partition, answered by its leader. */
export interface PartitionQuorum {
  leader: number;
  leaderEpoch: number;
  highWatermark: bigint;
  replicas: ReplicaPosition[];
}

/** DescribeCluster: the brokers and controller as the asked broker knows them. */
export interface ClusterDescription {
  clusterId: string;
  /** -1 while no controller is elected. */
  controllerId: number;
  brokers: BrokerMetadata[];
}

/** An idempotent producer's state in one partition (DescribeProducers). */
export interface ProducerState {
  producerId: bigint;
  producerEpoch: number;
  /** The sequence number of its last record in the partition. */
  lastSequence: number;
  lastTimestamp: bigint;
}

/** Below the default request timeout, so that the broker answers first. */
const ELECTION_TIMEOUT_MS = 10_000;

export interface ClientOptions {
  clientId?: string;
  /** How long a request may wait for its answer [30 s]. */
  requestTimeoutMs?: number;
  /**
   * Pause before the first retry of a retriable error; doubles per retry up
   * to 1 s, for at most `retries` retries [100 ms].
   */
  retryBackoffMs?: number;
  /** [8], enough to ride out a partition leader election. */
  retries?: number;
  /** TLS and SASL, for brokers whose listener asks for them. */
  security?: SecurityOptions;
}

/** A user's SCRAM credentials as the broker describes them. */
export interface UserCredentials {
  user: string;
  credentials: { mechanism: ScramMechanism; iterations: number }[];
}

/** Kafka's ScramMechanism ids (1, 2), in order. */
const SCRAM_MECHANISMS: readonly ScramMechanism[] = [
  "SCRAM-SHA-256",
  "SCRAM-SHA-512",
];
const SCRAM_ITERATIONS = 4096;
const SCRAM_SALT_BYTES = 32;

export interface BrokerAddress {
  nodeId: number;
  host: string;
  port: number;
}

/** A transactional id as ListTransactions shows it. */
export interface TransactionListing {
  transactionalId: string;
  producerId: bigint;
  /** Kafka's TransactionState name: Empty, Ongoing, PrepareCommit, ... */
  state: string;
}

/** What a transaction coordinator holds of a transactional id. */
export interface TransactionDescription extends TransactionListing {
  producerEpoch: number;
  timeoutMs: number;
  /** When its latest transaction began, -1 before its first. */
  startTimeMs: bigint;
  /** The partitions in the open transaction (not yet marked, once ending). */
  partitions: { topic: string; partitions: number[] }[];
}

export interface GroupListing {
  groupId: string;
  /** "consumer" for consumer groups; "" for a group with offsets only. */
  protocolType: string;
  /** Empty, PreparingRebalance, CompletingRebalance, Stable or Dead. */
  state: string;
}

export interface GroupMemberDescription {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  /** Decoded for consumer groups; empty for other protocol types. */
  assignment: TopicPartitions[];
}

export interface GroupDescription {
  groupId: string;
  /** As GroupListing.state; "Dead" for a group the broker does not know. */
  state: string;
  protocolType: string;
  /** The chosen assignor ("range"), "" while none is chosen. */
  protocol: string;
  members: GroupMemberDescription[];
}

export interface PartitionOffset {
  topic: string;
  partition: number;
  offset: bigint;
}

/** Offsets that ListOffsets takes in place of a timestamp. */
export const LATEST_TIMESTAMP = -1n;
export const EARLIEST_TIMESTAMP = -2n;

const RETRY_BACKOFF_MAX_MS = 1_000;
/** FindCoordinator's key types: a group, or a transactional id. */
const KEY_TYPE = { group: 0, transaction: 1 } as const;
type CoordinatorKind = keyof typeof KEY_TYPE;
/** DescribeCluster's endpoint type of brokers (KIP-919). */
const ENDPOINT_TYPE_BROKERS = 1;
/** Errors that mean "ask FindCoordinator again, then retry". */
const COORDINATOR_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.NOT_COORDINATOR,
  ErrorCode.COORDINATOR_NOT_AVAILABLE,
  ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
]);
const DEFAULT_FETCH_MAX_BYTES = 4 * 1024 * 1024;

function isRetriable(error: unknown): boolean {
  return (error instanceof KafkaError && error.retriable) ||
    error instanceof ConnectionError;
}

/** A topic, or a broker by node id ("" for every broker's default). */
export interface ConfigResource {
  type: "topic" | "broker";
  name: string;
}

// Kafka's ConfigResource types and IncrementalAlterConfigs operations.
const RESOURCE_TYPES = { topic: 2, broker: 4 } as const;
const SET_CONFIG = 0;
const DELETE_CONFIG = 1;

export class KafkaClient {
  readonly #bootstrap: string[];
  readonly #connOpts: ConnectionOptions;
  readonly #retryBackoffMs: number;
  readonly #retries: number;
  /** By "host:port"; a promise so that concurrent callers share one dial. */
  readonly #connections = new Map<string, Promise<BrokerConnection>>();
  readonly #brokers = new Map<number, string>();
  /** Leader node id by "topic\0partition". */
  readonly #leaders = new Map<string, number>();
  /** Coordinator node id by kind and key ("group\0g1"). */
  readonly #coordinators = new Map<string, number>();
  #controllerId = -1;
  #closed = false;

  private constructor(bootstrap: string[], opts: ClientOptions) {
    this.#bootstrap = bootstrap;
    this.#connOpts = {
      clientId: opts.clientId ?? "raftq",
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
      ...(opts.security === undefined ? {} : { security: opts.security }),
    };
    this.#retryBackoffMs = opts.retryBackoffMs ?? 100;
    this.#retries = opts.retries ?? 8;
  }

  /**
   * Connects to the first reachable of the comma-separated bootstrap
   * addresses ("host:port,host:port").
   */
  static async connect(
    bootstrap: string,
    opts: ClientOptions = {},
  ): Promise<KafkaClient> {
    const addresses = bootstrap.split(",").map((s) => s.trim()).filter((s) =>
      s !== ""
    );
    if (addresses.length === 0) {
      throw new TypeError(`Invalid bootstrap "${bootstrap}": no address`);
    }
    for (const address of addresses) parseAddress(address);
    const client = new KafkaClient(addresses, opts);
    await client.#anyConnection();
    return client;
  }

  async metadata(
    topics: string[] | null,
    opts: { allowAutoTopicCreation?: boolean } = {},
  ): Promise<ClusterMetadata> {
    const conn = await this.#anyConnection();
    const response = await conn.request(ApiKey.Metadata, {
      topics: topics === null ? null : topics.map((name) => ({ name })),
      allowAutoTopicCreation: opts.allowAutoTopicCreation ?? false,
    });
    this.#controllerId = response.controllerId;
    for (const b of response.brokers) {
      this.#brokers.set(b.nodeId, `${formatHost(b.host)}:${b.port}`);
    }
    const result: ClusterMetadata = {
      clusterId: response.clusterId,
      controllerId: response.controllerId,
      brokers: response.brokers.map((b) => ({
        nodeId: b.nodeId,
        host: b.host,
        port: b.port,
        rack: b.rack,
      })),
      topics: response.topics.map((t) => ({
        name: t.name ?? "",
        topicId: t.topicId,
        errorCode: t.errorCode,
        isInternal: t.isInternal,
        partitions: t.partitions.map((p) => ({
          partition: p.partitionIndex,
          errorCode: p.errorCode,
          leader: p.leaderId,
          leaderEpoch: p.leaderEpoch,
          replicas: p.replicaNodes,
          isr: p.isrNodes,
        })),
      })),
    };
    for (const topic of result.topics) {
      for (const p of topic.partitions) {
        const key = partitionKey(topic.name, p.partition);
        if (p.leader >= 0) this.#leaders.set(key, p.leader);
        else this.#leaders.delete(key);
      }
    }
    return result;
  }

  /**
   * The partition count of a topic (creating it when the broker
   * auto-creates topics), waiting out a topic that is still being created.
   */
  partitionCount(topic: string): Promise<number> {
    return this.#retrying(async () => {
      const metadata = await this.metadata([topic], {
        allowAutoTopicCreation: true,
      });
      const t = metadata.topics.find((x) => x.name === topic);
      if (t === undefined) throw missingFromResponse("Metadata", topic);
      throwIfError(t.errorCode, `topic "${topic}"`);
      if (t.partitions.length === 0) {
        throw new KafkaError(
          ErrorCode.LEADER_NOT_AVAILABLE,
          `topic "${topic}" has no partitions yet`,
        );
      }
      return t.partitions.length;
    });
  }

  /** The partitions of an existing topic, ascending (never creating it). */
  async topicPartitions(topic: string): Promise<number[]> {
    const metadata = await this.metadata([topic]);
    const t = metadata.topics.find((x) => x.name === topic);
    if (t === undefined) throw missingFromResponse("Metadata", topic);
    throwIfError(t.errorCode, `topic "${topic}"`);
    return t.partitions.map((p) => p.partition).sort((a, b) => a - b);
  }

  /** The cluster's id, controller and live brokers (DescribeCluster). */
  async describeCluster(): Promise<ClusterDescription> {
    const conn = await this.#anyConnection();
    const response = await conn.request(ApiKey.DescribeCluster, {
      includeClusterAuthorizedOperations: false,
      endpointType: ENDPOINT_TYPE_BROKERS,
    });
    throwIfError(response.errorCode, response.errorMessage);
    return {
      clusterId: response.clusterId,
      controllerId: response.controllerId,
      brokers: response.brokers.map((b) => ({
        nodeId: b.brokerId,
        host: b.host,
        port: b.port,
        rack: b.rack,
      })),
    };
  }

  /** The idempotent producers with state in a partition, from its leader. */
  describeProducers(
    topic: string,
    partition: number,
  ): Promise<ProducerState[]> {
    return this.#withLeader(topic, partition, async (conn) => {
      const response = await conn.request(ApiKey.DescribeProducers, {
        topics: [{ name: topic, partitionIndexes: [partition] }],
      });
      const p = response.topics.find((t) => t.name === topic)?.partitions
        .find((x) => x.partitionIndex === partition);
      if (p === undefined) {
        throw missingFromResponse("DescribeProducers", topic);
      }
      throwIfError(p.errorCode, p.errorMessage ?? `${topic}-${partition}`);
      return p.activeProducers.map((a) => ({
        producerId: a.producerId,
        producerEpoch: a.producerEpoch,
        lastSequence: a.lastSequence,
        lastTimestamp: a.lastTimestamp,
      }));
    });
  }

  async createTopic(
    name: string,
    opts: {
      partitions?: number;
      replicationFactor?: number;
      configs?: Record<string, string>;
    } = {},
  ): Promise<void> {
    await this.#withController(async (conn) => {
      // From v4 on, -1 asks for the broker's default.
      const brokerDefault = conn.version(ApiKey.CreateTopics) >= 4 ? -1 : 1;
      const response = await conn.request(ApiKey.CreateTopics, {
        topics: [{
          name,
          numPartitions: opts.partitions ?? brokerDefault,
          replicationFactor: opts.replicationFactor ?? brokerDefault,
          assignments: [],
          configs: Object.entries(opts.configs ?? {}).map(([k, v]) => ({
            name: k,
            value: v,
          })),
        }],
        timeoutMs: this.#connOpts.requestTimeoutMs,
      });
      const topic = response.topics.find((t) => t.name === name);
      if (topic === undefined) throw missingFromResponse("CreateTopics", name);
      throwIfError(topic.errorCode, topic.errorMessage);
    });
  }

  async deleteTopic(name: string): Promise<void> {
    await this.#withController(async (conn) => {
      const response = await conn.request(ApiKey.DeleteTopics, {
        // v6 names topics in `topics`, older versions in `topicNames`; the
        // codec writes only the field the negotiated version has.
        topics: [{ name }],
        topicNames: [name],
        timeoutMs: this.#connOpts.requestTimeoutMs,
      });
      const topic = response.responses.find((t) => t.name === name);
      if (topic === undefined) throw missingFromResponse("DeleteTopics", name);
      throwIfError(topic.errorCode, topic.errorMessage);
    });
    for (const key of [...this.#leaders.keys()]) {
      if (key.startsWith(`${name}\0`)) this.#leaders.delete(key);
    }
  }

  /** Raises a topic's partition count to `count`, the controller placing the new ones. */
  async createPartitions(name: string, count: number): Promise<void> {
    await this.#withController(async (conn) => {
      const response = await conn.request(ApiKey.CreatePartitions, {
        topics: [{ name, count, assignments: null }],
        timeoutMs: this.#connOpts.requestTimeoutMs,
        validateOnly: false,
      });
      const topic = response.results.find((t) => t.name === name);
      if (topic === undefined) {
        throw missingFromResponse("CreatePartitions", name);
      }
      throwIfError(topic.errorCode, topic.errorMessage);
    });
  }

  /**
   * A topic's or a broker's configs: value and Kafka's ConfigSource number
   * of each. A broker's are asked of that broker (of any for "", every
   * broker's default).
   */
  describeConfigs(
    resource: ConfigResource,
  ): Promise<{ name: string; value: string | null; source: number }[]> {
    return this.#retrying(async () => {
      const conn = await this.#resourceConnection(resource);
      const response = await conn.request(ApiKey.DescribeConfigs, {
        resources: [{
          resourceType: RESOURCE_TYPES[resource.type],
          resourceName: resource.name,
          configurationKeys: null,
        }],
      });
      const r = response.results[0];
      if (r === undefined) {
        throw missingFromResponse("DescribeConfigs", resource.name);
      }
      throwIfError(r.errorCode, r.errorMessage);
      return r.configs.map((c) => ({
        name: c.name,
        value: c.value,
        source: c.configSource,
      }));
    });
  }

  /**
   * Sets and removes configs of a topic, or dynamic configs of a broker
   * (for every broker with name ""), in one IncrementalAlterConfigs.
   */
  alterConfigs(
    resource: ConfigResource,
    change: { set: Record<string, string>; remove: string[] },
  ): Promise<void> {
    return this.#retrying(async () => {
      const conn = await this.#resourceConnection(resource);
      const response = await conn.request(ApiKey.IncrementalAlterConfigs, {
        resources: [{
          resourceType: RESOURCE_TYPES[resource.type],
          resourceName: resource.name,
          configs: [
            ...Object.entries(change.set).map(([k, v]) => ({
              name: k,
              configOperation: SET_CONFIG,
              value: v,
            })),
            ...change.remove.map((k) => ({
              name: k,
              configOperation: DELETE_CONFIG,
              value: null,
            })),
          ],
        }],
        validateOnly: false,
      });
      const r = response.responses[0];
      if (r === undefined) {
        throw missingFromResponse("IncrementalAlterConfigs", resource.name);
      }
      throwIfError(r.errorCode, r.errorMessage);
    });
  }

  /** Where a config request for `resource` goes: a broker's own to it. */
  #resourceConnection(resource: ConfigResource): Promise<BrokerConnection> {
    return resource.type === "broker" && resource.name !== ""
      ? this.#nodeConnection(Number(resource.name))
      : this.#anyConnection();
  }

  /**
   * Asks the controller to move a partition to `replicas` (the first
   * becomes the preferred leader), or with null to cancel its move.
   * Resolves once the move is accepted, not when it is done.
   */
  async reassignPartition(
    topic: string,
    partition: number,
    replicas: number[] | null,
  ): Promise<void> {
    await this.#withController(async (conn) => {
      const response = await conn.request(ApiKey.AlterPartitionReassignments, {
        timeoutMs: this.#connOpts.requestTimeoutMs,
        topics: [{
          name: topic,
          partitions: [{ partitionIndex: partition, replicas }],
        }],
      });
      throwIfError(response.errorCode, response.errorMessage);
      const p = response.responses.find((t) => t.name === topic)
        ?.partitions.find((x) => x.partitionIndex === partition);
      if (p === undefined) {
        throw missingFromResponse("AlterPartitionReassignments", topic);
      }
      throwIfError(p.errorCode, p.errorMessage);
    });
  }

  /**
   * Asks for the partition's preferred replica to lead it (a PREFERRED
   * election), waiting up to `timeoutMs`; ELECTION_NOT_NEEDED (84) when it
   * already does is not an error.
   */
  electPreferredLeader(
    topic: string,
    partition: number,
    opts: { timeoutMs?: number } = {},
  ): Promise<void> {
    return this.#withController(async (conn) => {
      const response = await conn.request(ApiKey.ElectLeaders, {
        electionType: 0,
        topicPartitions: [{ topic, partitions: [partition] }],
        timeoutMs: opts.timeoutMs ?? ELECTION_TIMEOUT_MS,
      });
      throwIfError(response.errorCode);
      const p = response.replicaElectionResults.find((t) => t.topic === topic)
        ?.partitionResult.find((x) => x.partitionId === partition);
      if (p === undefined) throw missingFromResponse("ElectLeaders", topic);
      if (p.errorCode !== ErrorCode.ELECTION_NOT_NEEDED) {
        throwIfError(p.errorCode, p.errorMessage);
      }
    });
  }

  /** The moves running now. */
  listReassignments(): Promise<PartitionReassignment[]> {
    return this.#withController(async (conn) => {
      const response = await conn.request(ApiKey.ListPartitionReassignments, {
        timeoutMs: this.#connOpts.requestTimeoutMs,
        topics: null,
      });
      throwIfError(response.errorCode, response.errorMessage);
      return response.topics.flatMap((t) =>
        t.partitions.map((p) => ({
          topic: t.name,
          partition: p.partitionIndex,
          replicas: p.replicas,
          addingReplicas: p.addingReplicas,
          removingReplicas: p.removingReplicas,
        }))
      );
    });
  }

  /** Where each replica of a partition stands, from its leader. */
  describeQuorum(topic: string, partition: number): Promise<PartitionQuorum> {
    return this.#withLeader(topic, partition, async (conn) => {
      const response = await conn.request(ApiKey.DescribeQuorum, {
        topics: [{
          topicName: topic,
          partitions: [{ partitionIndex: partition }],
        }],
      });
      throwIfError(response.errorCode, response.errorMessage);
      const p = response.topics.find((t) => t.topicName === topic)
        ?.partitions.find((x) => x.partitionIndex === partition);
      if (p === undefined) throw missingFromResponse("DescribeQuorum", topic);
      throwIfError(p.errorCode, `${topic}-${partition}`);
      const position = (voter: boolean) =>
      (
        r: { replicaId: number; logEndOffset: bigint },
      ) => ({
        nodeId: r.replicaId,
        logEndOffset: r.logEndOffset,
        voter,
      });
      return {
        leader: p.leaderId,
        leaderEpoch: p.leaderEpoch,
        highWatermark: p.highWatermark,
        replicas: [
          ...p.currentVoters.map(position(true)),
          ...p.observers.map(position(false)),
        ],
      };
    });
  }

  /**
   * Deletes a partition's records below `beforeOffset` (-1: all of them,
   * up to the high watermark); resolves with the new log start offset.
   */
  deleteRecords(
    topic: string,
    partition: number,
    beforeOffset: bigint,
  ): Promise<bigint> {
    return this.#withLeader(topic, partition, async (conn) => {
      const response = await conn.request(ApiKey.DeleteRecords, {
        topics: [{
          name: topic,
          partitions: [{ partitionIndex: partition, offset: beforeOffset }],
        }],
        timeoutMs: this.#connOpts.requestTimeoutMs,
      });
      const p = response.topics.find((t) => t.name === topic)
        ?.partitions.find((x) => x.partitionIndex === partition);
      if (p === undefined) throw missingFromResponse("DeleteRecords", topic);
      throwIfError(p.errorCode, `${topic}-${partition}`);
      return p.lowWatermark;
    });
  }

  /** The offset for `timestamp`, or LATEST_TIMESTAMP / EARLIEST_TIMESTAMP. */
  listOffsets(
    topic: string,
    partition: number,
    timestamp: bigint,
  ): Promise<bigint> {
    return this.#withLeader(topic, partition, async (conn) => {
      const response = await conn.request(ApiKey.ListOffsets, {
        replicaId: -1,
        topics: [{
          name: topic,
          partitions: [{ partitionIndex: partition, timestamp }],
        }],
      });
      const p = response.topics.find((t) => t.name === topic)
        ?.partitions.find((x) => x.partitionIndex === partition);
      if (p === undefined) throw missingFromResponse("ListOffsets", topic);
      throwIfError(p.errorCode);
      return p.offset;
    });
  }

  /**
   * Appends a record set (one or more batches from buildRecordBatch).
   * With acks=0 the broker does not answer, and baseOffset is -1.
   */
  produce(
    topic: string,
    partition: number,
    batch: Uint8Array,
    opts: { acks?: -1 | 0 | 1; timeoutMs?: number } = {},
  ): Promise<{ baseOffset: bigint }> {
    const acks = opts.acks ?? -1;
    const body = {
      acks,
      timeoutMs: opts.timeoutMs ?? this.#connOpts.requestTimeoutMs,
      topicData: [{
        name: topic,
        partitionData: [{ index: partition, records: batch }],
      }],
    };
    return this.#withLeader(topic, partition, async (conn) => {
      if (acks === 0) {
        conn.send(ApiKey.Produce, body);
        return { baseOffset: -1n };
      }
      const response = await conn.request(ApiKey.Produce, body);
      const p = response.responses.find((t) => t.name === topic)
        ?.partitionResponses.find((x) => x.index === partition);
      if (p === undefined) throw missingFromResponse("Produce", topic);
      throwIfError(p.errorCode, p.errorMessage);
      return { baseOffset: p.baseOffset };
    });
  }

  /**
   * Reads record batches from `offset`. The broker waits up to maxWaitMs
   * [500] for minBytes [1]; `records` may end with a partial batch.
   */
  fetch(
    topic: string,
    partition: number,
    offset: bigint,
    opts: { maxWaitMs?: number; minBytes?: number; maxBytes?: number } = {},
  ): Promise<
    { highWatermark: bigint; logStartOffset: bigint; records: Uint8Array }
  > {
    const maxWaitMs = opts.maxWaitMs ?? 500;
    const maxBytes = opts.maxBytes ?? DEFAULT_FETCH_MAX_BYTES;
    return this.#withLeader(topic, partition, async (conn) => {
      const response = await conn.request(ApiKey.Fetch, {
        replicaId: -1,
        maxWaitMs,
        minBytes: opts.minBytes ?? 1,
        maxBytes,
        topics: [{
          topic,
          partitions: [{
            partition,
            fetchOffset: offset,
            partitionMaxBytes: maxBytes,
          }],
        }],
      }, { extraTimeoutMs: maxWaitMs });
      throwIfError(response.errorCode);
      const p = response.responses.find((t) => t.topic === topic)
        ?.partitions.find((x) => x.partitionIndex === partition);
      if (p === undefined) throw missingFromResponse("Fetch", topic);
      throwIfError(p.errorCode);
      return {
        highWatermark: p.highWatermark,
        logStartOffset: p.logStartOffset,
        records: p.records ?? new Uint8Array(0),
      };
    });
  }

  /** The broker coordinating `groupId`, waiting out one being elected. */
  findCoordinator(groupId: string): Promise<BrokerAddress> {
    return this.#retrying(() => this.#findCoordinator(groupId, "group"));
  }

  /** Every group of the cluster: each broker lists those it coordinates. */
  listGroups(): Promise<GroupListing[]> {
    return this.#retrying(async () => {
      const answers = await this.#askEveryBroker(ApiKey.ListGroups, {});
      const groups = new Map<string, GroupListing>();
      for (const answer of answers) {
        throwIfError(answer.errorCode, "in ListGroups");
        for (const g of answer.groups) {
          groups.set(g.groupId, {
            groupId: g.groupId,
            protocolType: g.protocolType,
            state: g.groupState,
          });
        }
      }
      return [...groups.values()].sort((a, b) =>
        a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0
      );
    });
  }

  /**
   * The transactional ids of the cluster that pass the filters (any, where
   * a filter is empty): each broker lists those it coordinates.
   */
  listTransactions(filter: {
    states?: readonly string[];
    producerIds?: readonly bigint[];
    /** Only transactions open for longer than this. */
    durationMs?: number;
  } = {}): Promise<TransactionListing[]> {
    return this.#retrying(async () => {
      const answers = await this.#askEveryBroker(ApiKey.ListTransactions, {
        stateFilters: [...filter.states ?? []],
        producerIdFilters: [...filter.producerIds ?? []],
        durationFilter: BigInt(filter.durationMs ?? -1),
      });
      const listed: TransactionListing[] = [];
      for (const answer of answers) {
        throwIfError(answer.errorCode, "in ListTransactions");
        if (answer.unknownStateFilters.length > 0) {
          throw new TypeError(
            `Unknown transaction state(s): ${
              answer.unknownStateFilters.join(", ")
            }`,
          );
        }
        for (const t of answer.transactionStates) {
          listed.push({
            transactionalId: t.transactionalId,
            producerId: t.producerId,
            state: t.transactionState,
          });
        }
      }
      return listed.sort((a, b) =>
        a.transactionalId < b.transactionalId
          ? -1
          : a.transactionalId > b.transactionalId
          ? 1
          : 0
      );
    });
  }

  /** A transactional id's state, from its transaction coordinator. */
  async describeTransaction(
    transactionalId: string,
  ): Promise<TransactionDescription> {
    const response = await this.coordinatorRequest(
      transactionalId,
      ApiKey.DescribeTransactions,
      { transactionalIds: [transactionalId] },
      {
        kind: "transaction",
        errorCode: (r) => r.transactionStates[0]?.errorCode ?? ErrorCode.NONE,
      },
    );
    const t = response.transactionStates.find((x) =>
      x.transactionalId === transactionalId
    );
    if (t === undefined) {
      throw missingFromResponse("DescribeTransactions", transactionalId);
    }
    throwIfError(t.errorCode, `transactional id "${transactionalId}"`);
    return {
      transactionalId,
      producerId: t.producerId,
      producerEpoch: t.producerEpoch,
      state: t.transactionState,
      timeoutMs: t.transactionTimeoutMs,
      startTimeMs: t.transactionStartTimeMs,
      partitions: t.topics.map((p) => ({
        topic: p.topic,
        partitions: p.partitions,
      })),
    };
  }

  /** A group's state and members, with consumer assignments decoded. */
  async describeGroup(groupId: string): Promise<GroupDescription> {
    const response = await this.coordinatorRequest(
      groupId,
      ApiKey.DescribeGroups,
      { groups: [groupId] },
      { errorCode: (r) => r.groups[0]?.errorCode ?? ErrorCode.NONE },
    );
    const group = response.groups.find((g) => g.groupId === groupId);
    if (group === undefined) {
      throw missingFromResponse("DescribeGroups", groupId);
    }
    throwIfError(group.errorCode, `group "${groupId}"`);
    const consumer = group.protocolType === CONSUMER_PROTOCOL_TYPE;
    return {
      groupId,
      state: group.groupState,
      protocolType: group.protocolType,
      protocol: group.protocolData,
      members: group.members.map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        assignment: consumer ? decodeAssignment(m.memberAssignment) : [],
      })),
    };
  }

  /**
   * Committed offsets of a group: for the given partitions (-1 where none
   * is committed), or every partition it committed when `topics` is absent.
   */
  async fetchOffsets(
    groupId: string,
    topics?: readonly TopicPartitions[],
  ): Promise<PartitionOffset[]> {
    const wanted = topics === undefined ? null : topics.map((t) => ({
      name: t.topic,
      partitionIndexes: [...t.partitions],
    }));
    // v8 asks per group in `groups`, older versions at the top level; the
    // codec writes only the fields of the negotiated version.
    const response = await this.coordinatorRequest(
      groupId,
      ApiKey.OffsetFetch,
      { groupId, topics: wanted, groups: [{ groupId, topics: wanted }] },
      { errorCode: (r) => r.groups[0]?.errorCode ?? r.errorCode },
    );
    const answer = response.groups.find((g) => g.groupId === groupId) ??
      response;
    throwIfError(answer.errorCode, `group "${groupId}"`);
    return answer.topics.flatMap((t) =>
      t.partitions.map((p) => {
        throwIfError(p.errorCode, `${t.name}-${p.partitionIndex}`);
        return {
          topic: t.name,
          partition: p.partitionIndex,
          offset: p.committedOffset,
        };
      })
    );
  }

  /**
   * Commits offsets (each the offset of the next message to consume). A
   * member commits with its generation and member id; without them it is
   * a simple commit, which Kafka allows only while the group is empty.
   */
  async commitOffsets(
    groupId: string,
    offsets: readonly PartitionOffset[],
    opts: { generationId?: number; memberId?: string } = {},
  ): Promise<void> {
    const byTopic = new Map<string, PartitionOffset[]>();
    for (const o of offsets) {
      byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), o]);
    }
    const response = await this.coordinatorRequest(
      groupId,
      ApiKey.OffsetCommit,
      {
        groupId,
        generationIdOrMemberEpoch: opts.generationId ?? -1,
        memberId: opts.memberId ?? "",
        retentionTimeMs: -1n,
        topics: [...byTopic].map(([name, list]) => ({
          name,
          partitions: list.map((o) => ({
            partitionIndex: o.partition,
            committedOffset: o.offset,
            committedMetadata: null,
          })),
        })),
      },
      {
        errorCode: (r) =>
          r.topics[0]?.partitions[0]?.errorCode ?? ErrorCode.NONE,
      },
    );
    for (const t of response.topics) {
      for (const p of t.partitions) {
        throwIfError(p.errorCode, `${t.name}-${p.partitionIndex}`);
      }
    }
  }

  /** Every user with a SCRAM credential, or the named ones. */
  async describeUsers(names: string[] | null): Promise<UserCredentials[]> {
    const conn = await this.#anyConnection();
    const response = await conn.request(ApiKey.DescribeUserScramCredentials, {
      users: names === null ? null : names.map((name) => ({ name })),
    });
    throwIfError(response.errorCode, response.errorMessage ?? "users");
    return response.results.map((r) => {
      throwIfError(r.errorCode, r.errorMessage ?? `user "${r.user}"`);
      return {
        user: r.user,
        credentials: r.credentialInfos.map((c) => ({
          mechanism: SCRAM_MECHANISMS[c.mechanism - 1] ?? "SCRAM-SHA-256",
          iterations: c.iterations,
        })),
      };
    });
  }

  /**
   * Creates or replaces a user's SCRAM credential. The password is salted
   * and hashed here; only the salted password crosses the wire (KIP-554).
   */
  async upsertUser(
    user: string,
    opts: { mechanism: ScramMechanism; password: string },
  ): Promise<void> {
    const salt = crypto.getRandomValues(new Uint8Array(SCRAM_SALT_BYTES));
    const saltedPassword = saltPassword(SCRAM_HASHES[opts.mechanism], {
      password: opts.password,
      salt,
      iterations: SCRAM_ITERATIONS,
    });
    await this.#alterUsers({
      upsertions: [{
        name: user,
        mechanism: SCRAM_MECHANISMS.indexOf(opts.mechanism) + 1,
        iterations: SCRAM_ITERATIONS,
        salt,
        saltedPassword,
      }],
      deletions: [],
    });
  }

  /** Deletes a user's credential of one mechanism, or all of them. */
  async deleteUser(user: string, mechanism?: ScramMechanism): Promise<void> {
    const mechanisms = mechanism !== undefined
      ? [mechanism]
      : (await this.describeUsers([user]))[0]?.credentials.map((c) =>
        c.mechanism
      ) ?? [];
    await this.#alterUsers({
      upsertions: [],
      deletions: mechanisms.map((m) => ({
        name: user,
        mechanism: SCRAM_MECHANISMS.indexOf(m) + 1,
      })),
    });
  }

  async #alterUsers(
    body: RequestInput[typeof ApiKey.AlterUserScramCredentials],
  ): Promise<void> {
    const conn = await this.#anyConnection();
    const response = await conn.request(ApiKey.AlterUserScramCredentials, body);
    for (const r of response.results) {
      throwIfError(r.errorCode, r.errorMessage ?? `user "${r.user}"`);
    }
  }

  /** Adds ACLs; ones already present stay once. */
  async createAcls(acls: readonly AclBinding[]): Promise<void> {
    const conn = await this.#anyConnection();
    const response = await conn.request(ApiKey.CreateAcls, {
      creations: acls.map(aclCreation),
    });
    for (const r of response.results) {
      throwIfError(r.errorCode, r.errorMessage ?? "ACL");
    }
  }

  /** The ACLs that match the filter. */
  async describeAcls(filter: AclFilter = {}): Promise<AclBinding[]> {
    const conn = await this.#anyConnection();
    const response = await conn.request(
      ApiKey.DescribeAcls,
      aclFilterToWire(filter),
    );
    throwIfError(response.errorCode, response.errorMessage ?? "ACLs");
    return response.resources.flatMap((r) =>
      r.acls.map((a) => aclFromWire({ ...r, ...a }))
    );
  }

  /** Deletes the ACLs that match any of the filters, and returns them. */
  async deleteAcls(filters: readonly AclFilter[]): Promise<AclBinding[]> {
    const conn = await this.#anyConnection();
    const response = await conn.request(ApiKey.DeleteAcls, {
      filters: filters.map(aclFilterToWire),
    });
    return response.filterResults.flatMap((r) => {
      throwIfError(r.errorCode, r.errorMessage ?? "ACLs");
      return r.matchingAcls.map(aclFromWire);
    });
  }

  /** Deletes a group without members, with its committed offsets. */
  async deleteGroup(groupId: string): Promise<void> {
    const response = await this.coordinatorRequest(
      groupId,
      ApiKey.DeleteGroups,
      { groupsNames: [groupId] },
      { errorCode: (r) => r.results[0]?.errorCode ?? ErrorCode.NONE },
    );
    const result = response.results.find((r) => r.groupId === groupId);
    if (result === undefined) {
      throw missingFromResponse("DeleteGroups", groupId);
    }
    throwIfError(result.errorCode, `group "${groupId}"`);
  }

  /**
   * Deletes a group's committed offsets of a topic's partitions (all of
   * them when `partitions` is absent). Kafka refuses it for a topic that
   * members of the group subscribe to (GROUP_SUBSCRIBED_TO_TOPIC).
   */
  async deleteOffsets(
    groupId: string,
    topic: string,
    partitions?: readonly number[],
  ): Promise<void> {
    const indexes = partitions ?? await this.topicPartitions(topic);
    const response = await this.coordinatorRequest(
      groupId,
      ApiKey.OffsetDelete,
      {
        groupId,
        topics: [{
          name: topic,
          partitions: indexes.map((partitionIndex) => ({ partitionIndex })),
        }],
      },
      { errorCode: (r) => r.errorCode },
    );
    throwIfError(response.errorCode, `group "${groupId}"`);
    for (const t of response.topics) {
      for (const p of t.partitions) {
        throwIfError(p.errorCode, `${t.name}-${p.partitionIndex}`);
      }
    }
  }

  /**
   * Sends a request to the coordinator of `groupId`, asking FindCoordinator
   * first, and again when `errorCode` of the answer says the coordinator
   * moved or is loading. Any other error code is left to the caller, which
   * for the membership APIs (JoinGroup's MEMBER_ID_REQUIRED, Heartbeat's
   * REBALANCE_IN_PROGRESS) is a step of the protocol, not a failure.
   */
  coordinatorRequest<K extends ClientApi>(
    key: string,
    apiKey: K,
    body: RequestInput[K],
    opts: {
      errorCode(response: ResponseBodies[K]): number;
      extraTimeoutMs?: number;
      /** Whose coordinator: a group's (the default) or a transactional id's. */
      kind?: CoordinatorKind;
    },
  ): Promise<ResponseBodies[K]> {
    const kind = opts.kind ?? "group";
    return this.#retrying(async (attempt) => {
      let nodeId = this.#coordinators.get(`${kind}\0${key}`);
      if (attempt > 0 || nodeId === undefined) {
        nodeId = (await this.#findCoordinator(key, kind)).nodeId;
      }
      const conn = await this.#nodeConnection(nodeId);
      const response = await conn.request(apiKey, body, {
        extraTimeoutMs: opts.extraTimeoutMs ?? 0,
      });
      const code = opts.errorCode(response);
      if (COORDINATOR_ERRORS.has(code)) {
        this.#coordinators.delete(`${kind}\0${key}`);
        throw new KafkaError(code, `${kind} "${key}"`);
      }
      return response;
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const connections = [...this.#connections.values()];
    this.#connections.clear();
    await Promise.all(connections.map(async (pending) => {
      try {
        const conn = await pending;
        conn.close();
        await conn.closed;
      } catch (error) {
        // A dial that failed has nothing to close.
        if (!(error instanceof ConnectionError)) throw error;
      }
    }));
  }

  #connection(address: string): Promise<BrokerConnection> {
    if (this.#closed) {
      return Promise.reject(new ConnectionError("The client is closed"));
    }
    const existing = this.#connections.get(address);
    if (existing !== undefined) return existing;
    const dial = BrokerConnection.open(address, this.#connOpts);
    this.#connections.set(address, dial);
    // Forget the connection once it fails, so the next call dials again.
    dial.then(
      (conn) => conn.closed.then(() => this.#forget(address, dial)),
      () => this.#forget(address, dial),
    );
    return dial;
  }

  #forget(address: string, dial: Promise<BrokerConnection>): void {
    if (this.#connections.get(address) === dial) {
      this.#connections.delete(address);
    }
  }

  /** Any open connection, else the first bootstrap address that answers. */
  async #anyConnection(): Promise<BrokerConnection> {
    const addresses = [...this.#connections.keys(), ...this.#bootstrap];
    let lastError: unknown;
    for (const address of new Set(addresses)) {
      try {
        const conn = await this.#connection(address);
        if (conn.isOpen) return conn;
      } catch (error) {
        if (!(error instanceof ConnectionError)) throw error;
        lastError = error;
      }
    }
    throw new ConnectionError(
      `No broker reachable at ${this.#bootstrap.join(",")}`,
      { cause: lastError },
    );
  }

  /** One request to every broker of the cluster, with each one's answer. */
  async #askEveryBroker<K extends ClientApi>(
    apiKey: K,
    body: RequestInput[K],
  ): Promise<ResponseBodies[K][]> {
    const metadata = await this.metadata([]);
    return await Promise.all(
      metadata.brokers.map(async (b) =>
        (await this.#nodeConnection(b.nodeId)).request(apiKey, body)
      ),
    );
  }

  async #findCoordinator(
    key: string,
    kind: CoordinatorKind,
  ): Promise<BrokerAddress> {
    const conn = await this.#anyConnection();
    // v4 asks in `coordinatorKeys` and answers in `coordinators`, older
    // versions use `key` and top-level fields.
    const response = await conn.request(ApiKey.FindCoordinator, {
      key,
      keyType: KEY_TYPE[kind],
      coordinatorKeys: [key],
    });
    const answer = response.coordinators.find((c) => c.key === key) ??
      response;
    throwIfError(answer.errorCode, answer.errorMessage ?? `${kind} "${key}"`);
    this.#brokers.set(
      answer.nodeId,
      `${formatHost(answer.host)}:${answer.port}`,
    );
    this.#coordinators.set(`${kind}\0${key}`, answer.nodeId);
    return { nodeId: answer.nodeId, host: answer.host, port: answer.port };
  }

  async #nodeConnection(nodeId: number): Promise<BrokerConnection> {
    let address = this.#brokers.get(nodeId);
    if (address === undefined) {
      await this.metadata([]);
      address = this.#brokers.get(nodeId);
    }
    if (address === undefined) {
      throw new KafkaError(
        ErrorCode.BROKER_NOT_AVAILABLE,
        `node ${nodeId} is not in the cluster metadata`,
      );
    }
    return this.#connection(address);
  }

  /** Runs `op`, retrying retriable failures with a growing pause. */
  async #retrying<T>(
    op: (attempt: number) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 0;; attempt++) {
      try {
        return await op(attempt);
      } catch (error) {
        if (
          attempt >= this.#retries || !isRetriable(error) || this.#closed
        ) throw error;
        const pauseMs = Math.min(
          this.#retryBackoffMs * 2 ** attempt,
          RETRY_BACKOFF_MAX_MS,
        );
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    }
  }

  #withLeader<T>(
    topic: string,
    partition: number,
    op: (conn: BrokerConnection) => Promise<T>,
  ): Promise<T> {
    const key = partitionKey(topic, partition);
    return this.#retrying(async (attempt) => {
      if (attempt > 0 || !this.#leaders.has(key)) {
        await this.#refreshLeader(topic, partition);
      }
      const leader = this.#leaders.get(key);
      if (leader === undefined) {
        throw new KafkaError(
          ErrorCode.LEADER_NOT_AVAILABLE,
          `${topic}-${partition} has no leader yet`,
        );
      }
      return op(await this.#nodeConnection(leader));
    });
  }

  async #refreshLeader(topic: string, partition: number): Promise<void> {
    const metadata = await this.metadata([topic], {
      allowAutoTopicCreation: true,
    });
    const t = metadata.topics.find((x) => x.name === topic);
    if (t === undefined) throw missingFromResponse("Metadata", topic);
    throwIfError(t.errorCode, `topic "${topic}"`);
    const p = t.partitions.find((x) => x.partition === partition);
    if (p === undefined) {
      throw new KafkaError(
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        `topic "${topic}" has no partition ${partition}`,
      );
    }
    throwIfError(p.errorCode, `${topic}-${partition}`);
  }

  #withController<T>(
    op: (conn: BrokerConnection) => Promise<T>,
  ): Promise<T> {
    return this.#retrying(async (attempt) => {
      if (attempt > 0 || this.#controllerId < 0) await this.metadata([]);
      const conn = this.#controllerId >= 0
        ? await this.#nodeConnection(this.#controllerId)
        : await this.#anyConnection();
      try {
        return await op(conn);
      } catch (error) {
        // The controller moved: the retry asks metadata where it went.
        if (
          error instanceof KafkaError && error.code === ErrorCode.NOT_CONTROLLER
        ) this.#controllerId = -1;
        throw error;
      }
    });
  }
}

function partitionKey(topic: string, partition: number): string {
  return `${topic}\0${partition}`;
}

function formatHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

function missingFromResponse(api: string, topic: string): KafkaError {
  return new KafkaError(
    ErrorCode.UNKNOWN_SERVER_ERROR,
    `the ${api} response says nothing about "${topic}"`,
  );
}
