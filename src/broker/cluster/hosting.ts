/**
 * The partition groups one broker runs: kept in line with the controller's
 * assignments (a group starts when this broker is made a replica and stops
 * when it no longer is), filled in where a snapshot named data the local
 * log lacks, and watched for leadership, which listeners learn once this
 * broker's log of the partition is complete.
 */
import type { LeaderChange, RaftHost } from "../../raft/mod.ts";
import type { ControllerState, HostedPartition } from "../controller/mod.ts";
import { dynamicTopicDefaults } from "../configs.ts";
import type { PartitionManager } from "../partitions.ts";
import { type Clock, sleep } from "../../util/mod.ts";
import { CONTROLLER_GROUP } from "./membership.ts";
import { encodeBarrierEntry, PartitionStateMachine } from "./partition_sm.ts";
import { type Rpc, RPC_READ_LOG, RPC_TIMEOUT_MS } from "./rpc.ts";
import { OffsetOutOfRangeError } from "../../storage/mod.ts";

/** How long a gap fill waits before it asks the leader again. */
const GAP_RETRY_MS = 200;
/** What one gap-fill read asks for; whole batches, at least one. */
const GAP_READ_BYTES = 4 * 1024 * 1024;

/** The answer's first byte to RPC_READ_LOG; the batches follow a success. */
const READ_OK = 0;
const READ_NO_REPLICA = 1;
const READ_OUT_OF_RANGE = 2;

/** What supervision and reassignment read of the groups this broker runs. */
export interface HostedGroups {
  /** The partition groups this broker is a replica of, by group id. */
  readonly hosted: ReadonlyMap<number, PartitionStateMachine>;
  /**
   * This broker's term in each group it leads, the controller group
   * included; a group is listed from the leader change that elected this
   * broker until the one that ends it, or until the group is removed.
   */
  readonly leaderTerms: ReadonlyMap<number, number>;
  /** Asks the host to hand a group's leadership over; a refusal is logged. */
  transferLeader(groupId: number, to: number): void;
}

export interface HostingOptions {
  nodeId: number;
  host: Pick<
    RaftHost,
    | "campaign"
    | "leaderOf"
    | "membership"
    | "propose"
    | "recoveredGroupIds"
    | "removeGroup"
    | "startGroup"
    | "transferLeader"
  >;
  controller: Pick<
    ControllerState,
    "brokerConfigs" | "partitionsOf" | "topic" | "topics"
  >;
  partitions: PartitionManager;
  /**
   * Carries gap-fill reads between replicas, over the Raft transport (and
   * so raft.tls) rather than a Kafka listener.
   */
  rpc: Rpc;
  clock: Clock;
  /** Aborted when the node stops: gap fills end. */
  signal: AbortSignal;
  log(message: string): void;
}

export class Hosting implements HostedGroups {
  readonly #opts: HostingOptions;
  readonly #hosted = new Map<number, PartitionStateMachine>();
  readonly #leaderTerms = new Map<number, number>();
  readonly #leadershipListeners = new Set<
    (topic: string, partition: number, leading: boolean) => void
  >();
  readonly #deletionListeners = new Set<(topic: string) => void>();
  /** Topic ids by name at the last reconcile, to tell deletions apart. */
  #knownTopics = new Map<string, string>();
  /** Groups whose gap is being filled: one fill at a time each. */
  readonly #filling = new Set<number>();

  constructor(opts: HostingOptions) {
    this.#opts = opts;
    opts.rpc.handle(
      RPC_READ_LOG,
      (_from, body) => Promise.resolve(this.#readLog(body)),
    );
  }

  /** Serves a gap fill: batches of a complete replica up to its high watermark. */
  #readLog(body: Uint8Array): Uint8Array {
    const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const groupId = v.getUint32(0);
    const offset = v.getBigInt64(4);
    const maxBytes = v.getUint32(12);
    const sm = this.#hosted.get(groupId);
    if (sm === undefined || sm.gapEnd !== null) {
      return Uint8Array.of(READ_NO_REPLICA);
    }
    const p = sm.partition;
    let records: Uint8Array;
    try {
      records = offset >= p.highWatermark
        ? new Uint8Array(0)
        : p.log.read(offset, { maxBytes, maxOffset: p.highWatermark });
    } catch (err) {
      if (!(err instanceof OffsetOutOfRangeError)) throw err;
      return Uint8Array.of(READ_OUT_OF_RANGE);
    }
    const answer = new Uint8Array(1 + records.length);
    answer[0] = READ_OK;
    answer.set(records, 1);
    return answer;
  }

