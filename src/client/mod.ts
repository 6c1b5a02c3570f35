/**
 * raftq's own Kafka client, for the CLI, end-to-end tests and benchmarks.
 * It speaks the Kafka wire protocol through src/protocol only (never the
 * broker's code), so it tests the broker as any other client would.
 * Requests are pipelined per connection; record batches are built and
 * decoded by the caller with the protocol module's buildRecordBatch and
 * decodeRecordBatches.
 */
export {
  type BrokerMetadata,
  type ClientOptions,
  type ClusterMetadata,
  EARLIEST_TIMESTAMP,
  KafkaClient,
  LATEST_TIMESTAMP,
  type PartitionMetadata,
  type TopicMetadata,
} from "./client.ts";
export { ConnectionError, KafkaError, RequestTimeoutError } from "./errors.ts";
