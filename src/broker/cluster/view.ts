/**
 * The ClusterView of a broker in a replicated cluster: topics and
 * placement come from the controller group's state (the same on every
 * broker), leaders from the Raft host (for groups hosted here) or from the
 * leaders the controller has recorded, and writes are proposals to the
 * partition's group.
 */
import { statfsSync } from "node:fs";
import {
  CompressionError,
  DecodeError,
  decodeRecordBatches,
  ErrorCode,
  InvalidBatchError,
  recompressRecordSet,
  stampLogAppendTime,
  validateRecordSet,
} from "../../protocol/mod.ts";
import {
  type AclBinding,
  type Command,
  isMoving,
  type PartitionAssignment,
  type ScramMechanismName,
  type StoredScramCredential,
  type TopicState,
} from "../controller/mod.ts";
import { type DynamicBrokerConfigs, topicCompression } from "../configs.ts";
import type {
  BrokerAddress,
  ClusterView,
  ConfigChange,
  DeleteRecordsOutcome,
  Leading,
  LogDirView,
  PartitionOutcome,
  PartitionView,
  QuorumView,
  Reassignment,
  TopicSpec,
  WriteOptions,
  WriteOutcome,
} from "../ports.ts";
import { type Partition, RecordTooLargeError } from "../partitions.ts";
import type { ProducerSummary } from "../producers/producer_state.ts";
import { TopicError, type TopicInfo } from "../topics.ts";
import { newTopicId } from "../ids.ts";
import type { ClusterNode } from "./node.ts";

/** How long a topic operation waits for this broker to apply it too. */
const APPLY_WAIT_MS = 10_000;
/** How often ElectLeaders looks whether the preferred replica leads. */
const ELECTION_POLL_MS = 100;

function refused(errorCode: number): Promise<WriteOutcome> {
  return Promise.resolve({ ok: false, errorCode });
}

function refusedWith(
  error: InvalidBatchError | RecordTooLargeError,
): Promise<WriteOutcome> {
  return Promise.resolve({ ok: false, error });
}

function infoOf(t: TopicState): TopicInfo {
  return {
    name: t.name,
    topicId: t.topicId,
    partitions: t.partitions.length,
    replicationFactor: t.replicationFactor,
    configs: t.configs,
  };
}

export class ReplicatedView implements ClusterView {
  readonly #node: ClusterNode;
  readonly #internal: ReadonlySet<string>;
  readonly #logDir: string;

  constructor(
    node: ClusterNode,
    opts: {
      internal: ReadonlySet<string>;
      /** The absolute path of the data dir, which holds every partition log. */
      logDir: string;
    },
  ) {
    this.#node = node;
    this.#internal = opts.internal;
    this.#logDir = opts.logDir;
  }

  clusterId(): string {
    // Kafka clients need some id before the controller has chosen one.
    return this.#node.controller.clusterId ?? "raftq-forming";
  }

  controllerId(): number {
    return this.#node.controllerId();
  }