  /** Asks `leader` for the batches of a group's log from `offset`. */
  async #readFrom(
    leader: number,
    groupId: number,
    offset: bigint,
  ): Promise<Uint8Array> {
    const body = new Uint8Array(16);
    const v = new DataView(body.buffer);
    v.setUint32(0, groupId);
    v.setBigInt64(4, offset);
    v.setUint32(12, GAP_READ_BYTES);
    const answer = await this.#opts.rpc.request(leader, RPC_READ_LOG, body, {
      timeoutMs: RPC_TIMEOUT_MS,
    });
    if (answer[0] !== READ_OK) {
      throw new Error(
        `broker ${leader} cannot serve group ${groupId} from offset ${offset} (${
          answer[0] === READ_OUT_OF_RANGE
            ? "out of range"
            : "no complete replica"
        })`,
      );
    }
    return answer.subarray(1);
  }

  get hosted(): ReadonlyMap<number, PartitionStateMachine> {
    return this.#hosted;
  }

  get leaderTerms(): ReadonlyMap<number, number> {
    return this.#leaderTerms;
  }

  get #nodeId(): number {
    return this.#opts.nodeId;
  }

  /**
   * Follows the host's leader changes: records the terms this broker leads
   * in, and tells the listeners when it gains or loses a partition.
   */
  leaderChanged(e: LeaderChange): void {
    const wasLeading = this.#leaderTerms.has(e.groupId);
    if (e.leader === this.#nodeId) this.#leaderTerms.set(e.groupId, e.term);
    else this.#leaderTerms.delete(e.groupId);
    if (e.groupId === CONTROLLER_GROUP) return;
    if (e.leader === this.#nodeId && !wasLeading) {
      this.#announceLeadership(e.groupId, e.term);
    } else if (e.leader !== this.#nodeId && wasLeading) {
      this.#emitLeadership(e.groupId, false);
    }
  }

  /**
   * A group whose only voter is this broker need not wait an election
   * timeout after a start: its own vote elects it.
   */
  campaignIfAlone(groupId: number): void {
    const voters = this.#opts.host.membership(groupId)?.voters;
    if (voters?.length === 1 && voters[0] === this.#nodeId) {
      this.#opts.host.campaign(groupId);
    }
  }

  /** A refused transfer (the target is not a voter here yet) waits for the next round. */
  transferLeader(groupId: number, to: number): void {
    try {
      this.#opts.host.transferLeader(groupId, to);
    } catch (err) {
      this.#opts.log(`leadership of group ${groupId} stays: ${err}`);
    }
  }

  /**
   * Starts the group of every partition the controller assigned to this
   * broker that it does not run yet, and removes (with its partition log)
   * every group it runs that is no longer assigned to it.
   */
  reconcile(): void {
    const { host, controller, partitions } = this.#opts;
    const wanted = new Map<number, HostedPartition>();
    for (const h of controller.partitionsOf(this.#nodeId)) {
      wanted.set(h.groupId, h);
    }
    const defaults = dynamicTopicDefaults(
      controller.brokerConfigs(this.#nodeId),
    );
    const noDefaults = Object.keys(defaults).length === 0;
    for (const [groupId, h] of wanted) {
      const topic = controller.topic(h.topic);
      if (topic === undefined) continue;
      // A topic's own configs over the dynamic broker defaults; kept as the
      // controller's object when there are none, so reconfigure sees no change.
      const configs = noDefaults
        ? topic.configs
        : { ...defaults, ...topic.configs };
      const running = this.#hosted.get(groupId);
      if (running !== undefined) {
        partitions.reconfigure(running.partition, configs);
        continue;
      }
      const partition = partitions.openPartition(
        { name: topic.name, configs },
        h.partition,
      );
      const sm: PartitionStateMachine = new PartitionStateMachine(partition, {
        manager: partitions,
        onGap: (from, to) => {
          this.#opts.log(
            `partition ${h.topic}-${h.partition} lacks offsets ${from}..${to} named by a snapshot: copying them from a replica`,
          );
          // Not inside the host's apply, which called restore().
          queueMicrotask(() => this.#fillGap(groupId, sm));
        },
      });
      this.#hosted.set(groupId, sm);
      const fresh = !host.recoveredGroupIds().includes(groupId);
      // A broker that a running move adds starts the group empty and learns
      // its configuration from the leader. Every other replica founds it
      // with the replicas no move is adding, which is the configuration
      // until a first membership change; after one, the leader's log starts
      // at a snapshot that carries the real configuration and overrides
      // these. (A founding replica that comes up for the first time during
      // a move must not start empty: it would replay a log that lacks the
      // founding voters.)
      const joining = fresh && h.adding.includes(this.#nodeId);
      host.startGroup(groupId, {
        voters: joining ? [] : h.replicas.filter((r) => !h.adding.includes(r)),
        stateMachine: sm,
        ...(joining ? { join: true } : {}),
      });
      // A new partition starts with its preferred leader campaigning, so
      // clients do not see leadership move to it a few seconds later.
      if (fresh && !h.moving && h.replicas[0] === this.#nodeId) {
        host.campaign(groupId);
      } else {
        this.campaignIfAlone(groupId);
      }
    }
    for (const [groupId, sm] of this.#hosted) {
      if (wanted.has(groupId)) continue;
      this.#hosted.delete(groupId);
      this.#leaderTerms.delete(groupId);
      host.removeGroup(groupId);
      partitions.dropPartition(sm.partition);
    }
  }

  /** Tells the deletion listeners about each topic gone since the last call. */
  noticeDeletions(): void {
    const now = new Map(
      this.#opts.controller.topics().map((t) => [t.name, t.topicId]),
    );
    for (const [name, topicId] of this.#knownTopics) {
      if (now.get(name) === topicId) continue;
      for (const cb of this.#deletionListeners) {
        try {
          cb(name);
        } catch (err) {
          this.#opts.log(`topic deletion listener failed: ${err}`);
        }
      }
    }
    this.#knownTopics = now;
  }

  /** Calls `cb(topic)` once this broker has applied the deletion of a topic. */
  onTopicDeleted(cb: (topic: string) => void): () => void {
    this.#deletionListeners.add(cb);
    return () => this.#deletionListeners.delete(cb);
  }

  /**
   * Calls `cb(topic, partition, true)` once this broker leads a partition
   * and has applied everything committed before (so its log is complete),
   * and `cb(..., false)` when it stops leading.
   */
  onLeadership(
    cb: (topic: string, partition: number, leading: boolean) => void,
  ): () => void {
    this.#leadershipListeners.add(cb);
    return () => this.#leadershipListeners.delete(cb);
  }

  #emitLeadership(groupId: number, leading: boolean): void {
    const sm = this.#hosted.get(groupId);
    if (sm === undefined) return;
    for (const cb of this.#leadershipListeners) {
      try {
        cb(sm.partition.topic, sm.partition.index, leading);
      } catch (err) {
        this.#opts.log(`leadership listener failed: ${err}`);
      }
    }
  }

  /**
   * A new leader has committed entries it may not have applied yet; a
   * barrier entry, once applied here, proves it has applied them all.
   */
  #announceLeadership(groupId: number, term: number): void {
    this.#opts.host.propose(groupId, encodeBarrierEntry()).then(
      () => {
        if (this.#leaderTerms.get(groupId) === term) {
          this.#emitLeadership(groupId, true);
        }
      },
      () => {
        // Leadership moved on before the barrier applied: nothing to tell.
      },
    );
  }

  /** Copies what a snapshot named from the group's leader into the log. */
  async #fillGap(groupId: number, sm: PartitionStateMachine): Promise<void> {
    if (this.#filling.has(groupId)) return;
    this.#filling.add(groupId);
    const { host, clock, signal } = this.#opts;
    try {
      const p = sm.partition;
      while (!signal.aborted && sm.gapEnd !== null) {
        const leader = host.leaderOf(groupId);
        if (leader === this.#nodeId || leader === 0) {
          await sleep(clock, GAP_RETRY_MS);
          continue;
        }
        try {
          const records = await this.#readFrom(
            leader,
            groupId,
            p.log.logEndOffset,
          );
          const before = p.log.logEndOffset;
          if (sm.fillGap(records)) {
            this.#opts.log(`partition ${p.topic}-${p.index} caught up`);
          } else if (p.log.logEndOffset === before) {
            // The leader had nothing for us yet (it may be catching up too).
            await sleep(clock, GAP_RETRY_MS);
          }
        } catch (err) {
          this.#opts.log(`catching up ${p.topic}-${p.index}: ${err}`);
          await sleep(clock, GAP_RETRY_MS);
        }
      }
    } finally {
      this.#filling.delete(groupId);
    }
  }
}
