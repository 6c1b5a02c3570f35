/**
 * The broker: Kafka client server, request handlers, topics and partitions.
 * Imports config, protocol and storage (raft and discovery with the cluster
 * issue); nothing imports the broker but the CLI.
 */
export { type Broker, startBroker } from "./broker.ts";
