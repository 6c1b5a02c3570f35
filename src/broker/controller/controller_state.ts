/**
 * The cluster metadata held by the controller Raft group (group 0). Every
 * broker applies the same commands in the same order, so everything here is
 * a pure function of the command sequence: no clock (times come inside the
 * commands), no randomness (topic ids come inside the commands), and no
 * dependence on Map insertion order (which differs after a restore):
 * whatever is iterated is iterated sorted.
 */
import { type AclBinding, CLUSTER_RESOURCE_NAME } from "../../protocol/mod.ts";

export { CLUSTER_RESOURCE_NAME };
import type { Entry, StateMachine } from "../../raft/mod.ts";
import { ErrorCode } from "../../protocol/mod.ts";
import { assert } from "../../util/mod.ts";
import { MAX_PARTITIONS, TopicError, validateTopicName } from "../topics.ts";
import {
  applyConfigOps,
  type DynamicBrokerConfigs,
  validateBrokerConfigs,
  validateTopicConfigs,
} from "../configs.ts";
import { assignReplicas } from "./assignment.ts";
import {
  ACL_BINDING,
  type BrokerRegistration,
  type Command,
  decodeCommand,
  LISTENER_ADDRESSES,
  SCRAM_MECHANISM_NAMES,
  type ScramMechanismName,
  STORED_SCRAM_CREDENTIAL,
  type StoredScramCredential,
} from "./commands.ts";
import {
  arrayOf,
  bigintText,
  ControllerDecodeError,
  decodeVersioned,
  encodeVersioned,
  int,
  nullable,
  oneOf,
  optional,
  recordOf,
  shape,
  str,
} from "./shape.ts";

export type BrokerStatus = "online" | "failed" | "fenced";

export interface BrokerState extends BrokerRegistration {
  /**
   * online: takes new replicas. failed: marked by the controller's failure
   * detector; re-registering brings it back. fenced: unregistered while it
   * still held replicas, kept so those replicas still name a known broker.
   */
  readonly status: BrokerStatus;
  /** From the registering command's proposer, never from this node's clock. */
  readonly lastSeenMs: number;
}

export interface PartitionAssignment {
  readonly partition: number;
  /**
   * The brokers that host the partition's group: while a reassignment runs,
   * the target followed by the replicas being removed (Kafka's union).
   */
  readonly replicas: readonly number[];
  /** Target replicas the move adds; empty when no move runs. */
  readonly addingReplicas: readonly number[];
  /**
   * Replicas the move removes; empty when no move runs. The target is
   * `replicas` without these.
   */
  readonly removingReplicas: readonly number[];
  /** The partition's Raft group id: from a counter, never reused after a delete. */
  readonly groupId: number;
  /** Always the target's first replica, as in Kafka. */
  readonly preferredLeader: number;
  /**
   * The group's Raft leader as last reported, -1 while unknown (Kafka's
   * "no leader"). Invariant: -1 or one of `replicas`.
   */
  readonly leader: number;
  /**
   * The Raft term of that report, which is Kafka's leader epoch; -1 before
   * any. Kept when a reassignment clears `leader`, so that reports older
   * than it are still ignored.
   */
  readonly leaderEpoch: number;
}

export interface TopicState {
  readonly name: string;
  readonly topicId: string;
  /** As created; added partitions use it, reassignments may differ. */
  readonly replicationFactor: number;
  /** Keys sorted, so snapshots of equal states are equal bytes. */
  readonly configs: Readonly<Record<string, string>>;
  readonly partitions: readonly PartitionAssignment[];
}

/** A partition whose Raft group a broker must host. */
export interface HostedPartition {
  readonly topic: string;
  readonly topicId: string;
  readonly partition: number;
  readonly groupId: number;
  readonly replicas: readonly number[];
  /** A reassignment runs. */
  readonly moving: boolean;
  /** The brokers the running reassignment adds (none when none runs). */
  readonly adding: readonly number[];
}

/** A partition whose preferred leader is live but does not lead. */
export interface LeaderMove {
  readonly topic: string;
  readonly partition: number;
  readonly groupId: number;
  readonly preferredLeader: number;
  readonly currentLeader: number;
}

/** The leader of the controller group, and the term it leads in. */
export interface ControllerLeader {
  /** -1 while unknown. */
  readonly leader: number;
  /** -1 before any report. */
  readonly term: number;
}

export interface CommandAccepted {
  ok: true;
  /**
   * The metadata version after this command: unchanged if the command
   * changed nothing (a stale or repeated leaderChanged report).
   */
  metadataVersion: number;
  /**
   * createTopic, createPartitions, reassignPartition, completeReassignment:
   * the topic afterwards.
   */
  topic?: TopicState;
  /** allocateProducerIds: the block is firstProducerId .. firstProducerId + count - 1. */
  firstProducerId?: bigint;
}

export interface CommandRejected {
  ok: false;
  /** The Kafka error code to answer the client with. */
  code: number;
  message: string;
}

export type CommandResult = CommandAccepted | CommandRejected;

