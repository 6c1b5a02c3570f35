/**
 * The controller's replicated state machine: the cluster metadata (brokers,
 * topics, partition assignments with their Raft group ids and last
 * reported leaders, the controller's leader, cluster id, metadata version,
 * producer id blocks) that the controller Raft group (group 0) applies on
 * every broker, so any broker can name the leader of any partition.
 *
 * Seams: ControllerState implements the Raft host's StateMachine; proposers
 * build commands with encodeCommand and read back one CommandResult per
 * entry, whose `code` is the Kafka error code to answer. Pure and
 * deterministic: no I/O, clock or randomness, so the same commands give the
 * same state and the same snapshot bytes on every broker. Imports the raft
 * types, the protocol's error codes and the broker's topic validation; it
 * must not import the rest of the broker.
 */
export {
  ACL_OPERATIONS,
  ACL_PATTERN_TYPES,
  ACL_PERMISSIONS,
  ACL_RESOURCE_TYPES,
  type AclBinding,
  type AclOperationName,
  type AclPatternType,
  type AclPermission,
  type AclResourceType,
} from "../../protocol/mod.ts";
export {
  type BrokerRegistration,
  type Command,
  COMMAND_VERSION,
  type CommandType,
  CONFIG_OP_TYPES,
  type ConfigOp,
  type ConfigOpType,
  decodeCommand,
  encodeCommand,
  type ListenerAddress,
  SCRAM_MECHANISM_NAMES,
  type ScramMechanismName,
  type StoredScramCredential,
} from "./commands.ts";
export {
  aclBindingProblem,
  type BrokerState,
  type BrokerStatus,
  CLUSTER_RESOURCE_NAME,
  type CommandAccepted,
  type CommandRejected,
  type CommandResult,
  ControllerError,
  type ControllerLeader,
  ControllerState,
  type HostedPartition,
  isMoving,
  type LeaderMove,
  type PartitionAssignment,
  PRODUCER_ID_BLOCK_MAX,
  targetOf,
  type TopicState,
} from "./controller_state.ts";
export { ControllerDecodeError } from "./shape.ts";
