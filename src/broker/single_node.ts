/**
 * The ClusterView of a broker on its own (memory discovery): topics live in
 * the local TopicStore, this broker leads every partition, and a write is
 * an append followed by the flusher's group commit.
 */
import { ErrorCode } from "../protocol/mod.ts";
import type {
  BrokerAddress,
  ClusterView,
  Leading,
  PartitionOutcome,
  PartitionView,
  QuorumView,
  Reassignment,
  TopicSpec,
  WriteOutcome,
} from "./handlers/context.ts";
import type { Partition, PartitionManager } from "./partitions.ts";
import { TopicError, type TopicInfo, type TopicStore } from "./topics.ts";

export class SingleNodeView implements ClusterView {
  readonly #self: BrokerAddress;
  readonly #clusterId: string;
  readonly #topics: TopicStore;
  readonly #partitions: PartitionManager;
  readonly #internal: ReadonlySet<string>;
  readonly #onDeleted: (topic: TopicInfo) => void;

  constructor(opts: {
    self: BrokerAddress;
    clusterId: string;
    topics: TopicStore;
    partitions: PartitionManager;
    /** Topics clients may not delete. */
    internal: ReadonlySet<string>;
    onDeleted: (topic: TopicInfo) => void;
  }) {
    this.#self = opts.self;
    this.#clusterId = opts.clusterId;
    this.#topics = opts.topics;
    this.#partitions = opts.partitions;
    this.#internal = opts.internal;
    this.#onDeleted = opts.onDeleted;
  }

  clusterId(): string {
    return this.#clusterId;
  }

  controllerId(): number {
    return this.#self.nodeId;
  }

  brokers(): BrokerAddress[] {
    return [this.#self];
  }

  liveBrokers(): number {
    return 1;
  }

  topic(name: string): TopicInfo | undefined {
    return this.#topics.get(name);
  }

  topicById(topicId: string): TopicInfo | undefined {
    return this.#topics.byId(topicId);
  }

  topics(): TopicInfo[] {
    return this.#topics.list();
  }

  partitionView(_topic: TopicInfo, _index: number): PartitionView {
    const self = this.#self.nodeId;
    return {
      leaderId: self,
      leaderEpoch: 0,
      replicas: [self],
      isr: [self],
      offline: [],
    };
  }

  /** One broker holds every replica: only a move onto itself is possible. */
  reassign(
    topic: string,
    partition: number,
    replicas: readonly number[] | null,
  ): Promise<PartitionOutcome> {
    const self = this.#self.nodeId;
    const answer = (errorCode: number, errorMessage: string | null) =>
      Promise.resolve({ errorCode, errorMessage });
    if (this.#partitions.get(topic, partition) === undefined) {
      return answer(
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        `Partition ${partition} of topic "${topic}" does not exist`,
      );
    }
    if (replicas === null) {
      return answer(
        ErrorCode.NO_REASSIGNMENT_IN_PROGRESS,
        `"${topic}"-${partition} has no reassignment to cancel`,
      );
    }
    if (replicas.length !== 1 || replicas[0] !== self) {
      return answer(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `Replicas [${
          replicas.join(", ")
        }] for "${topic}"-${partition} are invalid: this single broker is ${self}`,
      );
    }
    return answer(ErrorCode.NONE, null);
  }

  /** The one broker leads every partition it has. */
  electPreferred(topic: string, partition: number): Promise<PartitionOutcome> {
    const known = this.#partitions.get(topic, partition) !== undefined;
    return Promise.resolve({
      errorCode: known
        ? ErrorCode.ELECTION_NOT_NEEDED
        : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      errorMessage: null,
    });
  }

  reassignments(): Reassignment[] {
    return [];
  }

  quorum(
    topic: string,
    partition: number,
  ): QuorumView | { errorCode: number; leaderId: number } {
    const p = this.#partitions.get(topic, partition);
    if (p === undefined) {
      return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, leaderId: -1 };
    }
    const end = Number(p.log.logEndOffset);
    const self = this.#self.nodeId;
    return {
      leaderId: self,
      leaderEpoch: 0,
      commitIndex: end,
      lastIndex: end,
      voters: [{ replicaId: self, matchIndex: end }],
      observers: [],
    };
  }

  leading(topic: string, index: number): Leading {
    const partition = this.#partitions.get(topic, index);
    return partition === undefined
      ? { ok: false, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }
      : { ok: true, partition };
  }

  write(p: Partition, records: Uint8Array): Promise<WriteOutcome> {
    const outcome = this.#partitions.append(p, records);
    if (!outcome.ok) return Promise.resolve(outcome);
    return this.#partitions.durable(p, outcome.lastOffset).then(() => outcome);
  }

  checkTopic(spec: TopicSpec): void {
    this.#topics.check({ ...spec, liveBrokers: 1 });
  }

  createTopic(spec: TopicSpec): Promise<TopicInfo> {
    try {
      const info = this.#topics.create({ ...spec, liveBrokers: 1 });
      this.#partitions.openTopic(info);
      return Promise.resolve(info);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  deleteTopic(name: string): Promise<TopicInfo> {
    try {
      if (this.#internal.has(name)) {
        throw new TopicError(
          ErrorCode.INVALID_TOPIC_EXCEPTION,
          `Topic "${name}" is internal and cannot be deleted`,
        );
      }
      const info = this.#topics.delete(name);
      this.#partitions.dropTopic(info);
      this.#onDeleted(info);
      return Promise.resolve(info);
    } catch (err) {
      return Promise.reject(err);
    }
  }
}