/** A command refused by the state (not a bug): it carries the Kafka error code. */
export class ControllerError extends Error {
  override name = "ControllerError";
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

const CONTROLLER_GROUP_ID = 0;
const FIRST_PARTITION_GROUP_ID = 1;
/** Kafka's "no leader" and "no epoch". */
const UNKNOWN = -1;
const NO_CONTROLLER_LEADER: ControllerLeader = Object.freeze({
  leader: UNKNOWN,
  term: UNKNOWN,
});
const NODE_ID_MAX = 2 ** 31 - 1;
const PORT_MAX = 65_535;
const NAME_LENGTH_MAX = 255;
/** Bounds one command's work and keeps a typo from burning the id space. */
export const PRODUCER_ID_BLOCK_MAX = 1_000_000;
const PRODUCER_ID_MAX = 2n ** 63n - 1n;
const TOPIC_ID = /^[0-9a-f]{32}$/;
const ZERO_TOPIC_ID = "0".repeat(32);

/** 2: partitions carry addingReplicas and removingReplicas. */
const SNAPSHOT_VERSION = 2;
const SNAPSHOT_SHAPE = shape({
  clusterId: nullable(str),
  metadataVersion: int,
  nextGroupId: int,
  assignmentCursor: int,
  nextProducerId: bigintText,
  controllerLeader: shape({ leader: int, term: int }),
  brokers: arrayOf(shape({
    nodeId: int,
    kafkaHost: str,
    kafkaPort: int,
    raftHost: str,
    raftPort: int,
    // Absent from snapshots taken before listeners existed.
    listeners: LISTENER_ADDRESSES,
    status: oneOf(["online", "failed", "fenced"]),
    lastSeenMs: int,
  })),
  topics: arrayOf(shape({
    name: str,
    topicId: str,
    replicationFactor: int,
    configs: recordOf(str),
    partitions: arrayOf(shape({
      partition: int,
      replicas: arrayOf(int),
      addingReplicas: arrayOf(int),
      removingReplicas: arrayOf(int),
      groupId: int,
      preferredLeader: int,
      leader: int,
      leaderEpoch: int,
    })),
  })),
  // Absent from snapshots taken before dynamic broker configs existed.
  brokerConfigs: optional(recordOf(recordOf(str))),
  // Absent from snapshots taken before SASL/SCRAM users existed.
  scramCredentials: optional(
    recordOf(recordOf(shape(STORED_SCRAM_CREDENTIAL))),
  ),
  // Absent from snapshots taken before ACLs existed.
  acls: optional(arrayOf(ACL_BINDING)),
});

interface SnapshotBody {
  clusterId: string | null;
  metadataVersion: number;
  nextGroupId: number;
  assignmentCursor: number;
  nextProducerId: string;
  controllerLeader: ControllerLeader;
  brokers: BrokerState[];
  topics: TopicState[];
  /** By node id, or "" for every broker's default. */
  brokerConfigs?: Record<string, Record<string, string>>;
  /** By user, then mechanism. */
  scramCredentials?: Record<string, Record<string, StoredScramCredential>>;
  /** Sorted by aclKey. */
  acls?: AclBinding[];
}

/**
 * Applies a validated command; planned first so a rejection changes nothing.
 * A plan of null accepts a command the state already reflects: nothing
 * changes, metadataVersion included, so clients do not refresh for it.
 */
type Commit = () => Omit<CommandAccepted, "ok" | "metadataVersion">;

export class ControllerState implements StateMachine {
  #clusterId: string | null = null;
  /**
   * Incremented by every accepted command that has a commit step (all but
   * stale or repeated leaderChanged reports); clients compare it to refresh.
   */
  #metadataVersion = 0;
  /** Invariant: above every group id ever handed out, deleted topics included. */
  #nextGroupId = FIRST_PARTITION_GROUP_ID;
  /** Rotates each assignment's start so leaders spread across topics. */
  #assignmentCursor = 0;
  /** Invariant: above every producer id ever handed out. */
  #nextProducerId = 0n;
  readonly #brokers = new Map<number, BrokerState>();
  readonly #topics = new Map<string, TopicState>();
  readonly #topicNamesById = new Map<string, string>();
  /** Dynamic broker configs by node id, or "" for every broker's default. */
  readonly #brokerConfigs = new Map<string, Readonly<Record<string, string>>>();
  /** SCRAM credentials by user, then mechanism; a user has at least one. */
  readonly #scram = new Map<
    string,
    ReadonlyMap<ScramMechanismName, StoredScramCredential>
  >();
  /** ACL bindings by aclKey: a binding is held at most once. */
  readonly #acls = new Map<string, AclBinding>();
  /** acls() until the next change: the authorizer indexes it once per change. */
  #aclsSorted: readonly AclBinding[] | null = null;
  /** Where each live partition group sits: rebuilt from #topics on restore. */
  readonly #partitionsByGroup = new Map<
    number,
    { topic: string; partition: number }
  >();
  #controllerLeader = NO_CONTROLLER_LEADER;

  get clusterId(): string | null {
    return this.#clusterId;
  }

  get metadataVersion(): number {
    return this.#metadataVersion;
  }

  /** One result per entry; an undecodable entry is rejected with INVALID_REQUEST. */
  apply(entries: Entry[]): CommandResult[] {
    return entries.map((entry) => {
      let command: Command;
      try {
        command = decodeCommand(entry.data);
      } catch (err) {
        if (!(err instanceof ControllerDecodeError)) throw err;
        return {
          ok: false,
          code: ErrorCode.INVALID_REQUEST,
          message: err.message,
        };
      }
      return this.#run(command, { commit: true });
    });
  }

  /**
   * What applying the command now would answer, without applying it: lets
   * a proposer refuse early or serve CreateTopics validate_only. The answer
   * may change by the time a proposal commits.
   */
  check(command: Command): CommandRejected | null {
    const result = this.#run(command, { commit: false });
    return result.ok ? null : result;
  }

