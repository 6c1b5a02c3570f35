/**
 * raftq's own Kafka client, for the CLI, end-to-end tests and benchmarks.
 * It speaks the Kafka wire protocol through src/protocol only (never the
 * broker's code), so it tests the broker as any other client would.
 * Requests are pipelined per connection; record batches are built and
 * decoded by the caller with the protocol module's buildRecordBatch and
 * decodeRecordBatches. Consumer groups: the admin calls (list, describe,
 * offsets, delete) are KafkaClient methods routed to the group's
 * coordinator; GroupMember is one member of a group, for consumers.
 */
export {
  type BrokerAddress,
  type BrokerMetadata,
  type ClientOptions,
  type ClusterDescription,
  type ClusterMetadata,
  type ConfigResource,
  EARLIEST_TIMESTAMP,
  type GroupDescription,
  type GroupListing,
  type GroupMemberDescription,
  KafkaClient,
  LATEST_TIMESTAMP,
  type PartitionMetadata,
  type PartitionOffset,
  type PartitionQuorum,
  type PartitionReassignment,
  type ProducerState,
  type ReplicaPosition,
  type TopicMetadata,
  type TransactionDescription,
  type TransactionListing,
  type UserCredentials,
} from "./client.ts";
export type { SaslMechanism, SecurityOptions } from "./connection.ts";
export type { AclFilter } from "./acls.ts";
export { ConnectionError, KafkaError, RequestTimeoutError } from "./errors.ts";
export {
  CONSUMER_PROTOCOL_TYPE,
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
  RANGE_ASSIGNOR,
  rangeAssign,
  type TopicPartitions,
} from "./consumer_protocol.ts";
export {
  type Generation,
  GroupMember,
  type GroupMemberOptions,
} from "./group_member.ts";
