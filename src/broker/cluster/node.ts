/**
 * A broker's place in a replicated cluster: one RaftHost running the
 * controller group (group 0, the cluster metadata) and the Raft group of
 * every partition replica this broker holds. The node wires the pieces
 * together and runs their periodic jobs on one Clock:
 *
 * - membership.ts: founding or joining the controller group, admitting
 *   later brokers, the peers' address book;
 * - hosting.ts: the partition groups this broker runs, kept in line with
 *   the controller's assignments, their gap fills and leadership events;
 * - supervision.ts: heartbeats, failure detection, leader reports and
 *   preferred-leader balancing;
 * - reassignment.ts: the steps of a partition move on its leader.
 *
 * The node itself routes controller commands to the controller's leader
 * (propose) and turns produce requests into proposals to a partition's
 * group.
 */
import type { Config } from "../../config/mod.ts";
import { ErrorCode } from "../../protocol/mod.ts";
import {
  type Address,
  type GroupStats,
  NotLeaderError,
  type PeerCredentials,
  ProposalDroppedError,
  RaftHost,
  type StateMachine,
} from "../../raft/mod.ts";
import {
  type Command,
  type CommandResult,
  ControllerState,
  encodeCommand,
  type ListenerAddress,
  type TopicState,
} from "../controller/mod.ts";
import type { QuorumView } from "../ports.ts";
import {
  type Clock,
  realClock,
  sleep,
  type TimerHandle,
} from "../../util/mod.ts";
import type { AppendOutcome, PartitionManager } from "../partitions.ts";
import {
  encodeDeleteRecordsEntry,
  encodeProduceEntries,
  type PartitionStateMachine,
} from "./partition_sm.ts";
import { ProduceBatcher } from "./produce_batcher.ts";
import { Hosting } from "./hosting.ts";
import { CONTROLLER_GROUP, Membership } from "./membership.ts";
import { REASSIGN_STEP_MS, Reassignment } from "./reassignment.ts";
import {
  BALANCE_MS,
  HEARTBEAT_MS,
  LEADER_REPORT_MS,
  Supervision,
} from "./supervision.ts";
import {
  Rpc,
  RPC_CONTROLLER_COMMAND,
  RPC_TIMEOUT_MS,
  type RpcHandler,
} from "./rpc.ts";

export { CONTROLLER_GROUP, MAX_CONTROLLER_VOTERS } from "./membership.ts";

export interface ClusterNodeOptions {
  config: Config;
  partitions: PartitionManager;
  /**
   * What clients are told to connect to for this broker: the first
   * listener's address, and every listener's by name.
   */
  kafka: { host: string; port: number; listeners: ListenerAddress[] };
  /**
   * Decides the controller group's founding voters on a first start (never
   * called when the WAL already holds the group). `join`: this broker is not
   * among them and asks the controller to be added instead.
   */
  founding(): Promise<{ voters: number[]; join: boolean }>;
  /** Raft addresses of the other brokers. */
  peers: ReadonlyMap<number, Address>;
  /** Where this broker's Raft transport listens. */
  listen: Address;
  /** raft.tls, its files read. */
  raftTls?: PeerCredentials;
  /** Where other brokers reach this broker's Raft transport. */
  advertisedRaft: Address;
  log(message: string): void;
  /** Logs what needs an operator's eye (default: log). */
  warn?: (message: string) => void;
  /**
   * Runs the Raft host, the periodic jobs, retry sleeps and deadlines, so
   * that a simulator can drive the node (default: real time).
   */
  clock?: Clock;
  /** Told how long each WAL fdatasync took, in seconds. */
  onFsync?: (seconds: number) => void;
}

/** A Raft group this broker runs, named by what it replicates. */
export interface RaftGroupView extends GroupStats {
  /** null for the controller group. */
  readonly topic: string | null;
  readonly partition: number;
}

/** How often a stopping broker checks which groups it still leads. */
const HAND_OFF_POLL_MS = 20;

/** What a hand-off before stopping achieved. */
export interface HandOffOutcome {
  /** Groups whose leadership moved to another replica. */
  moved: number;
  /** Groups still led by this broker when the time ran out. */
  left: number;
  elapsedMs: number;
}