  #run(command: Command, options: { commit: boolean }): CommandResult {
    let commit: Commit | null;
    try {
      commit = this.#plan(command);
    } catch (err) {
      if (err instanceof TopicError || err instanceof ControllerError) {
        return { ok: false, code: err.code, message: err.message };
      }
      throw err;
    }
    if (commit === null || !options.commit) {
      return { ok: true, metadataVersion: this.#metadataVersion };
    }
    const extra = commit();
    this.#metadataVersion++;
    return { ok: true, metadataVersion: this.#metadataVersion, ...extra };
  }

  #plan(command: Command): Commit | null {
    switch (command.type) {
      case "initCluster":
        return this.#planInitCluster(command.clusterId);
      case "alterScramCredentials":
        return this.#planAlterScramCredentials(command);
      case "createAcls":
        return this.#planCreateAcls(command.bindings);
      case "deleteAcls":
        return this.#planDeleteAcls(command.bindings);
      case "registerBroker":
        return this.#planRegisterBroker(command.broker, command.lastSeenMs);
      case "unregisterBroker":
        return this.#planUnregisterBroker(command.nodeId);
      case "markBrokerFailed":
        return this.#planMarkBrokerFailed(command.nodeId);
      case "createTopic":
        return this.#planCreateTopic(command);
      case "deleteTopic":
        return this.#planDeleteTopic(command.name);
      case "createPartitions":
        return this.#planCreatePartitions(command);
      case "alterTopicConfigs":
        return this.#planAlterTopicConfigs(command);
      case "alterBrokerConfigs":
        return this.#planAlterBrokerConfigs(command);
      case "reassignPartition":
        return this.#planReassignPartition(command);
      case "completeReassignment":
        return this.#planCompleteReassignment(command);
      case "allocateProducerIds":
        return this.#planAllocateProducerIds(command.count);
      case "leaderChanged":
        return this.#planLeaderChanged(command);
    }
  }

  #planInitCluster(clusterId: string): Commit {
    checkName("Cluster id", clusterId);
    if (this.#clusterId !== null && this.#clusterId !== clusterId) {
      throw new ControllerError(
        ErrorCode.INVALID_REQUEST,
        `Cluster id "${clusterId}" does not match this cluster's id "${this.#clusterId}"`,
      );
    }
    // Several brokers may race to initialise: the same id again is a no-op.
    return () => {
      this.#clusterId = clusterId;
      return {};
    };
  }

