/**
 * The commands of the controller Raft group and their log encoding: one
 * version byte (COMMAND_VERSION) and a UTF-8 JSON object tagged by `type`.
 * Metadata commands are rare and small, so readable JSON costs little; the
 * decoder checks every field so that apply only ever sees well-typed input.
 * Semantic checks (does the topic exist, is the name legal) are left to
 * ControllerState, which answers them with Kafka error codes.
 */
import {
  arrayOf,
  bool,
  type Check,
  decodeVersioned,
  encodeVersioned,
  int,
  nullable,
  oneOf,
  optional,
  recordOf,
  shape,
  str,
  tagged,
} from "./shape.ts";
import {
  ACL_OPERATIONS,
  ACL_PATTERN_TYPES,
  ACL_PERMISSIONS,
  ACL_RESOURCE_TYPES,
  type AclBinding,
} from "../../protocol/mod.ts";

export const COMMAND_VERSION = 1;

/** The addresses a broker announces when it joins. */
export interface BrokerRegistration {
  nodeId: number;
  /** The address of the broker's first listener. */
  kafkaHost: string;
  kafkaPort: number;
  raftHost: string;
  raftPort: number;
  /**
   * Every listener's advertised address, so Metadata can answer a client
   * with the addresses of the listener it came in on. Absent from brokers
   * registered before listeners existed.
   */
  listeners?: ListenerAddress[];
}

export interface ListenerAddress {
  name: string;
  host: string;
  port: number;
}

export interface ConfigOp {
  key: string;
  op: ConfigOpType;
  /** Ignored by delete. */
  value: string | null;
}

export const CONFIG_OP_TYPES = ["set", "delete", "append", "subtract"] as const;
export type ConfigOpType = typeof CONFIG_OP_TYPES[number];

/** A SCRAM credential as the controller keeps it: base64, never the password. */
export interface StoredScramCredential {
  salt: string;
  iterations: number;
  storedKey: string;
  serverKey: string;
}

export const SCRAM_MECHANISM_NAMES = [
  "SCRAM-SHA-256",
  "SCRAM-SHA-512",
] as const;
export type ScramMechanismName = typeof SCRAM_MECHANISM_NAMES[number];

export type Command =
  | { type: "initCluster"; clusterId: string }
  /** CreateAcls: bindings already present are kept once. */
  | { type: "createAcls"; bindings: AclBinding[] }
  /**
   * DeleteAcls: the exact bindings the proposer matched against its
   * filters; bindings no longer present are skipped.
   */
  | { type: "deleteAcls"; bindings: AclBinding[] }
  | {
    /**
     * AlterUserScramCredentials: the deletions and upsertions of one
     * request, applied together.
     */
    type: "alterScramCredentials";
    upsertions: (StoredScramCredential & {
      user: string;
      mechanism: ScramMechanismName;
    })[];
    deletions: { user: string; mechanism: ScramMechanismName }[];
  }
  | {
    type: "registerBroker";
    broker: BrokerRegistration;
    /** The proposer's clock: apply must not read one. */
    lastSeenMs: number;
  }
  | { type: "unregisterBroker"; nodeId: number }
  | { type: "markBrokerFailed"; nodeId: number }
  | {
    type: "createTopic";
    name: string;
    /** 32 lowercase hex chars, drawn by the proposer so apply stays deterministic. */
    topicId: string;
    partitions: number;
    replicationFactor: number;
    configs: Record<string, string>;
  }
  | { type: "deleteTopic"; name: string }
  /**
   * `count` is the new total, as in Kafka's CreatePartitions; `assignments`
   * names the replicas of each new partition (first = preferred leader),
   * or the controller spreads them as for a new topic.
   */
  | {
    type: "createPartitions";
    name: string;
    count: number;
    assignments?: number[][];
  }
  | {
    /**
     * Changes a topic's configs, as AlterConfigs (`replace`: the topic's
     * configs become exactly the ones `set`) or IncrementalAlterConfigs
     * (each op on its key; append and subtract on list configs).
     */
    type: "alterTopicConfigs";
    name: string;
    replace: boolean;
    ops: ConfigOp[];
  }
  | {
    /**
     * Changes dynamic broker configs, as alterTopicConfigs does a topic's:
     * `broker` is a node id, or "" for the default of every broker.
     */
    type: "alterBrokerConfigs";
    broker: string;
    replace: boolean;
    ops: ConfigOp[];
  }
  | {
    /**
     * Starts moving a partition to the target `replicas` (the first becomes
     * the preferred leader), as Kafka's AlterPartitionReassignments does; a
     * mere reordering takes effect at once. `null` cancels the running move.
     */
    type: "reassignPartition";
    name: string;
    partition: number;
    replicas: number[] | null;
  }
  | {
    /**
     * The partition group's leader found its Raft configuration equal to
     * `replicas`, the target of the move on Raft group `groupId`: the
     * brokers left out may drop the partition.
     */
    type: "completeReassignment";
    groupId: number;
    replicas: number[];
  }
  | { type: "allocateProducerIds"; count: number }
  /**
   * A broker saw `leader` lead Raft group `groupId` in `term`: group 0 is
   * the controller group, any other a partition's. Reports may arrive late
   * or twice; apply keeps the one with the highest term.
   */
  | { type: "leaderChanged"; groupId: number; leader: number; term: number };

