/**
 * Discovery: how brokers learn of each other (id, Kafka and raft addresses,
 * status, load). It only introduces them; the controller group's state is the
 * authoritative membership.
 *
 * Seam: the `Discovery` interface, with three implementations that
 * `createDiscovery` picks from the config: `memory` (one process: dev and
 * tests, brokers sharing a `MemoryRegistry`), `static` (the config's
 * `id@host:raft_port` voter list) and `etcd` (lease-bound registration plus a
 * prefix watch, serving its cache while etcd is away). `conformance.ts` holds
 * the test suite every implementation passes. `claimFounding` is the one
 * write-once record they keep, so that brokers meeting an empty cluster agree
 * on who founds it.
 *
 * Imports nothing from raftq (src/util at most): the config slices it takes
 * (DiscoveryConfig, StaticPeer) are declared here.
 */
export { createDiscovery } from "./create.ts";
export { EtcdDiscovery, LEASE_TTL_SECONDS_DEFAULT } from "./etcd.ts";
export { MemoryDiscovery, MemoryRegistry } from "./memory.ts";
export { StaticDiscovery } from "./static.ts";
export {
  type BrokerInfo,
  type BrokerStatus,
  type Discovery,
  type DiscoveryConfig,
  type DiscoveryEvent,
  type DiscoveryListener,
  type DiscoveryOptions,
  DiscoveryStateError,
  DiscoveryUnavailableError,
  type FoundingRecord,
  type StaticPeer,
} from "./types.ts";
