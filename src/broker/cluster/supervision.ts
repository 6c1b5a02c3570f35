/**
 * How one broker keeps the controller's picture of the cluster right and
 * acts on it: it heartbeats its registration, reports the partitions it
 * leads, and hands leadership back to preferred replicas; on the
 * controller's leader it also initialises the cluster id and fails the
 * brokers that went silent.
 */
import type { RaftHost } from "../../raft/mod.ts";
import {
  type BrokerRegistration,
  type Command,
  type CommandResult,
  type ControllerState,
  isMoving,
} from "../controller/mod.ts";
import { newClusterId } from "../ids.ts";
import type { HostedGroups } from "./hosting.ts";
import { refusesConnections } from "./liveness.ts";
import { CONTROLLER_GROUP } from "./membership.ts";
import { RPC_TIMEOUT_MS } from "./rpc.ts";

/** How often a broker heartbeats, and the unit of its failure timeouts. */
export const HEARTBEAT_MS = 1_000;
/** How often a broker tells the controller which partitions it leads. */
export const LEADER_REPORT_MS = 300;
/** How often a broker hands partitions back to their preferred leader. */
export const BALANCE_MS = 3_000;

export interface SupervisionOptions {
  nodeId: number;
  host: Pick<RaftHost, "leaderOf">;
  controller: Pick<
    ControllerState,
    "brokers" | "clusterId" | "liveBrokers" | "partitionByGroup"
  >;
  groups: HostedGroups;
  /** Whether a replica's log is near the leader's and complete. */
  caughtUp(groupId: number, nodeId: number): Promise<boolean>;
  /** What each heartbeat registers: this broker's addresses. */
  registration: BrokerRegistration;
  /** Has the controller apply a command, retrying through elections. */
  propose(
    command: Command,
    opts?: { timeoutMs?: number },
  ): Promise<CommandResult>;
  /** Aborted when the node stops: no broker is failed after that. */
  signal: AbortSignal;
  log(message: string): void;
}

/**
 * The node runs heartbeat() and detectFailures() every HEARTBEAT_MS,
 * reportLeaders() every LEADER_REPORT_MS and balanceLeaders() every
 * BALANCE_MS.
 *
 * A graceful stop (ClusterNode.handOff) calls beginHandOff(), which pauses
 * heartbeats and balancing while it hands every led group to another
 * replica, so that none is handed back meanwhile.
 */
export class Supervision {
  readonly #opts: SupervisionOptions;
  /** Groups whose leader report is in flight: one at a time each. */
  readonly #reporting = new Set<number>();
  /** Brokers whose Kafka port is being tried by detectFailures(). */
  readonly #probing = new Set<number>();
  /** Set once a stop hands leaderships off: nothing may undo that. */
  #handingOff = false;

  constructor(opts: SupervisionOptions) {
    this.#opts = opts;
  }