  brokers(listener?: string): BrokerAddress[] {
    return this.#node.controller.liveBrokers().map((b) => {
      // A broker without that listener (or registered before listeners
      // existed) is reached at its first listener's address.
      const match = b.listeners?.find((l) => l.name === listener);
      return {
        nodeId: b.nodeId,
        host: match?.host ?? b.kafkaHost,
        port: match?.port ?? b.kafkaPort,
      };
    });
  }

  liveBrokers(): number {
    return this.#node.controller.liveBrokers().length;
  }

  topic(name: string): TopicInfo | undefined {
    const t = this.#node.controller.topic(name);
    return t === undefined ? undefined : infoOf(t);
  }

  topicById(topicId: string): TopicInfo | undefined {
    const t = this.#node.controller.topicById(topicId);
    return t === undefined ? undefined : infoOf(t);
  }

  topics(): TopicInfo[] {
    return this.#node.controller.topics().map(infoOf);
  }

  partitionView(topic: TopicInfo, index: number): PartitionView {
    const a = this.#node.controller.topic(topic.name)?.partitions[index];
    if (a === undefined) {
      return {
        leaderId: -1,
        leaderEpoch: -1,
        replicas: [],
        isr: [],
        offline: [],
      };
    }
    const live = new Set(
      this.#node.controller.liveBrokers().map((b) => b.nodeId),
    );
    const { leader, epoch } = this.#node.leadership(a.groupId);
    return {
      leaderId: live.has(leader) ? leader : -1,
      leaderEpoch: epoch,
      replicas: a.replicas,
      isr: this.#inSync(a),
      offline: a.replicas.filter((r) => !live.has(r)),
    };
  }

  leading(topic: string, index: number): Leading {
    const t = this.#node.controller.topic(topic);
    if (t === undefined) {
      return { ok: false, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
    }
    const r = this.#node.leading(t, index);
    if (r.ok) return { ok: true, partition: r.sm.partition };
    if (r.errorCode !== ErrorCode.NOT_LEADER_OR_FOLLOWER) return r;
    const { leaderId, leaderEpoch } = this.partitionView(infoOf(t), index);
    return leaderId === -1 || leaderId === this.#node.nodeId
      ? r
      : { ...r, leader: { leaderId, leaderEpoch } };
  }

  producers(
    topic: string,
    index: number,
  ): ProducerSummary[] | { errorCode: number } {
    const led = this.leading(topic, index);
    if (led.ok) return led.partition.producers.producers();
    // Kafka answers a replica between leaders as not the leader, too.
    return led.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
      ? led
      : { errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
  }

  write(
    p: Partition,
    given: Uint8Array,
    opts: WriteOptions = { acks: -1, timeoutMs: APPLY_WAIT_MS },
  ): Promise<WriteOutcome> {
    // Refuse bad input before it costs a Raft round trip; every replica
    // checks again when it applies the entry. The leader alone rewrites
    // batches (codec, LogAppendTime), so every replica stores its bytes.
    let records = given;
    try {
      validateRecordSet(records);
      const compression = topicCompression(p.configs);
      if (compression !== null) {
        records = recompressRecordSet(
          records,
          compression.codec,
          compression.level,
        );
      }
    } catch (err) {
      if (err instanceof InvalidBatchError) return refusedWith(err);
      if (err instanceof CompressionError) {
        return refusedWith(
          new InvalidBatchError("bad-compression", err.message),
        );
      }
      throw err;
    }
    if (records.length > p.maxMessageBytes) {
      return refusedWith(
        new RecordTooLargeError(
          `Record set of ${records.length} bytes exceeds max.message.bytes ${p.maxMessageBytes}`,
        ),
      );
    }
    if (p.log.compacted && hasKeylessRecord(records)) {
      return refused(ErrorCode.INVALID_RECORD);
    }
    const a = this.#node.controller.topic(p.topic)?.partitions[p.index];
    if (a === undefined) {
      return refused(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    }
    const minInsync = opts.acks === -1
      ? Number(p.configs["min.insync.replicas"] ?? "1")
      : 1;
    if (minInsync > 1 && this.#inSync(a).length < minInsync) {
      return refused(ErrorCode.NOT_ENOUGH_REPLICAS);
    }
    const hold = { replicas: minInsync, timeoutMs: opts.timeoutMs };
    if (p.configs["message.timestamp.type"] !== "LogAppendTime") {
      return this.#node.produce(a.groupId, records, hold);
    }
    const logAppendTimeMs = BigInt(Date.now());
    stampLogAppendTime(records, logAppendTimeMs);
    return this.#node.produce(a.groupId, records, hold).then((outcome) =>
      outcome.ok ? { ...outcome, logAppendTimeMs } : outcome
    );
  }

  /** Kafka's ISR: live replicas, less those a move is still adding. */
  #inSync(a: PartitionAssignment): number[] {
    const live = new Set(
      this.#node.controller.liveBrokers().map((b) => b.nodeId),
    );
    return a.replicas.filter((r) =>
      live.has(r) && !a.addingReplicas.includes(r)
    );
  }

  async deleteRecords(
    topic: string,
    partition: number,
    beforeOffset: bigint,
  ): Promise<DeleteRecordsOutcome> {
    const refused = (errorCode: number) => ({ errorCode, lowWatermark: -1n });
    const t = this.#node.controller.topic(topic);
    if (t === undefined) return refused(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    // Trimming __consumer_offsets would drop committed offsets behind the
    // coordinator's back.
    if (this.#internal.has(topic)) {
      return refused(ErrorCode.INVALID_TOPIC_EXCEPTION);
    }
    const leading = this.#node.leading(t, partition);
    if (!leading.ok) return refused(leading.errorCode);
    const highWatermark = leading.sm.partition.highWatermark;
    const offset = beforeOffset === -1n ? highWatermark : beforeOffset;
    if (offset < 0n || offset > highWatermark) {
      return refused(ErrorCode.OFFSET_OUT_OF_RANGE);
    }
    const outcome = await this.#node.deleteRecords(leading.groupId, offset);
    return outcome.ok
      ? { errorCode: ErrorCode.NONE, lowWatermark: outcome.logStartOffset }
      : refused(outcome.errorCode);
  }

  logDir(): LogDirView {
    let volume = { totalBytes: -1n, usableBytes: -1n };
    try {
      const s = statfsSync(this.#logDir, { bigint: true });
      // bavail, not bfree: what an unprivileged writer can still use.
      volume = {
        totalBytes: s.blocks * s.bsize,
        usableBytes: s.bavail * s.bsize,
      };
    } catch {
      // Kafka's -1 stands for a volume it cannot ask.
    }
    return {
      path: this.#logDir,
      ...volume,
      replicas: this.#node.replicas().map(({ sm, leading }) => {
        const { topic, index, log } = sm.partition;
        const gapEnd = sm.gapEnd;
        return {
          topic,
          partition: index,
          sizeBytes: log.sizeBytes,
          offsetLag: leading || gapEnd === null
            ? 0n
            : gapEnd - log.logEndOffset,
        };
      }),
    };
  }

  #createCommand(spec: TopicSpec) {
    return {
      type: "createTopic" as const,
      name: spec.name,
      topicId: newTopicId(),
      partitions: spec.partitions,
      replicationFactor: spec.replicationFactor,
      configs: spec.configs,
    };
  }

  checkTopic(spec: TopicSpec): void {
    const rejected = this.#node.controller.check(this.#createCommand(spec));
    if (rejected !== null) {
      throw new TopicError(rejected.code, rejected.message);
    }
  }

  /** Waits until this broker's copy of the metadata satisfies `done`. */
  async #applied(done: () => boolean): Promise<void> {
    const deadline = Date.now() + APPLY_WAIT_MS;
    while (!done() && Date.now() < deadline) {
      await this.#node.waitForMetadata(deadline - Date.now());
    }
  }

  async createTopic(spec: TopicSpec): Promise<TopicInfo> {
    const result = await this.#node.propose(this.#createCommand(spec));
    if (!result.ok) throw new TopicError(result.code, result.message);
    await this.#applied(() =>
      this.#node.controller.topic(spec.name) !== undefined
    );
    const t = this.#node.controller.topic(spec.name);
    if (t === undefined) {
      throw new TopicError(
        ErrorCode.REQUEST_TIMED_OUT,
        `Topic "${spec.name}" was created but this broker has not caught up yet`,
      );
    }
    return infoOf(t);
  }

  async createPartitions(
    topic: string,
    count: number,
    options: { assignments: number[][] | null; validateOnly: boolean },
  ): Promise<PartitionOutcome> {
    const command = {
      type: "createPartitions" as const,
      name: topic,
      count,
      ...(options.assignments === null
        ? {}
        : { assignments: options.assignments }),
    };
    const controller = this.#node.controller;
    const result = options.validateOnly
      ? controller.check(command) ?? { ok: true as const }
      : await this.#node.propose(command);
    if (!result.ok) {
      return { errorCode: result.code, errorMessage: result.message };
    }
    if (!options.validateOnly) {
      // Kafka answers before the new partitions have leaders; waiting here
      // spares every client a LEADER_NOT_AVAILABLE on its first write.
      await this.#applied(() => {
        const partitions = controller.topic(topic)?.partitions ?? [];
        return partitions.length >= count &&
          partitions.every((a) => this.#node.leaderOf(a.groupId) > 0);
      });
    }
    return { errorCode: ErrorCode.NONE, errorMessage: null };
  }

  alterTopicConfigs(
    topic: string,
    change: ConfigChange,
  ): Promise<PartitionOutcome> {
    return this.#proposeApplied({
      type: "alterTopicConfigs",
      name: topic,
      replace: change.replace,
      ops: change.ops,
    }, change.validateOnly);
  }

  alterBrokerConfigs(
    broker: string,
    change: ConfigChange,
  ): Promise<PartitionOutcome> {
    return this.#proposeApplied({
      type: "alterBrokerConfigs",
      broker,
      replace: change.replace,
      ops: change.ops,
    }, change.validateOnly);
  }

  scramCredentials(
    user: string,
  ): ReadonlyMap<ScramMechanismName, StoredScramCredential> {
    return this.#node.controller.scramCredentials(user);
  }

  scramUsers(): string[] {
    return this.#node.controller.scramUsers();
  }

  alterScramCredentials(
    change: Omit<Extract<Command, { type: "alterScramCredentials" }>, "type">,
  ): Promise<PartitionOutcome> {
    return this.#proposeApplied(
      { type: "alterScramCredentials", ...change },
      false,
    );
  }

  acls(): readonly AclBinding[] {
    return this.#node.controller.acls();
  }

  createAcls(bindings: AclBinding[]): Promise<PartitionOutcome> {
    return this.#proposeApplied({ type: "createAcls", bindings }, false);
  }

  deleteAcls(bindings: AclBinding[]): Promise<PartitionOutcome> {
    return this.#proposeApplied({ type: "deleteAcls", bindings }, false);
  }

  /** Proposes a controller command and waits until it is applied here. */
  async #proposeApplied(
    command: Extract<
      Command,
      {
        type:
          | "alterTopicConfigs"
          | "alterBrokerConfigs"
          | "alterScramCredentials"
          | "createAcls"
          | "deleteAcls";
      }
    >,
    validateOnly: boolean,
  ): Promise<PartitionOutcome> {
    const controller = this.#node.controller;
    const result = validateOnly
      ? controller.check(command) ?? { ok: true as const, metadataVersion: 0 }
      : await this.#node.propose(command);
    if (!result.ok) {
      return { errorCode: result.code, errorMessage: result.message };
    }
    await this.#applied(() =>
      controller.metadataVersion >= result.metadataVersion
    );
    return { errorCode: ErrorCode.NONE, errorMessage: null };
  }

  brokerConfigs(): DynamicBrokerConfigs {
    return this.#node.controller.brokerConfigs(this.#node.nodeId);
  }

  async reassign(
    topic: string,
    partition: number,
    replicas: readonly number[] | null,
  ): Promise<PartitionOutcome> {
    const result = await this.#node.propose({
      type: "reassignPartition",
      name: topic,
      partition,
      replicas: replicas === null ? null : [...replicas],
    });
    return result.ok
      ? { errorCode: ErrorCode.NONE, errorMessage: null }
      : { errorCode: result.code, errorMessage: result.message };
  }

  async electPreferred(
    topic: string,
    partition: number,
    timeoutMs: number,
  ): Promise<PartitionOutcome> {
    const deadline = Date.now() + timeoutMs;
    for (let first = true;; first = false) {
      const a = this.#node.controller.topic(topic)?.partitions[partition];
      if (a === undefined) {
        return {
          errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          errorMessage:
            `Partition ${partition} of topic "${topic}" does not exist`,
        };
      }
      const preferred = a.preferredLeader;
      const live = this.#node.controller.liveBrokers().some((b) =>
        b.nodeId === preferred
      );
      if (this.#node.leaderOf(a.groupId) === preferred) {
        return {
          errorCode: first ? ErrorCode.ELECTION_NOT_NEEDED : ErrorCode.NONE,
          errorMessage: null,
        };
      }
      if (!live || a.addingReplicas.includes(preferred)) {
        return {
          errorCode: ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
          errorMessage:
            `Preferred replica ${preferred} of "${topic}"-${partition} cannot lead now`,
        };
      }
      if (Date.now() >= deadline) {
        return {
          errorCode: ErrorCode.REQUEST_TIMED_OUT,
          errorMessage:
            `Broker ${preferred} did not take the lead of "${topic}"-${partition} within ${timeoutMs} ms`,
        };
      }
      await new Promise((r) => setTimeout(r, ELECTION_POLL_MS));
    }
  }

  reassignments(): Reassignment[] {
    return this.#node.controller.topics().flatMap((t) =>
      t.partitions.filter(isMoving).map((p) => ({
        topic: t.name,
        partition: p.partition,
        replicas: p.replicas,
        addingReplicas: p.addingReplicas,
        removingReplicas: p.removingReplicas,
      }))
    );
  }

  quorum(
    topic: string,
    partition: number,
  ): QuorumView | { errorCode: number; leaderId: number } {
    const a = this.#node.controller.topic(topic)?.partitions[partition];
    if (a === undefined) {
      return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, leaderId: -1 };
    }
    return this.#node.quorum(a.groupId) ??
      {
        errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER,
        leaderId: this.#node.leaderOf(a.groupId),
      };
  }

  async deleteTopic(name: string): Promise<TopicInfo> {
    if (this.#internal.has(name)) {
      throw new TopicError(
        ErrorCode.INVALID_TOPIC_EXCEPTION,
        `Topic "${name}" is internal and cannot be deleted`,
      );
    }
    const before = this.#node.controller.topic(name);
    const result = await this.#node.propose({ type: "deleteTopic", name });
    if (!result.ok) throw new TopicError(result.code, result.message);
    await this.#applied(() => this.#node.controller.topic(name) === undefined);
    if (before === undefined) {
      throw new TopicError(
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        `Topic "${name}" does not exist`,
      );
    }
    return infoOf(before);
  }
}

/**
 * A compacted topic keeps the last record per key, so a record without one
 * has no place in it: Kafka refuses the set with INVALID_RECORD. A set whose
 * records do not even decode is refused the same way.
 */
function hasKeylessRecord(records: Uint8Array): boolean {
  try {
    return decodeRecordBatches(records).some((r) => r.key === null);
  } catch (err) {
    if (err instanceof DecodeError || err instanceof CompressionError) {
      return true;
    }
    throw err;
  }
}
