import { SelfSlot, settled } from "./self_slot.ts";
import {
  type BrokerInfo,
  checkFounding,
  copyBrokerInfo,
  copyFounding,
  type Discovery,
  type DiscoveryListener,
  type FoundingRecord,
  Listeners,
  type StaticPeer,
} from "./types.ts";

/**
 * Raft gains little from more than five voters (two failures tolerated) and
 * pays for each in replication, so the rest of a long peer list are learners.
 */
const STATIC_VOTERS_MAX = 5;

/**
 * The fixed voter list of the config (Kafka's controller.quorum.voters form,
 * or `raftq serve --peers`). It cannot observe the other brokers, so they
 * stay as configured: raft address only, Kafka host "" and port 0, status
 * "starting" (introduced, not seen), until the controller says more. The
 * only events are those of this broker's own register and deregister.
 *
 * The config defines the founding too, the same on every broker: the lowest
 * peer ids vote, the lowest of all founds.
 */
export class StaticDiscovery implements Discovery {
  #peers: readonly BrokerInfo[];
  #founding: FoundingRecord;
  #self = new SelfSlot();
  #listeners: Listeners;

  constructor(
    peers: readonly StaticPeer[],
    opts: { log?: (msg: string) => void } = {},
  ) {
    if (peers.length === 0) {
      throw new TypeError("Cannot use static peers: the list is empty");
    }
    const seen = new Set<number>();
    for (const peer of peers) {
      if (seen.has(peer.nodeId)) {
        throw new TypeError(
          `Cannot use static peers: node id ${peer.nodeId} is listed twice`,
        );
      }
      seen.add(peer.nodeId);
    }
    this.#peers = peers.map((p) => ({
      nodeId: p.nodeId,
      host: "",
      kafkaPort: 0,
      raftHost: p.host,
      raftPort: p.port,
      status: "starting",
      startedAtMs: 0,
    }));
    const ids = [...seen].sort((a, b) => a - b);
    this.#founding = {
      voters: ids.slice(0, STATIC_VOTERS_MAX),
      founder: Math.min(...ids),
    };
    this.#listeners = new Listeners(opts.log ?? console.error);
  }

  register(self: BrokerInfo): Promise<void> {
    return settled(() =>
      this.#listeners.emit({ type: "up", broker: this.#self.register(self) })
    );
  }

  update(self: BrokerInfo): Promise<void> {
    return settled(() =>
      this.#listeners.emit({ type: "up", broker: this.#self.update(self) })
    );
  }

  deregister(): Promise<void> {
    const self = this.#self.deregister();
    if (self !== undefined) {
      this.#listeners.emit({ type: "down", nodeId: self.nodeId });
    }
    return Promise.resolve();
  }

  /** The peers, this broker's entry replaced by what it registered. */
  list(): Promise<BrokerInfo[]> {
    const self = this.#self.current;
    const others = this.#peers.filter((p) => p.nodeId !== self?.nodeId);
    const all = self === undefined ? others : [...others, self];
    return Promise.resolve(
      all.map(copyBrokerInfo).sort((a, b) => a.nodeId - b.nodeId),
    );
  }

  /** The config's founding, whatever the proposal. */
  claimFounding(proposal: FoundingRecord): Promise<FoundingRecord> {
    return settled(() => {
      this.#self.checkOpen("claim founding");
      checkFounding(proposal);
      return copyFounding(this.#founding);
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
    this.#listeners.clear();
  }
}