  #planAlterScramCredentials(
    command: Extract<Command, { type: "alterScramCredentials" }>,
  ): Commit {
    for (const u of [...command.upsertions, ...command.deletions]) {
      checkName("User name", u.user);
    }
    for (const u of command.upsertions) {
      if (!Number.isInteger(u.iterations) || u.iterations < 1) {
        throw new ControllerError(
          ErrorCode.INVALID_REQUEST,
          `SCRAM iterations ${u.iterations} of user "${u.user}" are invalid`,
        );
      }
    }
    return () => {
      for (const d of command.deletions) {
        const next = new Map(this.#scram.get(d.user));
        next.delete(d.mechanism);
        if (next.size === 0) this.#scram.delete(d.user);
        else this.#scram.set(d.user, next);
      }
      for (const { user, mechanism, ...stored } of command.upsertions) {
        const next = new Map(this.#scram.get(user));
        next.set(mechanism, Object.freeze(stored));
        this.#scram.set(user, next);
      }
      return {};
    };
  }

  #planCreateAcls(bindings: readonly AclBinding[]): Commit | null {
    bindings.forEach(checkAclBinding);
    const added = bindings.filter((b) => !this.#acls.has(aclKey(b)));
    if (added.length === 0) return null;
    return () => {
      for (const b of added) this.#acls.set(aclKey(b), Object.freeze({ ...b }));
      this.#aclsSorted = null;
      return {};
    };
  }

  #planDeleteAcls(bindings: readonly AclBinding[]): Commit | null {
    const present = bindings.filter((b) => this.#acls.has(aclKey(b)));
    if (present.length === 0) return null;
    return () => {
      for (const b of present) this.#acls.delete(aclKey(b));
      this.#aclsSorted = null;
      return {};
    };
  }

  #planRegisterBroker(broker: BrokerRegistration, lastSeenMs: number): Commit {
    checkNodeId(broker.nodeId);
    checkName("Kafka host", broker.kafkaHost);
    checkName("Raft host", broker.raftHost);
    checkPort("Kafka port", broker.kafkaPort);
    // 0: a broker on its own, which takes no Raft connections.
    if (broker.raftPort !== 0) checkPort("Raft port", broker.raftPort);
    for (const listener of broker.listeners ?? []) {
      checkName("Listener name", listener.name);
      checkName("Listener host", listener.host);
      checkPort("Listener port", listener.port);
    }
    if (lastSeenMs < 0) {
      throw new ControllerError(
        ErrorCode.INVALID_REQUEST,
        `Broker ${broker.nodeId}'s lastSeenMs ${lastSeenMs} is invalid: it must not be negative`,
      );
    }
    return () => {
      this.#brokers.set(
        broker.nodeId,
        Object.freeze({
          nodeId: broker.nodeId,
          kafkaHost: broker.kafkaHost,
          kafkaPort: broker.kafkaPort,
          raftHost: broker.raftHost,
          raftPort: broker.raftPort,
          ...(broker.listeners === undefined
            ? {}
            : { listeners: broker.listeners.map((l) => ({ ...l })) }),
          status: "online",
          lastSeenMs,
        }),
      );
      return {};
    };
  }

  #planUnregisterBroker(nodeId: number): Commit {
    const broker = this.#knownBroker(nodeId);
    return () => {
      if (this.partitionsOf(nodeId).length === 0) {
        this.#brokers.delete(nodeId);
      } else {
        this.#brokers.set(
          nodeId,
          Object.freeze({ ...broker, status: "fenced" }),
        );
      }
      return {};
    };
  }

  #planMarkBrokerFailed(nodeId: number): Commit {
    const broker = this.#knownBroker(nodeId);
    return () => {
      // A fenced broker stays fenced: it left on purpose.
      if (broker.status === "online") {
        this.#brokers.set(
          nodeId,
          Object.freeze({ ...broker, status: "failed" }),
        );
      }
      return {};
    };
  }

  #planCreateTopic(
    command: Extract<Command, { type: "createTopic" }>,
  ): Commit {
    const { name, topicId, partitions, replicationFactor } = command;
    validateTopicName(name);
    if (this.#topics.has(name)) {
      throw new TopicError(
        ErrorCode.TOPIC_ALREADY_EXISTS,
        `Topic "${name}" already exists`,
      );
    }
    if (!TOPIC_ID.test(topicId) || topicId === ZERO_TOPIC_ID) {
      throw new ControllerError(
        ErrorCode.INVALID_REQUEST,
        `Topic id "${topicId}" is invalid: expected 32 lowercase hex chars, not all zero`,
      );
    }
    const holder = this.#topicNamesById.get(topicId);
    if (holder !== undefined) {
      throw new TopicError(
        ErrorCode.TOPIC_ALREADY_EXISTS,
        `Topic id ${topicId} is already used by topic "${holder}"`,
      );
    }
    checkPartitionCount(partitions, { current: 0 });
    validateTopicConfigs(command.configs, { replicationFactor });
    const assigned = this.#assign({
      replicationFactor,
      partitionCount: partitions,
      firstPartition: 0,
    });
    const configs = sortedRecord(command.configs);
    return () => {
      const topic = freezeTopic({
        name,
        topicId,
        replicationFactor,
        configs,
        partitions: this.#allocateGroups(assigned(), 0),
      });
      this.#putTopic(topic);
      return { topic };
    };
  }

  #planDeleteTopic(name: string): Commit {
    const topic = this.#knownTopic(name);
    return () => {
      this.#topics.delete(name);
      this.#topicNamesById.delete(topic.topicId);
      for (const p of topic.partitions) {
        this.#partitionsByGroup.delete(p.groupId);
      }
      return {};
    };
  }

  #planCreatePartitions(
    command: Extract<Command, { type: "createPartitions" }>,
  ): Commit {
    const { name, count, assignments } = command;
    const topic = this.#knownTopic(name);
    const current = topic.partitions.length;
    checkPartitionCount(count, { current });
    const assigned = assignments === undefined
      ? this.#assign({
        replicationFactor: topic.replicationFactor,
        partitionCount: count - current,
        firstPartition: current,
      })
      : this.#checkManualAssignments(topic, count - current, assignments);
    return () => {
      const added = this.#allocateGroups(assigned(), current);
      const updated = freezeTopic({
        ...topic,
        partitions: [...topic.partitions, ...added],
      });
      this.#putTopic(updated);
      return { topic: updated };
    };
  }

  /** Replicas named by the client: as many as the topic's factor, distinct, on live brokers. */
  #checkManualAssignments(
    topic: TopicState,
    added: number,
    assignments: number[][],
  ): () => number[][] {
    const refuse = (why: string): never => {
      throw new TopicError(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `Replica assignment for the new partitions of "${topic.name}" ${why}`,
      );
    };
    if (assignments.length !== added) {
      refuse(`lists ${assignments.length} partitions, not the ${added} added`);
    }
    const live = new Set(this.liveBrokers().map((b) => b.nodeId));
    assignments.forEach((replicas, i) => {
      const where = `partition ${topic.partitions.length + i}`;
      if (replicas.length !== topic.replicationFactor) {
        refuse(
          `gives ${where} ${replicas.length} replicas: the topic has replication factor ${topic.replicationFactor}`,
        );
      }
      if (new Set(replicas).size !== replicas.length) {
        refuse(`names a broker twice for ${where}: ${replicas.join(",")}`);
      }
      const dead = replicas.find((id) => !live.has(id));
      if (dead !== undefined) {
        refuse(`places ${where} on broker ${dead}, which is not live`);
      }
    });
    return () => assignments.map((r) => [...r]);
  }

  #planAlterTopicConfigs(
    command: Extract<Command, { type: "alterTopicConfigs" }>,
  ): Commit {
    const topic = this.#knownTopic(command.name);
    const next = applyConfigOps(topic.configs, command.replace, command.ops);
    validateTopicConfigs(next, { replicationFactor: topic.replicationFactor });
    const configs = sortedRecord(next);
    return () => {
      const updated = freezeTopic({ ...topic, configs });
      this.#putTopic(updated);
      return { topic: updated };
    };
  }

  #planAlterBrokerConfigs(
    command: Extract<Command, { type: "alterBrokerConfigs" }>,
  ): Commit {
    const { broker } = command;
    if (broker !== "") {
      const id = /^\d+$/.test(broker) ? Number(broker) : NaN;
      checkNodeId(id);
      if (!this.#brokers.has(id)) {
        throw new ControllerError(
          ErrorCode.INVALID_REQUEST,
          `Broker ${broker} is not a member of the cluster`,
        );
      }
    }
    const next = applyConfigOps(
      this.#brokerConfigs.get(broker) ?? {},
      command.replace,
      command.ops,
      "broker",
    );
    validateBrokerConfigs(next);
    const configs = Object.freeze(sortedRecord(next));
    return () => {
      if (Object.keys(configs).length === 0) this.#brokerConfigs.delete(broker);
      else this.#brokerConfigs.set(broker, configs);
      return {};
    };
  }

  #planReassignPartition(
    command: Extract<Command, { type: "reassignPartition" }>,
  ): Commit | null {
    const { name, partition, replicas: target } = command;
    const topic = this.#knownTopic(name);
    const current = topic.partitions[partition];
    if (current === undefined) {
      throw new TopicError(
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        `Partition ${partition} of topic "${name}" does not exist: it has ${topic.partitions.length}`,
      );
    }
    const moving = isMoving(current);
    if (target === null) {
      if (!moving) {
        throw new ControllerError(
          ErrorCode.NO_REASSIGNMENT_IN_PROGRESS,
          `"${name}"-${partition} has no reassignment to cancel`,
        );
      }
      // Back to the replicas the move started from; the group's leader
      // undoes whatever membership changes it already made.
      const original = current.replicas.filter((r) =>
        !current.addingReplicas.includes(r)
      );
      return () => ({
        topic: this.#updatePartition(topic, partition, (p) => ({
          ...p,
          replicas: [...original, ...current.addingReplicas],
          addingReplicas: [],
          removingReplicas: current.addingReplicas,
          preferredLeader: original[0]!,
        })),
      });
    }
    this.#checkReplicaList(target, `"${name}"-${partition}`);
    if (moving) {
      // A client retrying the same request changes nothing.
      if (sameList(targetOf(current), target)) return null;
      throw new ControllerError(
        ErrorCode.REASSIGNMENT_IN_PROGRESS,
        `"${name}"-${partition} is already moving to [${
          targetOf(current).join(", ")
        }]: cancel that first`,
      );
    }
    const adding = target.filter((r) => !current.replicas.includes(r));
    const removing = current.replicas.filter((r) => !target.includes(r));
    return () => ({
      topic: this.#updatePartition(topic, partition, (p) => ({
        ...p,
        // A mere reordering needs no membership change: it is done at once.
        replicas: [...target, ...removing],
        addingReplicas: adding,
        removingReplicas: removing,
        preferredLeader: target[0]!,
      })),
    });
  }

  #planCompleteReassignment(
    command: Extract<Command, { type: "completeReassignment" }>,
  ): Commit | null {
    const { groupId, replicas } = command;
    const { topic, assignment } = this.#knownGroup(groupId);
    const where = `"${topic.name}"-${assignment.partition}`;
    if (!isMoving(assignment)) {
      // A repeated completion (the leader retrying after a lost answer).
      if (sameList(assignment.replicas, replicas)) return null;
      throw new ControllerError(
        ErrorCode.NO_REASSIGNMENT_IN_PROGRESS,
        `${where} has no reassignment to complete`,
      );
    }
    const target = targetOf(assignment);
    if (!sameList(target, replicas)) {
      // The move was cancelled or replaced since the leader looked.
      throw new ControllerError(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `Completion of ${where} with [${
          replicas.join(", ")
        }] is stale: its target is [${target.join(", ")}]`,
      );
    }
    return () => ({
      topic: this.#updatePartition(topic, assignment.partition, (p) => ({
        ...p,
        replicas: target,
        addingReplicas: [],
        removingReplicas: [],
        leader: target.includes(p.leader) ? p.leader : UNKNOWN,
      })),
    });
  }

  /** Refuses a replica list Kafka would answer INVALID_REPLICA_ASSIGNMENT. */
  #checkReplicaList(replicas: readonly number[], where: string): void {
    const bad = (why: string): never => {
      throw new ControllerError(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `Replicas [${replicas.join(", ")}] for ${where} are invalid: ${why}`,
      );
    };
    if (replicas.length === 0) bad("the list is empty");
    if (new Set(replicas).size !== replicas.length) {
      bad("a broker appears twice");
    }
    for (const id of replicas) {
      const broker = this.#brokers.get(id);
      if (broker === undefined) bad(`broker ${id} is not registered`);
      if (broker?.status === "fenced") bad(`broker ${id} has unregistered`);
    }
  }

  #planAllocateProducerIds(count: number): Commit {
    if (
      !Number.isInteger(count) || count < 1 || count > PRODUCER_ID_BLOCK_MAX
    ) {
      throw new ControllerError(
        ErrorCode.INVALID_REQUEST,
        `Producer id block size ${count} is invalid: use 1 to ${PRODUCER_ID_BLOCK_MAX}`,
      );
    }
    const first = this.#nextProducerId;
    if (first + BigInt(count) - 1n > PRODUCER_ID_MAX) {
      throw new ControllerError(
        ErrorCode.UNKNOWN_SERVER_ERROR,
        `Producer ids are exhausted: ${count} more would pass ${PRODUCER_ID_MAX}`,
      );
    }
    return () => {
      this.#nextProducerId = first + BigInt(count);
      return { firstProducerId: first };
    };
  }

  #planLeaderChanged(
    command: Extract<Command, { type: "leaderChanged" }>,
  ): Commit | null {
    const { groupId, leader, term } = command;
    checkNodeId(leader);
    // Raft leads from term 1 on: a candidate increments term 0 first.
    if (!Number.isInteger(term) || term < 1) {
      throw new ControllerError(
        ErrorCode.INVALID_REQUEST,
        `Term ${term} reported for Raft group ${groupId} is invalid: a leader's term is at least 1`,
      );
    }
    const report = { leader, term };
    if (groupId === CONTROLLER_GROUP_ID) {
      if (isStale(this.#controllerLeader, report)) return null;
      return () => {
        this.#controllerLeader = Object.freeze(report);
        return {};
      };
    }
    const { topic, assignment } = this.#knownGroup(groupId);
    // Staleness first: a late report from a broker that a reassignment has
    // since removed is a harmless race, not a bad request.
    const recorded = {
      leader: assignment.leader,
      term: assignment.leaderEpoch,
    };
    if (isStale(recorded, report)) return null;
    if (!assignment.replicas.includes(leader)) {
      throw new ControllerError(
        ErrorCode.INVALID_REQUEST,
        `Leader ${leader} reported for "${topic.name}"-${assignment.partition} (Raft group ${groupId}) is not one of its replicas [${
          assignment.replicas.join(", ")
        }]`,
      );
    }
    return () => {
      this.#updatePartition(
        topic,
        assignment.partition,
        (p) => ({ ...p, leader, leaderEpoch: term }),
      );
      return {};
    };
  }

  /** Stores the topic with partition `partition` replaced by `change` of it. */
  #updatePartition(
    topic: TopicState,
    partition: number,
    change: (p: PartitionAssignment) => PartitionAssignment,
  ): TopicState {
    const updated = freezeTopic({
      ...topic,
      partitions: topic.partitions.map((p) =>
        p.partition === partition ? change(p) : p
      ),
    });
    this.#putTopic(updated);
    return updated;
  }

  /** Adds or replaces a topic, keeping the id and group indexes in step. */
  #putTopic(topic: TopicState): void {
    this.#topics.set(topic.name, topic);
    this.#topicNamesById.set(topic.topicId, topic.name);
    for (const p of topic.partitions) {
      this.#partitionsByGroup.set(p.groupId, {
        topic: topic.name,
        partition: p.partition,
      });
    }
  }

  /**
   * Checks the replication factor against the live brokers now and returns
   * the step that computes the assignment and advances the cursor.
   */
  #assign(options: {
    replicationFactor: number;
    partitionCount: number;
    firstPartition: number;
  }): () => number[][] {
    const live = this.liveBrokers().map((b) => b.nodeId);
    const rf = options.replicationFactor;
    if (!Number.isInteger(rf) || rf < 1) {
      throw new TopicError(
        ErrorCode.INVALID_REPLICATION_FACTOR,
        `Replication factor ${rf} is invalid: it must be at least 1`,
      );
    }
    if (rf > live.length) {
      throw new TopicError(
        ErrorCode.INVALID_REPLICATION_FACTOR,
        `Replication factor ${rf} is larger than the ${live.length} live broker(s)`,
      );
    }
    return () => {
      const replicas = assignReplicas({
        ...options,
        brokerIds: live,
        startIndex: this.#assignmentCursor,
      });
      this.#assignmentCursor = (this.#assignmentCursor + 1) % live.length;
      return replicas;
    };
  }

  #allocateGroups(
    replicaLists: number[][],
    firstPartition: number,
  ): PartitionAssignment[] {
    return replicaLists.map((replicas, i) => ({
      partition: firstPartition + i,
      replicas,
      addingReplicas: [],
      removingReplicas: [],
      groupId: this.#nextGroupId++,
      preferredLeader: replicas[0]!,
      leader: UNKNOWN,
      leaderEpoch: UNKNOWN,
    }));
  }

  #knownBroker(nodeId: number): BrokerState {
    const broker = this.#brokers.get(nodeId);
    if (broker === undefined) {
      throw new ControllerError(
        ErrorCode.BROKER_NOT_AVAILABLE,
        `Broker ${nodeId} is not registered`,
      );
    }
    return broker;
  }

  /** The partition a Raft group serves; throws when there is none. */
  #knownGroup(
    groupId: number,
  ): { topic: TopicState; assignment: PartitionAssignment } {
    const found = this.partitionByGroup(groupId);
    if (found === undefined) {
      throw new TopicError(
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        `Raft group ${groupId} is not a partition's group: its topic may have been deleted`,
      );
    }
    return found;
  }

  #knownTopic(name: string): TopicState {
    const topic = this.#topics.get(name);
    if (topic === undefined) {
      throw new TopicError(
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        `Topic "${name}" does not exist`,
      );
    }
    return topic;
  }

  /** Sorted by name. */
  topics(): TopicState[] {
    return [...this.#topics.values()].sort((a, b) => compare(a.name, b.name));
  }

  topic(name: string): TopicState | undefined {
    return this.#topics.get(name);
  }

  /** The dynamic broker configs in force for broker `nodeId`. */
  brokerConfigs(nodeId: number): DynamicBrokerConfigs {
    return {
      broker: this.#brokerConfigs.get(String(nodeId)) ?? {},
      cluster: this.#brokerConfigs.get("") ?? {},
    };
  }

  topicById(topicId: string): TopicState | undefined {
    const name = this.#topicNamesById.get(topicId);
    return name === undefined ? undefined : this.#topics.get(name);
  }

  /** The partition whose Raft group is `groupId`; undefined for group 0 and deleted topics. */
  partitionByGroup(
    groupId: number,
  ): { topic: TopicState; assignment: PartitionAssignment } | undefined {
    const at = this.#partitionsByGroup.get(groupId);
    if (at === undefined) return undefined;
    const topic = this.#topics.get(at.topic);
    const assignment = topic?.partitions[at.partition];
    assert(
      topic !== undefined && assignment?.groupId === groupId,
      "Group index points at a partition that does not hold the group",
      { groupId, ...at },
    );
    return { topic, assignment };
  }

  /** One user's SCRAM credentials by mechanism; empty for an unknown user. */
  scramCredentials(
    user: string,
  ): ReadonlyMap<ScramMechanismName, StoredScramCredential> {
    return this.#scram.get(user) ?? new Map();
  }

  /** Users with at least one SCRAM credential, sorted. */
  scramUsers(): string[] {
    return [...this.#scram.keys()].sort(compare);
  }

  /**
   * Every ACL binding, in one fixed order; the same array until the ACLs
   * change, so callers may cache what they derive from it.
   */
  acls(): readonly AclBinding[] {
    this.#aclsSorted ??= Object.freeze(
      [...this.#acls].sort(([a], [b]) => compare(a, b)).map(([, b]) => b),
    );
    return this.#aclsSorted;
  }

  /** As last reported by a leaderChanged for group 0. */
  controllerLeader(): ControllerLeader {
    return this.#controllerLeader;
  }

  /** Sorted by node id. */
  brokers(): BrokerState[] {
    return [...this.#brokers.values()].sort((a, b) => a.nodeId - b.nodeId);
  }

  /** The brokers that take new replicas and may lead: status online, sorted by node id. */
  liveBrokers(): BrokerState[] {
    return this.brokers().filter((b) => b.status === "online");
  }

  /** The partition groups a broker must host, by topic name then partition. */
  partitionsOf(nodeId: number): HostedPartition[] {
    return this.topics().flatMap((t) =>
      t.partitions
        .filter((p) => p.replicas.includes(nodeId))
        .map((p) => ({
          topic: t.name,
          topicId: t.topicId,
          partition: p.partition,
          groupId: p.groupId,
          replicas: p.replicas,
          moving: isMoving(p),
          adding: p.addingReplicas,
        }))
    );
  }

  /**
   * Partitions whose preferred leader is live but not leading, for the
   * controller's balancing task. `currentLeaders` maps group id to leader
   * (0 or absent = none known); a group without a known leader is left out,
   * since leadership can only be handed over by a sitting leader.
   */
  preferredLeaderMoves(
    currentLeaders: ReadonlyMap<number, number>,
  ): LeaderMove[] {
    const live = new Set(this.liveBrokers().map((b) => b.nodeId));
    return this.topics().flatMap((t) =>
      t.partitions.flatMap((p) => {
        const currentLeader = currentLeaders.get(p.groupId) ?? 0;
        if (
          currentLeader === 0 || currentLeader === p.preferredLeader ||
          !live.has(p.preferredLeader)
        ) {
          return [];
        }
        return [{
          topic: t.name,
          partition: p.partition,
          groupId: p.groupId,
          preferredLeader: p.preferredLeader,
          currentLeader,
        }];
      })
    );
  }

  /** The whole state, sorted, so equal states give equal bytes. */
  snapshot(): Uint8Array {
    const body: SnapshotBody = {
      clusterId: this.#clusterId,
      metadataVersion: this.#metadataVersion,
      nextGroupId: this.#nextGroupId,
      assignmentCursor: this.#assignmentCursor,
      nextProducerId: this.#nextProducerId.toString(),
      controllerLeader: this.#controllerLeader,
      brokers: this.brokers(),
      topics: this.topics(),
      brokerConfigs: Object.fromEntries(
        [...this.#brokerConfigs].sort(([a], [b]) => compare(a, b)),
      ),
      scramCredentials: Object.fromEntries(
        this.scramUsers().map((user) => [
          user,
          Object.fromEntries(
            [...this.scramCredentials(user)].sort(([a], [b]) => compare(a, b)),
          ),
        ]),
      ),
      acls: [...this.acls()],
    };
    return encodeVersioned(SNAPSHOT_VERSION, body);
  }

  /** Replaces the whole state; throws ControllerDecodeError on a malformed snapshot. */
  restore(data: Uint8Array): void {
    const body = decodeVersioned(data, {
      what: "snapshot",
      version: SNAPSHOT_VERSION,
      check: SNAPSHOT_SHAPE,
    }) as SnapshotBody;
    this.#clusterId = body.clusterId;
    this.#metadataVersion = body.metadataVersion;
    this.#nextGroupId = body.nextGroupId;
    this.#assignmentCursor = body.assignmentCursor;
    this.#nextProducerId = BigInt(body.nextProducerId);
    this.#controllerLeader = Object.freeze(body.controllerLeader);
    this.#brokers.clear();
    this.#topics.clear();
    this.#topicNamesById.clear();
    this.#partitionsByGroup.clear();
    this.#brokerConfigs.clear();
    this.#scram.clear();
    this.#acls.clear();
    this.#aclsSorted = null;
    for (const b of body.acls ?? []) {
      this.#acls.set(aclKey(b), Object.freeze(b));
    }
    for (
      const [user, byMechanism] of Object.entries(body.scramCredentials ?? {})
    ) {
      const credentials = new Map<ScramMechanismName, StoredScramCredential>();
      for (const [mechanism, stored] of Object.entries(byMechanism)) {
        const name = SCRAM_MECHANISM_NAMES.find((m) => m === mechanism);
        assert(
          name !== undefined,
          "Snapshot holds an unknown SCRAM mechanism",
          {
            user,
            mechanism,
          },
        );
        credentials.set(name, Object.freeze(stored));
      }
      if (credentials.size > 0) this.#scram.set(user, credentials);
    }
    for (const [broker, configs] of Object.entries(body.brokerConfigs ?? {})) {
      this.#brokerConfigs.set(broker, Object.freeze(sortedRecord(configs)));
    }
    for (const broker of body.brokers) {
      this.#brokers.set(broker.nodeId, Object.freeze(broker));
    }
    const groupIds = new Set<number>();
    for (const topic of body.topics) {
      assert(
        !this.#topics.has(topic.name) &&
          !this.#topicNamesById.has(topic.topicId),
        "Snapshot holds a topic twice",
        { name: topic.name, topicId: topic.topicId },
      );
      topic.partitions.forEach((p, i) => {
        // partitionByGroup finds a partition by its number as an index.
        assert(p.partition === i, "Snapshot numbers partitions out of order", {
          name: topic.name,
          partition: p.partition,
          index: i,
        });
        assert(
          p.groupId >= FIRST_PARTITION_GROUP_ID &&
            p.groupId < this.#nextGroupId && !groupIds.has(p.groupId),
          "Snapshot holds a group id twice or beyond its counter",
          { name: topic.name, partition: p.partition, groupId: p.groupId },
        );
        assert(
          p.leader === UNKNOWN || p.replicas.includes(p.leader),
          "Snapshot records a leader that is not a replica",
          { name: topic.name, partition: p.partition, leader: p.leader },
        );
        groupIds.add(p.groupId);
      });
      this.#putTopic(freezeTopic(topic));
    }
  }
}

function freezeTopic(topic: TopicState): TopicState {
  return Object.freeze({
    ...topic,
    configs: Object.freeze({ ...topic.configs }),
    partitions: Object.freeze(
      topic.partitions.map((p) =>
        Object.freeze({
          ...p,
          replicas: Object.freeze([...p.replicas]),
          addingReplicas: Object.freeze([...p.addingReplicas]),
          removingReplicas: Object.freeze([...p.removingReplicas]),
        })
      ),
    ),
  });
}

/**
 * A report adds nothing if an equal or later term is recorded: an older
 * term's leader has been replaced, and the same term's leader is known.
 */
function isStale(
  recorded: { leader: number; term: number },
  report: { leader: number; term: number },
): boolean {
  return report.term < recorded.term ||
    (report.term === recorded.term && report.leader === recorded.leader);
}

/** True while a reassignment of the partition runs. */
export function isMoving(p: PartitionAssignment): boolean {
  return p.addingReplicas.length > 0 || p.removingReplicas.length > 0;
}

/** Where a partition's replicas are headed: `replicas` once no move runs. */
export function targetOf(p: PartitionAssignment): readonly number[] {
  return p.replicas.filter((r) => !p.removingReplicas.includes(r));
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Keys sorted, so that equal configs encode to equal snapshots. */
function sortedRecord(
  record: Readonly<Record<string, string>>,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(record).sort(([a], [b]) => compare(a, b)),
  );
}

function checkName(what: string, value: string): void {
  if (value.length === 0 || value.length > NAME_LENGTH_MAX) {
    throw new ControllerError(
      ErrorCode.INVALID_REQUEST,
      `${what} "${value}" is invalid: it must have 1 to ${NAME_LENGTH_MAX} characters`,
    );
  }
}

/** Every field, in a fixed order: equal bindings have equal keys. */
function aclKey(b: AclBinding): string {
  return JSON.stringify([
    b.resourceType,
    b.patternType,
    b.resourceName,
    b.principal,
    b.host,
    b.operation,
    b.permission,
  ]);
}

/** Why the state would refuse the binding, or null. */
export function aclBindingProblem(b: AclBinding): string | null {
  return b.resourceName.length === 0 ||
      b.resourceName.length > NAME_LENGTH_MAX
    ? `its resource name must have 1 to ${NAME_LENGTH_MAX} characters`
    : b.resourceType === "cluster" &&
        (b.resourceName !== CLUSTER_RESOURCE_NAME ||
          b.patternType !== "literal")
    ? `a cluster ACL must name the literal resource "${CLUSTER_RESOURCE_NAME}"`
    : !/^[^:]+:.+$/.test(b.principal) || b.principal.length > NAME_LENGTH_MAX
    ? `principal "${b.principal}" is not of the form Type:name (such as User:alice)`
    : b.host.length === 0 || b.host.length > NAME_LENGTH_MAX
    ? `its host must have 1 to ${NAME_LENGTH_MAX} characters ("*" for any)`
    : null;
}

function checkAclBinding(b: AclBinding): void {
  const problem = aclBindingProblem(b);
  if (problem !== null) {
    throw new ControllerError(
      ErrorCode.INVALID_REQUEST,
      `ACL ${b.permission} ${b.operation} on ${b.resourceType} "${b.resourceName}" is invalid: ${problem}`,
    );
  }
}

function checkNodeId(nodeId: number): void {
  // 0 means "no node" to the Raft layer.
  if (!Number.isInteger(nodeId) || nodeId < 1 || nodeId > NODE_ID_MAX) {
    throw new ControllerError(
      ErrorCode.INVALID_REQUEST,
      `Broker id ${nodeId} is invalid: use 1 to ${NODE_ID_MAX}`,
    );
  }
}

function checkPort(what: string, port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > PORT_MAX) {
    throw new ControllerError(
      ErrorCode.INVALID_REQUEST,
      `${what} ${port} is invalid: use 1 to ${PORT_MAX}`,
    );
  }
}

function checkPartitionCount(
  count: number,
  options: { current: number },
): void {
  const min = options.current + 1;
  if (!Number.isInteger(count) || count < min || count > MAX_PARTITIONS) {
    throw new TopicError(
      ErrorCode.INVALID_PARTITIONS,
      `Number of partitions ${count} is invalid: use ${min} to ${MAX_PARTITIONS}`,
    );
  }
}