/** The outcome of a produce routed through a partition's Raft group. */
export type ProduceOutcome = AppendOutcome | { ok: false; errorCode: number };

function encodeResult(result: CommandResult): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify(
      result,
      (_k, v) => typeof v === "bigint" ? `${v}n` : v,
    ),
  );
}

function decodeResult(bytes: Uint8Array): CommandResult {
  return JSON.parse(
    new TextDecoder().decode(bytes),
    (_k, v) =>
      typeof v === "string" && /^\d+n$/.test(v) ? BigInt(v.slice(0, -1)) : v,
  );
}

/**
 * A partition proposal that lost its leader is the client's cue to look
 * for the new one; anything else is a fault.
 */
function notLeaderOutcome(err: unknown): { ok: false; errorCode: number } {
  if (err instanceof NotLeaderError || err instanceof ProposalDroppedError) {
    return { ok: false, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
  }
  throw err;
}

function notController(message: string): CommandResult {
  return { ok: false, code: ErrorCode.NOT_CONTROLLER, message };
}

export class ClusterNode {
  readonly #opts: ClusterNodeOptions;
  readonly #clock: Clock;
  readonly #host: RaftHost;
  readonly #controller = new ControllerState();
  readonly #rpc: Rpc;
  readonly #batcher: ProduceBatcher<AppendOutcome>;
  readonly #timers: TimerHandle[] = [];
  readonly #metadataWaiters = new Set<() => void>();
  #reconcileQueued = false;
  readonly #membership: Membership;
  readonly #hosting: Hosting;
  #leaderChanges = 0;
  readonly #reassignment: Reassignment;
  readonly #supervision: Supervision;
  /** Aborted by stop(): every loop and periodic job of the node ends. */
  readonly #stopping = new AbortController();

  private constructor(opts: ClusterNodeOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? realClock;
    const raft = opts.config.raft;
    this.#host = new RaftHost({
      nodeId: opts.config.nodeId,
      dataDir: `${opts.config.dataDir}/raft`,
      listen: opts.listen,
      peers: opts.peers,
      ...(opts.raftTls === undefined ? {} : { tls: opts.raftTls }),
      tickMs: raft.rttMs,
      electionTicks: raft.electionRtt,
      heartbeatTicks: raft.heartbeatRtt,
      checkQuorum: raft.checkQuorum,
      preVote: true,
      maxSizePerMsg: 1024 * 1024,
      maxInflightMsgs: 256,
      maxInMemLogBytes: raft.maxInMemLogSizeBytes,
      snapshotEntries: raft.snapshotEntries,
      compactionOverheadEntries: raft.compactionOverhead,
      logger: {
        info: (m) => opts.log(`raft: ${m}`),
        warn: (m) => (opts.warn ?? opts.log)(`raft: ${m}`),
      },
      clock: this.#clock,
      ...(opts.onFsync === undefined ? {} : { onFsync: opts.onFsync }),
    });
    this.#rpc = new Rpc(this.#host, { clock: this.#clock });
    const perf = opts.config.performance;
    this.#batcher = new ProduceBatcher({
      maxBatchSize: perf.maxBatchSize,
      maxBatchBytes: perf.maxBatchBytes,
      batchTimeoutMs: perf.batchTimeoutMs,
      propose: async (groupId, sets) => {
        const { result } = await this.#host.propose(
          groupId,
          encodeProduceEntries(sets),
        );
        return result as AppendOutcome[];
      },
    });
    this.#membership = new Membership({
      nodeId: opts.config.nodeId,
      host: this.#host,
      controller: this.#controller,
      rpc: this.#rpc,
      peers: opts.peers,
      advertisedRaft: opts.advertisedRaft,
      clock: this.#clock,
      signal: this.#stopping.signal,
      log: opts.log,
    });
    this.#hosting = new Hosting({
      nodeId: opts.config.nodeId,
      host: this.#host,
      controller: this.#controller,
      partitions: opts.partitions,
      rpc: this.#rpc,
      clock: this.#clock,
      signal: this.#stopping.signal,
      log: opts.log,
    });
    const propose = (command: Command, o?: { timeoutMs?: number }) =>
      this.propose(command, o);
    this.#reassignment = new Reassignment({
      nodeId: opts.config.nodeId,
      host: this.#host,
      controller: this.#controller,
      groups: this.#hosting,
      rpc: this.#rpc,
      propose,
      log: opts.log,
    });
    this.#supervision = new Supervision({
      nodeId: opts.config.nodeId,
      host: this.#host,
      controller: this.#controller,
      groups: this.#hosting,
      caughtUp: (groupId, nodeId) =>
        this.#reassignment.caughtUp(groupId, nodeId),
      registration: {
        nodeId: opts.config.nodeId,
        kafkaHost: opts.kafka.host,
        kafkaPort: opts.kafka.port,
        listeners: opts.kafka.listeners,
        raftHost: opts.advertisedRaft.hostname,
        raftPort: opts.advertisedRaft.port,
      },
      propose,
      signal: this.#stopping.signal,
      log: opts.log,
    });
  }

  get #stopped(): boolean {
    return this.#stopping.signal.aborted;
  }

  static async start(opts: ClusterNodeOptions): Promise<ClusterNode> {
    const node = new ClusterNode(opts);
    await node.#start();
    return node;
  }

  get nodeId(): number {
    return this.#opts.config.nodeId;
  }

  get controller(): ControllerState {
    return this.#controller;
  }

  async #start(): Promise<void> {
    await this.#host.start();
    const controllerSm: StateMachine = {
      apply: (entries) => {
        const results = this.#controller.apply(entries);
        this.#metadataChanged();
        return results;
      },
      snapshot: () => this.#controller.snapshot(),
      restore: (data) => {
        this.#controller.restore(data);
        this.#metadataChanged();
      },
    };
    this.#host.onLeaderChange((e) => {
      this.#leaderChanges++;
      this.#hosting.leaderChanged(e);
      if (e.groupId === CONTROLLER_GROUP && e.leader === this.nodeId) {
        this.#supervision.becomeController();
      }
    });
    this.#rpc.handle(RPC_CONTROLLER_COMMAND, async (_from, body) => {
      if (this.#host.leaderOf(CONTROLLER_GROUP) !== this.nodeId) {
        return encodeResult(notController(
          `Broker ${this.nodeId} is not the controller`,
        ));
      }
      return encodeResult(await this.#proposeLocal(body));
    });
    if (this.#host.recoveredGroupIds().includes(CONTROLLER_GROUP)) {
      // Membership comes from the WAL: discovery is not needed to rejoin.
      this.#host.startGroup(CONTROLLER_GROUP, {
        voters: [],
        stateMachine: controllerSm,
      });
    } else {
      const { voters, join } = await this.#membership.formedVoters() ??
        await this.#opts.founding();
      this.#host.startGroup(CONTROLLER_GROUP, {
        voters,
        stateMachine: controllerSm,
        ...(join ? { join: true } : {}),
      });
      if (join) this.#membership.requestJoin(voters);
    }
    this.#hosting.campaignIfAlone(CONTROLLER_GROUP);
    this.#every(HEARTBEAT_MS, () => this.#supervision.heartbeat());
    this.#every(LEADER_REPORT_MS, () => this.#supervision.reportLeaders());
    this.#every(BALANCE_MS, () => this.#supervision.balanceLeaders());
    this.#every(REASSIGN_STEP_MS, () => this.#reassignment.drive());
    this.#every(HEARTBEAT_MS, () => this.#supervision.detectFailures());
    this.#supervision.heartbeat();
  }

  #every(ms: number, fn: () => void): void {
    this.#timers.push(this.#clock.setInterval(() => {
      if (!this.#stopped) fn();
    }, ms));
  }

  /** Runs after every applied controller command: sync hosted groups. */
  #metadataChanged(): void {
    for (const wake of this.#metadataWaiters) wake();
    this.#metadataWaiters.clear();
    if (this.#reconcileQueued) return;
    this.#reconcileQueued = true;
    // Not inside the host's apply: starting groups there would re-enter it.
    queueMicrotask(() => {
      this.#reconcileQueued = false;
      if (this.#stopped) return;
      this.#membership.updatePeers();
      this.#hosting.reconcile();
      this.#hosting.noticeDeletions();
    });
  }

  /** Calls `cb(topic)` once this broker has applied the deletion of a topic. */
  onTopicDeleted(cb: (topic: string) => void): () => void {
    return this.#hosting.onTopicDeleted(cb);
  }

  /**
   * Resolves once the controller state lists this broker online, or
   * rejects after `timeoutMs`.
   */
  async registered(timeoutMs: number): Promise<void> {
    const deadline = this.#clock.nowMs() + timeoutMs;
    const online = () =>
      this.#controller.liveBrokers().some((b) => b.nodeId === this.nodeId);
    while (!online()) {
      if (this.#clock.nowMs() >= deadline) {
        throw new Error(
          `Broker ${this.nodeId} was not registered by the controller within ${timeoutMs} ms`,
        );
      }
      await this.waitForMetadata(deadline - this.#clock.nowMs());
    }
  }

  /** Resolves at the next applied controller command (or after timeoutMs). */
  waitForMetadata(timeoutMs: number): Promise<void> {
    const clock = this.#clock;
    return new Promise((resolve) => {
      const timer = clock.setTimeout(done, timeoutMs);
      const waiters = this.#metadataWaiters;
      function done() {
        clock.clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  /**
   * Calls `cb(topic, partition, true)` once this broker leads a partition
   * and has applied everything committed before (so its log is complete),
   * and `cb(..., false)` when it stops leading.
   */
  onLeadership(
    cb: (topic: string, partition: number, leading: boolean) => void,
  ): () => void {
    return this.#hosting.onLeadership(cb);
  }

  /** Serves a broker-to-broker method of a module above the cluster. */
  serveRpc(method: number, handler: RpcHandler): void {
    this.#rpc.handle(method, handler);
  }

  /** Asks another broker; rejects with an RpcError if it does not answer. */
  requestRpc(
    to: number,
    method: number,
    body: Uint8Array,
    opts: { timeoutMs: number },
  ): Promise<Uint8Array> {
    return this.#rpc.request(to, method, body, opts);
  }

  /** Replaces the Raft addresses of the other brokers (from discovery). */
  setPeers(peers: ReadonlyMap<number, Address>): void {
    this.#membership.setPeers(peers);
  }

  async #proposeLocal(command: Uint8Array): Promise<CommandResult> {
    try {
      const { result } = await this.#host.propose(CONTROLLER_GROUP, command);
      return result as CommandResult;
    } catch (err) {
      if (err instanceof ProposalDroppedError) {
        return notController(err.message);
      }
      throw err;
    }
  }

  /**
   * Has the controller's leader apply a command, wherever it is, retrying
   * through leader changes until `timeoutMs` runs out.
   */
  async propose(
    command: Command,
    opts: { timeoutMs?: number } = {},
  ): Promise<CommandResult> {
    const bytes = encodeCommand(command);
    const deadline = this.#clock.nowMs() + (opts.timeoutMs ?? 10_000);
    let last: CommandResult = notController("No controller elected yet");
    while (!this.#stopped && this.#clock.nowMs() < deadline) {
      const leader = this.#host.leaderOf(CONTROLLER_GROUP);
      if (leader === this.nodeId) {
        last = await this.#proposeLocal(bytes);
      } else if (leader !== 0) {
        try {
          last = decodeResult(
            await this.#rpc.request(leader, RPC_CONTROLLER_COMMAND, bytes, {
              timeoutMs: Math.min(
                RPC_TIMEOUT_MS,
                deadline - this.#clock.nowMs(),
              ),
            }),
          );
        } catch (err) {
          last = notController(`${err}`);
        }
      }
      if (last.ok || last.code !== ErrorCode.NOT_CONTROLLER) return last;
      await sleep(this.#clock, 50);
    }
    return last;
  }

  /** The current leader of a partition group as far as this broker knows. */
  leaderOf(groupId: number): number {
    return this.leadership(groupId).leader;
  }

  /**
   * The current leader of a group and its epoch (the Raft term it leads
   * in): from this broker's own replica when it has one that knows, else
   * as the controller last recorded it; -1 for what is not known.
   */
  leadership(groupId: number): { leader: number; epoch: number } {
    if (this.#hosting.hosted.has(groupId) || groupId === CONTROLLER_GROUP) {
      const local = this.#host.leadership(groupId);
      if (local !== undefined) {
        return { leader: local.leader, epoch: local.term };
      }
    }
    const a = this.#controller.partitionByGroup(groupId)?.assignment;
    return a === undefined
      ? { leader: -1, epoch: -1 }
      : { leader: a.leader, epoch: a.leaderEpoch };
  }

  /** On a group's leader: where each member's Raft log stands. */
  quorum(groupId: number): QuorumView | undefined {
    const status = this.#host.replication(groupId);
    const conf = this.#host.membership(groupId);
    if (status === undefined || conf === undefined) return undefined;
    const position = (replicaId: number) => ({
      replicaId,
      matchIndex: status.matchIndexes.get(replicaId) ?? 0,
    });
    return {
      leaderId: this.nodeId,
      leaderEpoch: this.#hosting.leaderTerms.get(groupId) ?? -1,
      commitIndex: status.commitIndex,
      lastIndex: status.lastIndex,
      voters: conf.voters.map(position),
      observers: conf.learners.map(position),
    };
  }

  controllerId(): number {
    const leader = this.#host.leaderOf(CONTROLLER_GROUP);
    return leader === 0 ? -1 : leader;
  }

  /** The partition if this broker leads it, else the error to answer. */
  leading(
    topic: TopicState,
    index: number,
  ):
    | { ok: true; sm: PartitionStateMachine; groupId: number }
    | { ok: false; errorCode: number } {
    const a = topic.partitions[index];
    if (a === undefined) {
      return { ok: false, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
    }
    const sm = this.#hosting.hosted.get(a.groupId);
    const leader = this.#host.leaderOf(a.groupId);
    // A replica still copying data a snapshot named cannot serve it yet.
    if (sm === undefined || leader !== this.nodeId || sm.gapEnd !== null) {
      return {
        ok: false,
        errorCode: leader === 0 && sm !== undefined
          ? ErrorCode.LEADER_NOT_AVAILABLE
          : ErrorCode.NOT_LEADER_OR_FOLLOWER,
      };
    }
    return { ok: true, sm, groupId: a.groupId };
  }

  /** Leaderships this broker saw change, over all its groups, since start. */
  get leaderChanges(): number {
    return this.#leaderChanges;
  }

  /** Every Raft group this broker runs, the controller group included. */
  raftGroups(): RaftGroupView[] {
    return this.#host.groupStats().map((g) => {
      const p = this.#hosting.hosted.get(g.groupId)?.partition;
      return { ...g, topic: p?.topic ?? null, partition: p?.index ?? -1 };
    });
  }

  /** Every partition replica this broker hosts, and whether it leads it. */
  replicas(): { sm: PartitionStateMachine; leading: boolean }[] {
    return [...this.#hosting.hosted].map(([groupId, sm]) => ({
      sm,
      leading: this.#host.leaderOf(groupId) === this.nodeId,
    }));
  }

  /**
   * Replicates a validated record set; resolves once committed and applied
   * and, when `hold.replicas` is more than a majority of the group's
   * voters, once that many hold it. Past `hold.timeoutMs` the write stays
   * but the answer is NOT_ENOUGH_REPLICAS_AFTER_APPEND, as in Kafka.
   */
  async produce(
    groupId: number,
    records: Uint8Array,
    hold: { replicas: number; timeoutMs: number },
  ): Promise<ProduceOutcome> {
    try {
      const outcome = await this.#batcher.produce(groupId, records);
      // A commit already holds one replica and a majority; membership()
      // copies the voter lists, so the common case never asks for it.
      if (!outcome.ok || hold.replicas <= 1) return outcome;
      const voters = this.#host.membership(groupId)?.voters.length ?? 0;
      if (hold.replicas <= Math.floor(voters / 2) + 1) return outcome;
      // Applied here, so the commit index has reached the entry.
      const index = this.#host.replication(groupId)?.commitIndex ?? Infinity;
      const held = await this.#host.awaitReplicas(
        groupId,
        index,
        hold.replicas,
        hold.timeoutMs,
      );
      return held ? outcome : {
        ok: false,
        errorCode: ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
      };
    } catch (err) {
      return notLeaderOutcome(err);
    }
  }

  /**
   * Moves the log start of a partition group up to `beforeOffset` on every
   * replica; resolves with the new start once committed and applied here.
   */
  async deleteRecords(
    groupId: number,
    beforeOffset: bigint,
  ): Promise<
    { ok: true; logStartOffset: bigint } | { ok: false; errorCode: number }
  > {
    try {
      const { result } = await this.#host.propose(
        groupId,
        encodeDeleteRecordsEntry(beforeOffset),
      );
      return { ok: true, logStartOffset: result as bigint };
    } catch (err) {
      return notLeaderOutcome(err);
    }
  }

  /**
   * Before a clean stop: hands the leadership of every group this broker
   * leads (the controller group included) to the most caught-up other
   * voter, and resolves once it leads none of them any more, or after
   * `timeoutMs`. From the start this broker campaigns no more, stops
   * heartbeats and balancing, and has the controller mark it failed, so
   * that clients and the other brokers' balancing look elsewhere; its next
   * start registers it again. A group without another voter stays led
   * until stop().
   */
  async handOff(timeoutMs: number): Promise<HandOffOutcome> {
    const startMs = this.#clock.nowMs();
    const elapsedMs = () => Math.round(this.#clock.nowMs() - startMs);
    this.#supervision.beginHandOff();
    this.#host.holdCampaigns();
    const movable = () =>
      [CONTROLLER_GROUP, ...this.#hosting.hosted.keys()].filter((groupId) =>
        this.#host.leaderOf(groupId) === this.nodeId &&
        (this.#host.membership(groupId)?.voters ?? []).some((v) =>
          v !== this.nodeId
        )
      );
    const led = movable();
    const outcome = (left: number): HandOffOutcome => ({
      moved: led.length - left,
      left,
      elapsedMs: elapsedMs(),
    });
    if (led.length === 0) return outcome(0);
    this.#opts.log(
      `stopping: handing the leadership of ${led.length} group(s) to other replicas`,
    );
    const marked = this.propose({
      type: "markBrokerFailed",
      nodeId: this.nodeId,
    }, { timeoutMs }).catch(() => {});
    // The core abandons a transfer that did not finish within an election
    // timeout; until then a new target would only restart it.
    const { rttMs, electionRtt } = this.#opts.config.raft;
    const asked = new Map<number, number>();
    let left = led;
    while (left.length > 0 && elapsedMs() < timeoutMs) {
      for (const groupId of left) {
        const askedMs = asked.get(groupId);
        if (
          askedMs !== undefined && elapsedMs() - askedMs < rttMs * electionRtt
        ) {
          continue;
        }
        const successor = this.#successor(groupId);
        if (successor === undefined) continue;
        asked.set(groupId, elapsedMs());
        this.#hosting.transferLeader(groupId, successor);
      }
      await sleep(this.#clock, HAND_OFF_POLL_MS);
      left = movable();
    }
    const result = outcome(left.length);
    this.#opts.log(
      `stopping: handed off ${result.moved} of ${led.length} group(s) in ${result.elapsedMs} ms` +
        (left.length > 0
          ? `; ${left.length} still led when shutdown.timeout (${timeoutMs} ms) ran out`
          : ""),
    );
    await Promise.race([marked, sleep(this.#clock, HAND_OFF_POLL_MS)]);
    return result;
  }

  /**
   * The voter (not this broker) whose log is furthest along: one whose
   * match index is the leader's last index takes over at once.
   */
  #successor(groupId: number): number | undefined {
    const matches = this.#host.replication(groupId)?.matchIndexes;
    const voters = (this.#host.membership(groupId)?.voters ?? []).filter((v) =>
      v !== this.nodeId
    );
    return voters.sort((x, y) =>
      (matches?.get(y) ?? 0) - (matches?.get(x) ?? 0)
    )[0];
  }

  /** Renewed raft.tls credentials, for new Raft connections. */
  reloadRaftTls(tls: PeerCredentials): Promise<void> {
    return this.#host.reloadTls(tls);
  }

  /** Stops at once, led groups included (handOff() first for a clean stop). */
  async stop(): Promise<void> {
    this.#stopping.abort();
    for (const t of this.#timers) this.#clock.clearInterval(t);
    this.#batcher.close();
    this.#rpc.close();
    await this.#host.stop();
  }
}