  get #nodeId(): number {
    return this.#opts.nodeId;
  }

  /** On the controller's leader, once elected: names the cluster if new. */
  becomeController(): void {
    this.#opts.log("became the controller");
    if (this.#opts.controller.clusterId === null) {
      this.#opts.propose({ type: "initCluster", clusterId: newClusterId() })
        .catch((err) =>
          this.#opts.log(`could not initialise the cluster id: ${err}`)
        );
    }
  }

  /**
   * From a graceful stop on: no more heartbeats (a registration would mark
   * this broker online again) and no balancing that hands leaderships back.
   */
  beginHandOff(): void {
    this.#handingOff = true;
  }

  /** Registers this broker again, which tells the controller it is alive. */
  heartbeat(): void {
    if (this.#handingOff) return;
    this.#opts.propose({
      type: "registerBroker",
      broker: this.#opts.registration,
      // Wall time, not the clock's: the controller compares it with its own
      // reading, and the clock's origin differs from process to process.
      lastSeenMs: Date.now(),
    }, { timeoutMs: HEARTBEAT_MS * 2 }).catch(() => {
      // The next heartbeat tries again; the controller may be electing.
    });
  }

  /**
   * On the controller's leader: brokers silent for a whole session are
   * failed, and so, sooner, are brokers that missed a heartbeat and whose
   * Kafka port refuses connections (the process is gone): clients then
   * stop being sent to them seconds earlier.
   */
  detectFailures(): void {
    const { host, controller } = this.#opts;
    if (host.leaderOf(CONTROLLER_GROUP) !== this.#nodeId) return;
    // Wall time, like the lastSeenMs that brokers' heartbeats carry.
    const now = Date.now();
    for (const b of controller.brokers()) {
      if (b.status !== "online" || b.nodeId === this.#nodeId) continue;
      const silentMs = now - b.lastSeenMs;
      if (silentMs > HEARTBEAT_MS * 6) {
        this.#markFailed(b.nodeId, "missed its heartbeats");
      } else if (silentMs > HEARTBEAT_MS * 2 && !this.#probing.has(b.nodeId)) {
        this.#probing.add(b.nodeId);
        refusesConnections({ host: b.kafkaHost, port: b.kafkaPort }, {
          timeoutMs: HEARTBEAT_MS,
        }).then((refused) => {
          const still = controller.brokers().find((x) => x.nodeId === b.nodeId);
          if (refused && still?.lastSeenMs === b.lastSeenMs) {
            this.#markFailed(
              b.nodeId,
              "missed a heartbeat and its Kafka port refuses connections",
            );
          }
        }).finally(() => this.#probing.delete(b.nodeId));
      }
    }
  }

  #markFailed(nodeId: number, why: string): void {
    if (this.#opts.signal.aborted) return;
    this.#opts.log(`broker ${nodeId} ${why}: failed`);
    this.#opts.propose({ type: "markBrokerFailed", nodeId }).catch(() => {});
  }

  /** Tells the controller about groups this node leads that it has wrong. */
  reportLeaders(): void {
    for (const [groupId, term] of this.#opts.groups.leaderTerms) {
      if (groupId === CONTROLLER_GROUP || this.#reporting.has(groupId)) {
        continue;
      }
      const known = this.#opts.controller.partitionByGroup(groupId);
      if (known === undefined) continue;
      const a = known.assignment;
      if (a.leader === this.#nodeId && a.leaderEpoch === term) continue;
      this.#reporting.add(groupId);
      this.#opts.propose(
        { type: "leaderChanged", groupId, leader: this.#nodeId, term },
        { timeoutMs: RPC_TIMEOUT_MS },
      ).finally(() => this.#reporting.delete(groupId));
    }
  }

  /** Hands led partitions back to their preferred, live replica. */
  balanceLeaders(): void {
    if (this.#handingOff) return;
    const { controller, groups } = this.#opts;
    const live = new Set(controller.liveBrokers().map((b) => b.nodeId));
    for (const groupId of groups.leaderTerms.keys()) {
      if (groupId === CONTROLLER_GROUP) continue;
      const known = controller.partitionByGroup(groupId);
      // A moving partition's preferred leader may not be a voter yet; the
      // move itself hands leadership over when it must.
      if (known === undefined || isMoving(known.assignment)) continue;
      const preferred = known.assignment.preferredLeader;
      const sm = groups.hosted.get(groupId);
      if (sm !== undefined && sm.gapEnd !== null) {
        // This replica's log is still incomplete: let a complete one lead.
        const other = known.assignment.replicas.find((r) =>
          r !== this.#nodeId && live.has(r)
        );
        if (other !== undefined) groups.transferLeader(groupId, other);
      } else if (preferred !== this.#nodeId && live.has(preferred)) {
        this.#transferWhenCaughtUp(groupId, preferred);
      }
    }
  }

  /**
   * A leader refuses proposals while a transfer waits for its target to
   * catch up: a broker that has just restarted gets its partitions back
   * only once its log is near the leader's and complete.
   */
  #transferWhenCaughtUp(groupId: number, to: number): void {
    this.#opts.caughtUp(groupId, to).then((caughtUp) => {
      if (
        caughtUp && !this.#handingOff &&
        this.#opts.host.leaderOf(groupId) === this.#nodeId
      ) {
        this.#opts.groups.transferLeader(groupId, to);
      }
    }, () => {
      // Unreachable or slow: the next round asks again.
    });
  }
}
