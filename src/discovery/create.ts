import { EtcdDiscovery } from "./etcd.ts";
import { MemoryDiscovery } from "./memory.ts";
import { StaticDiscovery } from "./static.ts";
import type { Discovery, DiscoveryConfig, DiscoveryOptions } from "./types.ts";

/**
 * The Discovery that the config's `discovery.type` names. Memory discovery
 * made here has a registry of its own; brokers that should see each other in
 * one process share a `MemoryRegistry` through `new MemoryDiscovery(...)`.
 */
export function createDiscovery(
  config: DiscoveryConfig,
  opts: DiscoveryOptions = {},
): Discovery {
  switch (config.type) {
    case "memory":
      return new MemoryDiscovery(opts);
    case "static":
      return new StaticDiscovery(config.peers, opts);
    case "etcd":
      return new EtcdDiscovery(config, opts);
  }
}
