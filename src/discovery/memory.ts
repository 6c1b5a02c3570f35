import { SelfSlot, settled } from "./self_slot.ts";
import {
  type BrokerInfo,
  checkFounding,
  copyBrokerInfo,
  copyFounding,
  type Discovery,
  type DiscoveryEvent,
  type DiscoveryListener,
  type FoundingRecord,
  Listeners,
} from "./types.ts";

/**
 * The brokers of one process. Brokers that share a registry see each other,
 * as they would through etcd.
 */
export class MemoryRegistry {
  /** `owner` keeps a stale Discovery from removing a newer holder of its id. */
  #brokers = new Map<number, { owner: object; info: BrokerInfo }>();
  #members = new Set<(e: DiscoveryEvent) => void>();
  #founding: FoundingRecord | undefined;

  /** Delivers every later change to `deliver`; returns the leave function. */
  join(deliver: (e: DiscoveryEvent) => void): () => void {
    this.#members.add(deliver);
    return () => {
      this.#members.delete(deliver);
    };
  }

  put(owner: object, info: BrokerInfo): void {
    this.#brokers.set(info.nodeId, { owner, info: copyBrokerInfo(info) });
    this.#deliver({ type: "up", broker: info });
  }

  remove(owner: object, nodeId: number): void {
    if (this.#brokers.get(nodeId)?.owner !== owner) return;
    this.#brokers.delete(nodeId);
    this.#deliver({ type: "down", nodeId });
  }

  /** The recorded founding, `proposal` if there was none. */
  claimFounding(proposal: FoundingRecord): FoundingRecord {
    this.#founding ??= copyFounding(proposal);
    return copyFounding(this.#founding);
  }

  list(): BrokerInfo[] {
    return [...this.#brokers.values()]
      .map((b) => copyBrokerInfo(b.info))
      .sort((a, b) => a.nodeId - b.nodeId);
  }

  #deliver(e: DiscoveryEvent): void {
    for (const deliver of [...this.#members]) deliver(e);
  }
}

/**
 * Discovery within one process, for `deno task dev` and tests. Events are
 * delivered synchronously, before the call that caused them returns.
 */
export class MemoryDiscovery implements Discovery {
  #registry: MemoryRegistry;
  #self = new SelfSlot();
  #listeners: Listeners;
  #leave: () => void;

  constructor(
    opts: { registry?: MemoryRegistry; log?: (msg: string) => void } = {},
  ) {
    this.#registry = opts.registry ?? new MemoryRegistry();
    this.#listeners = new Listeners(opts.log ?? console.error);
    this.#leave = this.#registry.join((e) => this.#listeners.emit(e));
  }

  register(self: BrokerInfo): Promise<void> {
    return settled(() => this.#registry.put(this, this.#self.register(self)));
  }

  update(self: BrokerInfo): Promise<void> {
    return settled(() => this.#registry.put(this, this.#self.update(self)));
  }

  deregister(): Promise<void> {
    const self = this.#self.deregister();
    if (self !== undefined) this.#registry.remove(this, self.nodeId);
    return Promise.resolve();
  }

  list(): Promise<BrokerInfo[]> {
    return Promise.resolve(this.#registry.list());
  }

  claimFounding(proposal: FoundingRecord): Promise<FoundingRecord> {
    return settled(() => {
      this.#self.checkOpen("claim founding");
      checkFounding(proposal);
      return this.#registry.claimFounding(proposal);
    });
  }

  watch(listener: DiscoveryListener): () => void {
    this.#self.checkOpen("watch");
    return this.#listeners.add(listener);
  }

  async close(): Promise<void> {
    if (this.#self.closed) return;
    await this.deregister();
    this.#self.close();
    this.#leave();
    this.#listeners.clear();
  }
}