export type CommandType = Command["type"];

export const LISTENER_ADDRESSES = optional(
  arrayOf(shape({ name: str, host: str, port: int })),
);

const BROKER_REGISTRATION = shape({
  nodeId: int,
  kafkaHost: str,
  kafkaPort: int,
  raftHost: str,
  raftPort: int,
  listeners: LISTENER_ADDRESSES,
});

const CONFIG_OPS = arrayOf(
  shape({ key: str, op: oneOf(CONFIG_OP_TYPES), value: nullable(str) }),
);

export const STORED_SCRAM_CREDENTIAL = {
  salt: str,
  iterations: int,
  storedKey: str,
  serverKey: str,
};

export const ACL_BINDING = shape({
  resourceType: oneOf(ACL_RESOURCE_TYPES),
  patternType: oneOf(ACL_PATTERN_TYPES),
  resourceName: str,
  principal: str,
  host: str,
  operation: oneOf(ACL_OPERATIONS),
  permission: oneOf(ACL_PERMISSIONS),
});

const COMMAND_FIELDS: Record<CommandType, Record<string, Check>> = {
  initCluster: { clusterId: str },
  createAcls: { bindings: arrayOf(ACL_BINDING) },
  deleteAcls: { bindings: arrayOf(ACL_BINDING) },
  alterScramCredentials: {
    upsertions: arrayOf(shape({
      user: str,
      mechanism: oneOf(SCRAM_MECHANISM_NAMES),
      ...STORED_SCRAM_CREDENTIAL,
    })),
    deletions: arrayOf(
      shape({ user: str, mechanism: oneOf(SCRAM_MECHANISM_NAMES) }),
    ),
  },
  registerBroker: { broker: BROKER_REGISTRATION, lastSeenMs: int },
  unregisterBroker: { nodeId: int },
  markBrokerFailed: { nodeId: int },
  createTopic: {
    name: str,
    topicId: str,
    partitions: int,
    replicationFactor: int,
    configs: recordOf(str),
  },
  deleteTopic: { name: str },
  createPartitions: {
    name: str,
    count: int,
    assignments: optional(arrayOf(arrayOf(int))),
  },
  alterTopicConfigs: { name: str, replace: bool, ops: CONFIG_OPS },
  alterBrokerConfigs: { broker: str, replace: bool, ops: CONFIG_OPS },
  reassignPartition: {
    name: str,
    partition: int,
    replicas: nullable(arrayOf(int)),
  },
  completeReassignment: { groupId: int, replicas: arrayOf(int) },
  allocateProducerIds: { count: int },
  leaderChanged: { groupId: int, leader: int, term: int },
};

const checkCommand = tagged(COMMAND_FIELDS);

export function encodeCommand(command: Command): Uint8Array {
  return encodeVersioned(COMMAND_VERSION, command);
}

/** Throws ControllerDecodeError on a wrong version, bad JSON or a malformed field. */
export function decodeCommand(bytes: Uint8Array): Command {
  return decodeVersioned(bytes, {
    what: "command",
    version: COMMAND_VERSION,
    check: checkCommand,
  }) as Command;
}
