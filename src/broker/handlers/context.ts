/**
 * What request handlers may touch: the broker's identity, the cluster's
 * ports (ports.ts), the group coordinator and producer ids. Handlers are
 * plain functions of (context, request) so they can be tested without
 * sockets.
 */
import type { GroupCoordinator } from "../groups/coordinator.ts";
import type { ProducerIdSource } from "../producers/producer_ids.ts";
import type { TxnCoordinator } from "../transactions/txn_coordinator.ts";
import type { BrokerAddress, ClusterView } from "../ports.ts";
import type { BrokerConfigs } from "../configs.ts";
import type { BrokerMetrics } from "../metrics.ts";
import type { Session } from "../security/session.ts";
import type { Authorizer } from "../security/authorizer.ts";
import type { Listener } from "../../config/mod.ts";

export interface TopicDefaults {
  readonly autoCreate: boolean;
  readonly partitions: number;
  readonly replicationFactor: number;
}

/** Who sent a request, and in which version. */
export interface RequestInfo {
  readonly version: number;
  readonly clientId: string;
  readonly clientHost: string;
  /** The listener the request came in on. */
  readonly listener: Listener;
  /** The connection's authentication; SASL handlers change it. */
  readonly session: Session;
}

export interface BrokerContext {
  readonly self: BrokerAddress;
  readonly cluster: ClusterView;
  readonly topicDefaults: TopicDefaults;
  /** This broker's configs under Kafka's names, and each topic config's fallback. */
  readonly configs: BrokerConfigs;
  /**
   * The group coordinator. Calling `groups()` first creates the internal
   * offsets topic if it does not exist yet (as Kafka does on first use).
   */
  groups(): GroupCoordinator;
  /**
   * The transaction coordinator; the first call creates the internal
   * transaction state topic, as `groups()` does the offsets topic.
   */
  transactions(): TxnCoordinator;
  readonly producerIds: ProducerIdSource;
  /** Aborted when the broker stops, so long polls end at once. */
  readonly stopping: AbortSignal;
  readonly metrics: BrokerMetrics;
  /** Decides every ACL check (allows all when authorization is off). */
  readonly authorizer: Authorizer;
  /** sasl.max_reauth: how long a SASL session lasts (0: its connection's life). */
  readonly maxReauthMs: number;
  log(message: string): void;
}
