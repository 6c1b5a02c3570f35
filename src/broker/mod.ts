/**
 * The broker: Kafka client server, request handlers, the controller and
 * partition Raft groups, consumer groups. Imports raft, storage, protocol,
 * discovery and config; nothing imports the broker but the CLI.
 */
export { type Broker, startBroker } from "./broker.ts";
export { checkPair } from "./listeners.ts";
export { OPEN_TXN_STATES, TXN_STATE_IDS } from "./transactions/txn_records.ts";
export type {
  BrokerSummary,
  GroupDetail,
  GroupLookup,
  GroupSummary,
  PartitionDetail,
  Readiness,
  StatusPort,
  TopicDetail,
  TopicSummary,
} from "./status.ts";
