import {
  type ConfChange,
  type ConfState,
  decodeConfChange,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type NodeId,
  NotLeaderError,
  ProposalDroppedError,
  RawNode,
  type Ready,
} from "../core/mod.ts";
import {
  type Address,
  checkAppMessageSize,
  type Envelope,
  HostMessageType,
  type PeerCredentials,
  TcpTransport,
  type Transport,
} from "../transport/mod.ts";
import { type RecoveredGroup, Wal, WalStorage } from "../wal/mod.ts";
import {
  assert,
  type Clock,
  realClock,
  type TimerHandle,
} from "../../util/mod.ts";
import { Mulberry32 } from "./rng.ts";
import type { LeaderChange, StateMachine } from "./state_machine.ts";

/** Closed WAL segments past which the groups holding the oldest are snapshotted. */
const WAL_CLOSED_SEGMENTS_MAX = 2;

export interface RaftHostLogger {
  info(message: string): void;
  warn(message: string): void;
}

export interface RaftHostOptions {
  nodeId: NodeId;
  /** The WAL lives in `<dataDir>/wal`. */
  dataDir: string;
  listen: Address;
  peers: ReadonlyMap<NodeId, Address>;
  /** TLS and peer proofs on the transport (TcpTransportOptions.tls). */
  tls?: PeerCredentials;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  checkQuorum: boolean;
  preVote: boolean;
  maxSizePerMsg: number;
  maxInflightMsgs: number;
  /**
   * A group whose in-memory log passes this is snapshotted and compacted;
   * a group without other members at an eighth of it (SOLE_LOG_SHARE).
   */
  maxInMemLogBytes: number;
  /**
   * A group that applied this many entries since its last snapshot is
   * snapshotted, bounding what a restart replays. Default 0: only
   * maxInMemLogBytes triggers snapshots.
   */
  snapshotEntries?: number;
  /**
   * Entries kept in memory behind a snapshot, so that a follower slightly
   * behind catches up from the log rather than by a whole snapshot; within
   * half of maxInMemLogBytes, so that keeping them cannot retrigger the
   * byte bound at once. Not kept across a restart, nor by a group without
   * followers. Default 0.
   */
  compactionOverheadEntries?: number;
  /** Replaces the TCP transport (tests use MemoryTransport). */
  transport?: Transport;
  walSegmentBytes?: number;
  /** A leader with nothing in flight for this many ticks quiesces its group. Default electionTicks. */
  quiesceTicks?: number;
  /** Proposals queued or in flight per group beyond which propose() rejects. Default 100,000. */
  maxPendingProposals?: number;
  /** Inbound messages queued beyond which new ones are dropped (Raft retries). Default 1,000,000. */
  maxInboundMessages?: number;
  logger?: RaftHostLogger;
  /** Every timer and time reading of the host (simulations pass a simulated one). Default realClock. */
  clock?: Clock;
  /**
   * Seeds each group's election-timeout randomness (derived per node and
   * group), so that a simulation replays. Absent, each group draws its seed
   * from the OS.
   */
  rngSeed?: number;
  /** Told how long each fdatasync of the WAL took, in seconds (metrics). */
  onFsync?: (seconds: number) => void;
  /**
   * A turn with at least this many WAL bytes to sync, or one that comes
   * while a sync is running, syncs in the background (see #pass). A
   * smaller one blocks the loop for its fdatasync: that answers a lone
   * write sooner, and a 1-partition producer with a few 64 KiB batches in
   * flight ran 10-20% slower in the background (one bench sitting). A
   * sync of megabytes blocked the loop for tens to hundreds of ms.
   * Default 1 MiB; Infinity never syncs in the background.
   */
  backgroundSyncBytes?: number;
}

export interface StartGroupOptions {
  voters: NodeId[];
  learners?: NodeId[];
  stateMachine: StateMachine;
  /** This node is being added to a running group: it starts empty and waits for the leader. */
  join?: boolean;
}

/** What a group's leader knows of its followers' logs. */
export interface ReplicationStatus {
  lastIndex: number;
  commitIndex: number;
  /** Highest index known to be in each member's log, by node id. */
  matchIndexes: ReadonlyMap<NodeId, number>;
}

/** Where a running group's log stands on this node (tests and metrics). */
export interface LogStatus {
  /** Index of the latest snapshot (0: none yet). */
  snapshotIndex: number;
  /** Oldest entry still held; entries from here to snapshotIndex are the compaction overhead. */
  firstIndex: number;
  lastIndex: number;
  applied: number;
}

/** One running group as this node sees it, for metrics. */
export interface GroupStats {
  readonly groupId: number;
  /** 0: no leader known. */
  readonly leader: NodeId;
  readonly term: number;
  readonly commitIndex: number;
  readonly applied: number;
  /** On the leader, the most entries a member lacks of its log; else 0. */
  readonly followerLagMax: number;
  /** Snapshots taken or installed here since the group started. */
  readonly snapshots: number;
}

export interface ProposeResult {
  index: number;
  /** What StateMachine.apply returned for this entry. */
  result: unknown;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: Error): void;
}

interface QueuedProposal extends Waiter<ProposeResult> {
  data: Uint8Array;
  conf: ConfChange | null;
}

interface PendingRead extends Waiter<number> {
  /** Set once the ReadState arrived; served when applied reaches it. */
  index: number;
  timer: TimerHandle;
}

/** An awaitReplicas call: `count` voters must hold the log up to `index`. */
interface ReplicaWait {
  index: number;
  count: number;
  timer: TimerHandle;
  resolve(held: boolean): void;
}

/** What became of a message, told to the core after the turn's Readies are advanced. */
interface Report {
  g: Group;
  to: NodeId;
  outcome: "unreachable" | "snapSent" | "snapFailed";
}

interface BackgroundSync {
  done: Promise<void>;
  /** Set until the sync begins. */
  cancel: (() => void) | undefined;
}

interface Group {
  readonly id: number;
  readonly node: RawNode;
  readonly storage: WalStorage;
  readonly sm: StateMachine;
  confState: ConfState;
  /** Index of the entry or snapshot confState comes from: no snapshot below it may carry it. */
  confIndex: number;
  leader: NodeId;
  term: number;
  applied: number;
  /** A membership change was applied while the log starts at the founding. */
  foundingOnly: boolean;
  /** Not ticking: woken by any message, proposal, or a silent leader. */
  quiesced: boolean;
  idleTicks: number;
  queued: QueuedProposal[];
  /** Proposals in the log, by index; `term` identifies them among entries at that index. */
  inFlight: Map<number, Waiter<ProposeResult> & { term: number }>;
  reads: Map<string, PendingRead>;
  replicaWaits: Set<ReplicaWait>;
  /** Taken by compaction or installed from the leader, since start. */
  snapshots: number;
}

/**
 * Hosts every Raft group of one node: one loop for all groups, one WAL
 * (one fdatasync per loop turn) and one transport (one connection per
 * peer). A loop turn: step inbound messages, propose queued data, tick if
 * due, collect every group's Ready, send a leader's appends, persist them
 * all with one sync, send the rest, apply, advance. Under load the sync
 * runs in the background while later turns go on (#pass).
 *
 * Idle groups quiesce: a leader whose followers all match its log and
 * commit for quiesceTicks sends each a Quiesce notice and stops ticking;
 * a quiesced follower stops ticking too. Any message or proposal wakes a
 * group, and a quiesced follower wakes by itself once the transport has
 * heard nothing from the leader's host for an election timeout. Host
 * liveness rides on the transport's per-peer pings, so the heartbeat cost
 * of idle groups is per peer pair, not per group.
 *
 * Beside Raft, hosts exchange small application messages (sendApp,
 * onAppMessage) on the same connections, outside the loop.
 */
export class RaftHost {
  readonly #options: RaftHostOptions;
  readonly #groups = new Map<number, Group>();
  readonly #leaderListeners = new Set<(e: LeaderChange) => void>();
  readonly #appListeners = new Set<
    (from: NodeId, data: Uint8Array) => void
  >();
  readonly #transport: Transport;
  readonly #quiesceTicks: number;
  readonly #maxPending: number;
  readonly #maxInbound: number;
  readonly #clock: Clock;
  readonly #snapshotEntries: number;
  readonly #compactionOverheadEntries: number;
  readonly #backgroundSyncBytes: number;
  #inbound: Envelope[] = [];
  /** Groups with queued proposals or fresh local requests. */
  #touched = new Set<Group>();
  #wal: Wal | null = null;
  #recovered = new Map<number, RecoveredGroup>();
  #tickTimer: TimerHandle | undefined;
  #turnTimer: TimerHandle | undefined;
  #tickDue = false;
  /** The background sync scheduled or running, if any. */
  #sync: BackgroundSync | undefined;
  /** Readies persisted since it began, for the next one. */
  #unsynced: [Group, Ready][] = [];
  #readSeq = 0;
  #running = false;
  /** Set by holdCampaigns: no group of this host campaigns any more. */
  #campaignsHeld = false;

  constructor(options: RaftHostOptions) {
    for (
      const key of [
        "tickMs",
        "electionTicks",
        "heartbeatTicks",
        "maxSizePerMsg",
        "maxInflightMsgs",
        "maxInMemLogBytes",
      ] as const
    ) {
      const v = options[key];
      if (!(Number.isFinite(v) && v > 0)) {
        throw new RangeError(
          `Invalid RaftHost option ${key}: ${v} is not a positive number`,
        );
      }
    }
    if (!Number.isSafeInteger(options.nodeId) || options.nodeId <= 0) {
      throw new RangeError(
        `Invalid RaftHost nodeId ${options.nodeId}: must be a positive integer`,
      );
    }
    for (
      const key of ["snapshotEntries", "compactionOverheadEntries"] as const
    ) {
      const v = options[key];
      if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) {
        throw new RangeError(
          `Invalid RaftHost option ${key}: ${v} is not a non-negative integer`,
        );
      }
    }
    this.#options = options;
    this.#snapshotEntries = options.snapshotEntries ?? 0;
    this.#compactionOverheadEntries = options.compactionOverheadEntries ?? 0;
    this.#backgroundSyncBytes = options.backgroundSyncBytes ?? 1_048_576;
    this.#quiesceTicks = options.quiesceTicks ?? options.electionTicks;
    this.#maxPending = options.maxPendingProposals ?? 100_000;
    this.#maxInbound = options.maxInboundMessages ?? 1_000_000;
    this.#clock = options.clock ?? realClock;
    this.#transport = options.transport ?? new TcpTransport({
      nodeId: options.nodeId,
      listen: options.listen,
      peers: options.peers,
      pingIntervalMs: options.tickMs * options.heartbeatTicks,
      // Silent for an election timeout: by then followers campaign anyway.
      silenceMs: options.tickMs * options.electionTicks,
      connectTimeoutMs: options.tickMs * options.electionTicks,
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
  }

  get nodeId(): NodeId {
    return this.#options.nodeId;
  }

  /** Opens the WAL (replaying it), starts the transport and the tick loop. */
  async start(): Promise<void> {
    assert(!this.#running, "RaftHost started twice");
    const { wal, groups } = Wal.open(`${this.#options.dataDir}/wal`, {
      ...(this.#options.walSegmentBytes === undefined
        ? {}
        : { segmentBytes: this.#options.walSegmentBytes }),
    });
    this.#wal = wal;
    this.#recovered = groups;
    await this.#transport.start({
      messages: (_from, envelopes) => this.#receive(envelopes),
      app: (from, data) => this.#deliverApp(from, data),
    });
    this.#running = true;
    this.#tickTimer = this.#clock.setInterval(() => {
      this.#tickDue = true;
      this.#schedule();
    }, this.#options.tickMs);
  }

  /** Stops the loop, rejects what is pending, closes the transport and the WAL. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#clock.clearInterval(this.#tickTimer);
    this.#clock.clearImmediate(this.#turnTimer);
    this.#turnTimer = undefined;
    // The WAL must not close under a background sync; one not begun is
    // left to the WAL's close (a simulated clock would never run it).
    this.#sync?.cancel?.();
    while (this.#sync !== undefined) await this.#sync.done;
    for (const id of [...this.#groups.keys()]) this.stopGroup(id);
    await this.#transport.close();
    this.#wal?.close();
    this.#wal = null;
  }

  /** Ids of the groups whose state the WAL holds but that are not started. */
  recoveredGroupIds(): number[] {
    return [...this.#recovered.keys()];
  }

  /**
   * Starts a group on this host. A group found in the WAL resumes from its
   * recovered state (its state machine is restored from the snapshot and
   * the committed entries after it are applied again).
   */
  startGroup(groupId: number, options: StartGroupOptions): void {
    const wal = this.#requireWal();
    if (!Number.isInteger(groupId) || groupId < 0 || groupId > 0xffffffff) {
      throw new RangeError(`Invalid group id ${groupId}: must be a u32`);
    }
    if (this.#groups.has(groupId)) {
      throw new RangeError(`Cannot start group ${groupId}: already running`);
    }
    const recovered = this.#recovered.get(groupId);
    this.#recovered.delete(groupId);
    const confState: ConfState = options.join === true
      ? { voters: [], learners: [] }
      : {
        voters: [...options.voters],
        learners: [...(options.learners ?? [])],
      };
    const storage = new WalStorage(wal, groupId, {
      confState,
      ...(recovered === undefined ? {} : { recovered }),
    });
    const snap = storage.snapshot();
    if (snap.meta.index > 0) options.stateMachine.restore(snap.data);
    if (recovered === undefined && options.join !== true) {
      // Persist the founding membership: without a snapshot, a restart must not depend on the caller.
      wal.compact(groupId, snap);
    }
    const o = this.#options;
    const node = new RawNode(storage, {
      id: o.nodeId,
      electionTicks: o.electionTicks,
      heartbeatTicks: o.heartbeatTicks,
      checkQuorum: o.checkQuorum,
      preVote: o.preVote,
      maxSizePerMsg: o.maxSizePerMsg,
      maxInflightMsgs: o.maxInflightMsgs,
      applied: snap.meta.index,
      // Only a member back from a restart among others waits longer: a
      // group of one elects itself at once, and a new group's preferred
      // leader is told to campaign.
      firstElectionDelayTicks: recovered !== undefined &&
          storage.initialState().confState.voters.length > 1
        ? o.electionTicks
        : 0,
      rng: o.rngSeed === undefined
        ? new Mulberry32()
        : new Mulberry32(groupSeed(o.rngSeed, { nodeId: o.nodeId, groupId })),
    });
    if (this.#campaignsHeld) node.holdCampaigns();
    const g: Group = {
      id: groupId,
      node,
      storage,
      sm: options.stateMachine,
      confState: storage.initialState().confState,
      confIndex: snap.meta.index,
      leader: 0,
      term: storage.initialState().hardState.term,
      applied: snap.meta.index,
      foundingOnly: false,
      quiesced: false,
      idleTicks: 0,
      queued: [],
      inFlight: new Map(),
      reads: new Map(),
      replicaWaits: new Set(),
      snapshots: 0,
    };
    this.#groups.set(groupId, g);
    this.#touched.add(g);
    this.#schedule();
  }

  /** Stops a group; its state stays in the WAL for a later startGroup. */
  stopGroup(groupId: number): void {
    const g = this.#groups.get(groupId);
    if (g === undefined) return;
    this.#groups.delete(groupId);
    this.#touched.delete(g);
    const err = new ProposalDroppedError(`Group ${groupId} stopped`, {
      leaderHint: 0,
    });
    this.#failAll(g, err);
    // Keep what the WAL would replay so that a restart in this process resumes it.
    const storage = g.storage;
    const last = storage.lastIndex();
    // The compaction overhead is not replayed: keep what a WAL replay would rebuild.
    const first = storage.snapshot().meta.index + 1;
    this.#recovered.set(groupId, {
      hardState: storage.initialState().hardState,
      snapshot: storage.snapshot(),
      entries: last >= first ? storage.entries(first, last + 1, Infinity) : [],
    });
  }

  /** Stops a group and deletes its state. */
  removeGroup(groupId: number): void {
    this.stopGroup(groupId);
    this.#recovered.delete(groupId);
    const wal = this.#requireWal();
    wal.removeGroup(groupId);
    wal.sync();
  }

  /**
   * Proposes `data` (non-empty) to a group led by this node. Resolves when
   * the entry is committed and applied here; rejects with NotLeaderError
   * (carrying the leader hint) on a follower, or ProposalDroppedError when
   * leadership changed before the outcome was known.
   */
  propose(groupId: number, data: Uint8Array): Promise<ProposeResult> {
    if (data.length === 0) {
      return Promise.reject(
        new TypeError(
          "Cannot propose empty data: empty entries are Raft no-ops",
        ),
      );
    }
    return this.#enqueue(groupId, data, null);
  }

  /** Proposes a membership change (one at a time); resolves when applied here. */
  changeMembership(groupId: number, cc: ConfChange): Promise<ProposeResult> {
    return this.#enqueue(groupId, new Uint8Array(0), cc);
  }

  #enqueue(
    groupId: number,
    data: Uint8Array,
    conf: ConfChange | null,
  ): Promise<ProposeResult> {
    const g = this.#groups.get(groupId);
    if (g === undefined || !this.#running) {
      return Promise.reject(
        new RangeError(
          `Cannot propose to group ${groupId}: not running on this host`,
        ),
      );
    }
    if (g.leader !== this.nodeId) {
      return Promise.reject(
        new NotLeaderError("propose", { leaderHint: g.leader }),
      );
    }
    if (g.queued.length + g.inFlight.size >= this.#maxPending) {
      return Promise.reject(
        new ProposalDroppedError(
          `Cannot propose to group ${groupId}: ${this.#maxPending} proposals pending`,
          { leaderHint: g.leader },
        ),
      );
    }
    return new Promise((resolve, reject) => {
      g.queued.push({ data, conf, resolve, reject });
      this.#touch(g);
    });
  }

  /**
   * A linearizable read point: resolves with an index once this node has
   * applied at least that far and the leader confirmed its leadership.
   */
  readIndex(groupId: number): Promise<number> {
    const g = this.#groups.get(groupId);
    if (g === undefined || !this.#running) {
      return Promise.reject(
        new RangeError(
          `Cannot read group ${groupId}: not running on this host`,
        ),
      );
    }
    const seq = ++this.#readSeq;
    const context = new Uint8Array(8);
    new DataView(context.buffer).setFloat64(0, seq);
    const key = contextKey(context);
    try {
      this.#wake(g);
      g.node.readIndex(context);
    } catch (err) {
      return Promise.reject(err);
    }
    this.#touch(g);
    return new Promise((resolve, reject) => {
      const timeoutMs = 2 * this.#options.electionTicks * this.#options.tickMs;
      const timer = this.#clock.setTimeout(() => {
        g.reads.delete(key);
        reject(
          new ProposalDroppedError(
            `Read of group ${groupId} timed out after ${timeoutMs} ms`,
            {
              leaderHint: g.leader,
            },
          ),
        );
      }, timeoutMs);
      g.reads.set(key, { index: -1, timer, resolve, reject });
    });
  }

  /**
   * On the group's leader: resolves true once `count` voters (this node
   * among them) hold the log up to `index`; false after `timeoutMs`, or
   * when leadership moves or the group stops first. Commit needs only a
   * majority; this is for a caller that asks for more.
   */
  awaitReplicas(
    groupId: number,
    index: number,
    count: number,
    timeoutMs: number,
  ): Promise<boolean> {
    const g = this.#groups.get(groupId);
    if (g === undefined || g.leader !== this.nodeId) {
      return Promise.resolve(false);
    }
    if (replicasHold(g, index, count)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wait: ReplicaWait = {
        index,
        count,
        resolve,
        timer: this.#clock.setTimeout(() => {
          g.replicaWaits.delete(wait);
          resolve(false);
        }, timeoutMs),
      };
      g.replicaWaits.add(wait);
    });
  }

  #settleReplicaWaits(g: Group): void {
    for (const w of g.replicaWaits) {
      if (!replicasHold(g, w.index, w.count)) continue;
      g.replicaWaits.delete(w);
      this.#clock.clearTimeout(w.timer);
      w.resolve(true);
    }
  }

  /** Asks the leader (this node) to hand leadership to `to`. */
  transferLeader(groupId: number, to: NodeId): void {
    const g = this.#groups.get(groupId);
    if (g === undefined) {
      throw new RangeError(
        `Cannot transfer group ${groupId}: not running on this host`,
      );
    }
    this.#wake(g);
    g.node.transferLeadership(to);
    this.#touch(g);
  }

  /**
   * From now on no group of this host (nor one started later) starts an
   * election, on a timeout, campaign() or a leader's TimeoutNow; groups
   * still vote, and leaders keep leading until they transfer. For a
   * stopping host that hands its leaderships away: it must not win any
   * back, and votes are what the others need to elect a successor.
   */
  holdCampaigns(): void {
    this.#campaignsHeld = true;
    for (const g of this.#groups.values()) g.node.holdCampaigns();
  }

  /** The leader this node knows of (0 = none). */
  leaderOf(groupId: number): NodeId {
    return this.#groups.get(groupId)?.leader ?? 0;
  }

  /**
   * The leader this node knows of and the term it leads in; undefined
   * without one. A node learns of a leader only in that leader's term, so
   * the two always belong together.
   */
  leadership(groupId: number): { leader: NodeId; term: number } | undefined {
    const g = this.#groups.get(groupId);
    return g === undefined || g.leader === 0
      ? undefined
      : { leader: g.leader, term: g.term };
  }

  /**
   * On the group's leader: its last log index, commit index, and the match
   * index of every member (this node's own included); undefined elsewhere.
   */
  replication(groupId: number): ReplicationStatus | undefined {
    const status = this.#groups.get(groupId)?.node.status();
    if (status === undefined || status.progress === null) return undefined;
    return {
      lastIndex: status.lastIndex,
      commitIndex: status.hardState.commit,
      matchIndexes: new Map(
        [...status.progress].map(([id, pr]) => [id, pr.match]),
      ),
    };
  }

  /** Where a running group's log stands on this node; undefined when not running. */
  logStatus(groupId: number): LogStatus | undefined {
    const g = this.#groups.get(groupId);
    return g === undefined ? undefined : {
      snapshotIndex: g.storage.snapshot().meta.index,
      firstIndex: g.storage.firstIndex(),
      lastIndex: g.storage.lastIndex(),
      applied: g.applied,
    };
  }

  /** Every running group's positions; a scrape's worth of work, not a hot path. */
  groupStats(): GroupStats[] {
    return [...this.#groups.values()].map((g) => {
      const status = g.node.status();
      let followerLagMax = 0;
      if (status.progress !== null) {
        for (const pr of status.progress.values()) {
          followerLagMax = Math.max(
            followerLagMax,
            status.lastIndex - pr.match,
          );
        }
      }
      return {
        groupId: g.id,
        leader: g.leader,
        term: g.term,
        commitIndex: status.hardState.commit,
        applied: g.applied,
        followerLagMax,
        snapshots: g.snapshots,
      };
    });
  }

  /** A running group's current voters and learners. */
  membership(groupId: number): ConfState | undefined {
    const g = this.#groups.get(groupId);
    return g === undefined ? undefined : {
      voters: [...g.confState.voters],
      learners: [...g.confState.learners],
    };
  }

  /** Subscribes to leadership changes; returns the unsubscribe function. */
  onLeaderChange(cb: (e: LeaderChange) => void): () => void {
    this.#leaderListeners.add(cb);
    return () => this.#leaderListeners.delete(cb);
  }

  /**
   * Replaces the address book of peer hosts (discovery calls it as nodes
   * come and go): new peers are connected, a peer whose address changed is
   * reconnected, and peers not listed are disconnected. Group membership is
   * separate: a voter missing here is merely unreachable.
   */
  setPeers(peers: ReadonlyMap<NodeId, Address>): void {
    this.#transport.setPeers(peers);
  }

  /** Renewed raft.tls credentials for new connections (SIGHUP). */
  reloadTls(tls: PeerCredentials): Promise<void> {
    return this.#transport.reloadTls(tls);
  }

  /**
   * Sends a small application message to node `to` over the Raft
   * connection to it, best effort and unordered with Raft traffic: it
   * leaves at once, never waiting for a loop turn or a WAL sync. Returns
   * false when it was dropped (host not running, peer unknown or not
   * connected, or its send queue full); the caller retries. Sending to this
   * node delivers locally, asynchronously. Throws RangeError when `data`
   * exceeds APP_MESSAGE_BYTES_MAX.
   */
  sendApp(to: NodeId, data: Uint8Array): boolean {
    checkAppMessageSize(data);
    if (!this.#running) return false;
    if (to !== this.nodeId) return this.#transport.sendApp(to, data);
    // A copy, as a remote receiver would get: the caller may reuse its buffer.
    const copy = data.slice();
    queueMicrotask(() => {
      if (this.#running) this.#deliverApp(to, copy);
    });
    return true;
  }

  /**
   * Subscribes to application messages sent to this node (by sendApp on
   * any host, this one included); returns the unsubscribe function. All
   * listeners share one `data` array; a listener that throws is logged.
   */
  onAppMessage(cb: (from: NodeId, data: Uint8Array) => void): () => void {
    this.#appListeners.add(cb);
    return () => this.#appListeners.delete(cb);
  }

  /** True when the group is quiesced (exposed for tests and metrics). */
  isQuiesced(groupId: number): boolean {
    return this.#groups.get(groupId)?.quiesced ?? false;
  }

  /** Starts an election for a group now (tests, leader balancing). */
  campaign(groupId: number): void {
    const g = this.#groups.get(groupId);
    if (g === undefined) {
      throw new RangeError(
        `Cannot campaign in group ${groupId}: not running on this host`,
      );
    }
    this.#wake(g);
    g.node.campaign();
    this.#touch(g);
  }

  #requireWal(): Wal {
    const wal = this.#wal;
    if (wal === null) throw new TypeError("RaftHost is not started");
    return wal;
  }

  #touch(g: Group): void {
    this.#touched.add(g);
    this.#schedule();
  }

  #wake(g: Group): void {
    g.quiesced = false;
    g.idleTicks = 0;
  }

  #schedule(): void {
    if (!this.#running || this.#turnTimer !== undefined) return;
    // setImmediate, not setTimeout(0): chained timeouts are clamped to ~2 ms, which would add up per commit.
    this.#turnTimer = this.#clock.setImmediate(() => {
      this.#turnTimer = undefined;
      this.#turn();
    });
  }

  #deliverApp(from: NodeId, data: Uint8Array): void {
    for (const cb of this.#appListeners) {
      try {
        cb(from, data);
      } catch (err) {
        // A listener's bug must not drop the connection the message came on.
        this.#options.logger?.warn(
          `raft host ${this.nodeId}: app message listener failed: ${err}`,
        );
      }
    }
  }

  #receive(envelopes: Envelope[]): void {
    if (this.#inbound.length + envelopes.length > this.#maxInbound) return;
    for (const env of envelopes) this.#inbound.push(env);
    this.#schedule();
  }

  /** Steps every queued inbound message into its group; marks those groups in `dirty`. */
  #stepInbound(dirty: Set<Group>): void {
    const inbound = this.#inbound;
    this.#inbound = [];
    for (const env of inbound) {
      const g = this.#groups.get(env.groupId);
      // Unknown groups (not started yet, or removed) and misrouted messages are dropped; Raft retries.
      if (g === undefined || env.message.to !== this.nodeId) continue;
      if (env.message.type === HostMessageType.Quiesce) {
        this.#handleQuiesce(g, env.message);
      } else {
        if (!this.#isKeepAlive(g, env.message)) this.#wake(g);
        g.node.step(env.message);
        if (g.replicaWaits.size > 0) this.#settleReplicaWaits(g);
      }
      dirty.add(g);
    }
  }

  /**
   * One loop turn for all groups, synchronous from stepping to the
   * fdatasync to applying, so turns never overlap. What arrives meanwhile
   * waits in the socket buffers and is read, and group-committed, between
   * turns.
   */
  #turn(): void {
    // A pass that synced goes straight on with what it made ready (a sole
    // voter's commit, a follower's next append) instead of waiting a turn.
    while (this.#pass());
  }

  /** True when it synced to disk and more work is waiting. */
  #pass(): boolean {
    if (!this.#running) return false;
    const nowMs = this.#clock.nowMs();
    const dirty = this.#touched;
    this.#touched = new Set();
    this.#stepInbound(dirty);

    for (const g of dirty) if (g.queued.length > 0) this.#proposeQueued(g);

    if (this.#tickDue) {
      this.#tickDue = false;
      this.#tickAll(nowMs, dirty);
      this.#compactPinning();
    }

    const wal = this.#requireWal();
    const readies: [Group, Ready][] = [];
    // Delivery reports step into the core, so they wait until every Ready is advanced.
    const reports: Report[] = [];
    for (const g of dirty) {
      if (!g.node.hasReady()) continue;
      const rd = g.node.ready();
      if (
        rd.hardState !== null || rd.entries.length > 0 || rd.snapshot !== null
      ) {
        g.storage.persist(rd);
      }
      // A leader's appends leave now, so followers write while we do (the core counts us once synced).
      // Deno starts a socket write at once: they are on the wire before the fdatasync below blocks.
      this.#sendAll(g, rd.earlyMessages, reports);
      readies.push([g, rd]);
    }
    this.#transport.flush(nowMs);
    // Group commit: one fdatasync makes every group's Ready durable before
    // the rest is sent. A big one runs in the background, and turns go on
    // meanwhile: the next requests are read, proposed and written while the
    // disk works, and the next sync covers them. Only what needs a Ready
    // durable waits: its messages (votes, append answers), and the leader
    // counting itself toward a commit, hence applying on a sole voter.
    // While a sync runs every Ready waits for the next, since an answer
    // without entries of its own may acknowledge entries the running one
    // has not yet made durable. A snapshot is installed only once durable.
    const background = readies.length > 0 &&
      (this.#sync !== undefined ||
        (wal.mustSync && wal.pendingBytes >= this.#backgroundSyncBytes)) &&
      readies.every(([, rd]) => rd.snapshot === null);
    let synced = false;
    if (background) {
      this.#unsynced.push(...readies);
      if (this.#sync === undefined) this.#syncInBackground();
    } else {
      const started = performance.now();
      synced = wal.syncRequired();
      if (synced) this.#options.onFsync?.((performance.now() - started) / 1000);
      for (const [g, rd] of readies) {
        if (this.#groups.get(g.id) === g) {
          this.#sendAll(g, rd.messages, reports);
        }
      }
      this.#transport.flush(nowMs);
    }

    for (const [g, rd] of readies) {
      if (this.#groups.get(g.id) === g) this.#apply(g, rd);
    }

    let again = false;
    for (const [g, rd] of readies) {
      if (this.#groups.get(g.id) !== g) continue; // stopped by what an apply ran
      g.node.advance(rd, { persisted: !background });
      // The leader counts its own log once this turn's sync is advanced.
      if (g.replicaWaits.size > 0) this.#settleReplicaWaits(g);
      this.#maybeSnapshot(g);
      if (g.foundingOnly) g.foundingOnly = !this.#snapshotPastFounding(g);
    }
    this.#stepReports(reports);
    for (const [g] of readies) {
      if (this.#groups.get(g.id) === g && g.node.hasReady()) {
        this.#touched.add(g);
        again = true;
      }
    }
    const more = again || this.#touched.size > 0;
    if (more && synced) return true;
    if (more) this.#schedule();
    return false;
  }

  /**
   * Syncs what the WAL holds for the Readies persisted so far, then does
   * what waited for it; starts the next if more came meanwhile. It runs
   * as a clock callback, which a simulated clock waits for.
   */
  #syncInBackground(): void {
    const covered = this.#unsynced;
    this.#unsynced = [];
    const { promise, resolve } = Promise.withResolvers<void>();
    const ended = () => {
      this.#sync = undefined;
      resolve();
    };
    const sync: BackgroundSync = {
      done: promise,
      cancel: () => {
        this.#clock.clearImmediate(timer);
        ended();
      },
    };
    this.#sync = sync;
    const timer = this.#clock.setImmediate(async () => {
      sync.cancel = undefined;
      const started = performance.now();
      try {
        await this.#requireWal().syncInBackground();
      } finally {
        ended();
      }
      this.#options.onFsync?.((performance.now() - started) / 1000);
      // Stopping: what it made durable is replayed on the next start.
      if (!this.#running) return;
      const reports: Report[] = [];
      for (const [g, rd] of covered) {
        if (this.#groups.get(g.id) !== g) continue;
        g.node.persisted(rd);
        this.#sendAll(g, rd.messages, reports);
        if (g.replicaWaits.size > 0) this.#settleReplicaWaits(g);
        this.#touched.add(g);
      }
      this.#transport.flush(this.#clock.nowMs());
      this.#stepReports(reports);
      if (this.#unsynced.length > 0) this.#syncInBackground();
      this.#schedule();
    });
  }

  /** Steps delivery reports into their groups (none may hold a Ready). */
  #stepReports(reports: readonly Report[]): void {
    for (const { g, to, outcome } of reports) {
      if (this.#groups.get(g.id) !== g) continue;
      if (outcome === "unreachable") g.node.reportUnreachable(to);
      else g.node.reportSnapshot(to, { failed: outcome === "snapFailed" });
      this.#touched.add(g);
    }
  }

  #sendAll(g: Group, messages: readonly Message[], reports: Report[]): void {
    for (const m of messages) {
      const sent = this.#transport.send(m.to, { groupId: g.id, message: m });
      if (m.type === MessageType.Snap) {
        reports.push({
          g,
          to: m.to,
          outcome: sent ? "snapSent" : "snapFailed",
        });
      } else if (!sent) {
        reports.push({ g, to: m.to, outcome: "unreachable" });
      }
    }
  }

  #proposeQueued(g: Group): void {
    const queued = g.queued;
    g.queued = [];
    this.#wake(g);
    if (g.leader !== this.nodeId) {
      const err = new NotLeaderError("propose", { leaderHint: g.leader });
      for (const p of queued) p.reject(err);
      return;
    }
    for (const p of queued) {
      if (
        p.conf !== null && isNewMember(g, p.conf) &&
        !this.#snapshotPastFounding(g)
      ) {
        p.reject(
          new ProposalDroppedError(
            `Cannot add node ${p.conf.nodeId} to group ${g.id} yet: its state machine cannot be snapshotted now`,
            { leaderHint: this.nodeId },
          ),
        );
        continue;
      }
      let index: number;
      try {
        index = p.conf === null
          ? g.node.propose(p.data)
          : g.node.proposeConfChange(p.conf);
      } catch (err) {
        p.reject(err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      g.inFlight.set(index, {
        term: g.node.term,
        resolve: p.resolve,
        reject: p.reject,
      });
    }
  }

  /**
   * A group's founding membership is recorded only in its first snapshot
   * (index 0), never in a log entry: a node added later that replayed the
   * log from index 1 would see only the changes after the founding, and
   * could even count itself the sole voter. So the leader snapshots before
   * it adds the first new member, and every member snapshots after it
   * applied a membership change (so whoever leads next has one too): a new
   * member then starts from a snapshot that carries the whole
   * configuration. Returns false while the state machine cannot snapshot.
   */
  #snapshotPastFounding(g: Group): boolean {
    if (g.storage.snapshot().meta.index > 0) return true;
    // Nothing may stay behind this snapshot: a kept entry 1 would be sent
    // to the new member instead of the snapshot, and the founding with it.
    this.#compact(g, { retainEntries: 0, current: true });
    return g.storage.snapshot().meta.index > 0;
  }

  #tickAll(nowMs: number, dirty: Set<Group>): void {
    const silentMs = this.#options.electionTicks * this.#options.tickMs;
    for (const g of this.#groups.values()) {
      if (g.quiesced) {
        // A follower wakes when the leader's host went silent: it may have died while all was quiet.
        if (
          g.leader !== this.nodeId &&
          (g.leader === 0 ||
            nowMs - this.#transport.lastHeardMs(g.leader) > silentMs)
        ) {
          this.#wake(g);
        } else {
          continue;
        }
      }
      g.node.tick();
      dirty.add(g);
      if (g.leader === this.nodeId) this.#maybeQuiesce(g);
      else g.idleTicks = 0;
    }
  }

  #maybeQuiesce(g: Group): void {
    if (g.queued.length > 0 || g.inFlight.size > 0 || g.reads.size > 0) {
      g.idleTicks = 0;
      return;
    }
    // status() allocates: look only every heartbeat interval.
    g.idleTicks++;
    if (g.idleTicks % this.#options.heartbeatTicks !== 0) return;
    const status = g.node.status();
    const last = status.lastIndex;
    let idle = status.hardState.commit === last && g.applied === last;
    for (const pr of status.progress?.values() ?? []) {
      if (pr.match !== last) idle = false;
    }
    if (!idle) {
      g.idleTicks = 0;
      return;
    }
    if (g.idleTicks < this.#quiesceTicks) return;
    for (const to of [...g.confState.voters, ...g.confState.learners]) {
      if (to === this.nodeId) continue;
      this.#transport.send(to, {
        groupId: g.id,
        message: {
          type: HostMessageType.Quiesce,
          from: this.nodeId,
          to,
          term: status.hardState.term,
          logTerm: 0,
          index: 0,
          entries: [],
          commit: status.hardState.commit,
          reject: false,
          rejectHint: 0,
          snapshot: null,
          context: null,
        },
      });
    }
    g.quiesced = true;
  }

  /**
   * Heartbeats of the current term between the known leader and its
   * followers carry nothing new: they must not wake a quiesced group, or the
   * last heartbeat round before quiescing would undo it.
   */
  #isKeepAlive(g: Group, m: Message): boolean {
    if (m.term !== g.term) return false;
    if (m.type === MessageType.Heartbeat) return m.from === g.leader;
    return m.type === MessageType.HeartbeatResp && g.leader === this.nodeId;
  }

  #handleQuiesce(g: Group, m: Message): void {
    const status = g.node.status();
    // Only the current leader may put us to sleep, and only once we know all it committed.
    if (
      status.softState.leader === m.from &&
      status.hardState.term === m.term &&
      status.hardState.commit >= m.commit &&
      g.applied >= m.commit
    ) {
      g.quiesced = true;
    }
  }

  #apply(g: Group, rd: Ready): void {
    if (rd.softState !== null || rd.hardState !== null) {
      const term = rd.hardState?.term ?? g.term;
      const leader = rd.softState?.leader ?? g.leader;
      if (leader !== g.leader || term !== g.term) {
        const wasLeader = g.leader === this.nodeId;
        g.leader = leader;
        g.term = term;
        if (wasLeader && leader !== this.nodeId) {
          this.#failPending(
            g,
            new ProposalDroppedError(
              `Leadership of group ${g.id} moved to ${leader}`,
              { leaderHint: leader },
            ),
          );
          this.#expireInFlight(g);
        }
        if (rd.softState !== null) {
          for (const cb of this.#leaderListeners) {
            cb({ groupId: g.id, leader, term });
          }
        }
      }
    }
    if (rd.snapshot !== null) {
      g.snapshots++;
      g.sm.restore(rd.snapshot.data);
      g.confState = rd.snapshot.meta.confState;
      g.confIndex = rd.snapshot.meta.index;
      g.applied = rd.snapshot.meta.index;
    }
    let batch: Entry[] = [];
    const flush = () => {
      if (batch.length === 0) return;
      const results = g.sm.apply(batch);
      for (const [i, e] of batch.entries()) this.#settle(g, e, results?.[i]);
      batch = [];
    };
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) {
        flush();
        g.confState = g.node.applyConfChange(decodeConfChange(e.data));
        g.confIndex = e.index;
        g.foundingOnly = g.storage.snapshot().meta.index === 0;
        this.#settle(g, e, undefined);
      } else if (e.data.length > 0) {
        batch.push(e);
      }
      g.applied = e.index;
    }
    flush();
    for (const rs of rd.readStates) {
      const read = g.reads.get(contextKey(rs.context));
      if (read !== undefined) read.index = rs.index;
    }
    for (const [key, read] of g.reads) {
      if (read.index >= 0 && read.index <= g.applied) {
        g.reads.delete(key);
        this.#clock.clearTimeout(read.timer);
        read.resolve(read.index);
      }
    }
  }

  #settle(g: Group, e: Entry, result: unknown): void {
    const w = g.inFlight.get(e.index);
    if (w === undefined) return;
    g.inFlight.delete(e.index);
    if (w.term === e.term) w.resolve({ index: e.index, result });
    else {
      w.reject(
        new ProposalDroppedError(
          `Proposal at index ${e.index} of group ${g.id} was overwritten`,
          {
            leaderHint: g.leader,
          },
        ),
      );
    }
  }

  /** Snapshots a group whose log passed its byte bound or that applied snapshotEntries since its last snapshot. */
  #maybeSnapshot(g: Group): void {
    const bytesMax = isSole(g)
      ? this.#options.maxInMemLogBytes * SOLE_LOG_SHARE
      : this.#options.maxInMemLogBytes;
    const overBytes = g.storage.inMemBytes > bytesMax;
    const overEntries = this.#snapshotEntries > 0 &&
      g.applied - g.storage.snapshot().meta.index >= this.#snapshotEntries;
    if (overBytes || overEntries) this.#compact(g);
  }

  /**
   * A group that applies little (the controller's) reaches neither
   * snapshot bound for a long time, and its few entries in the WAL's
   * oldest segment would keep that one and every later one on disk: the
   * WAL would grow without bound, and every write would go to fresh pages.
   * Once more than WAL_CLOSED_SEGMENTS_MAX are closed, the groups holding
   * the oldest one are snapshotted, and the next roll deletes it.
   */
  #compactPinning(): void {
    const pinning = this.#requireWal().groupsPinningOldest(
      WAL_CLOSED_SEGMENTS_MAX,
    );
    for (const groupId of pinning) {
      const g = this.#groups.get(groupId);
      if (g !== undefined) this.#compact(g);
    }
  }

  /**
   * Compacts behind the state machine's durable snapshot where it has one
   * (durableSnapshot), else behind the present state. Taking the present
   * state of a partition meant an fdatasync of up to 4 MiB of its log on
   * the loop, and with 8 busy partitions those stalls set the ack p99: at
   * half the peak rate 27-29 ms, against 13-17 ms with the sync left out.
   * `current` insists on the present state, as the founding snapshot does.
   */
  #compact(
    g: Group,
    opts: { retainEntries?: number; current?: boolean } = {},
  ): void {
    const after = g.storage.snapshot().meta.index;
    // Nothing applied since the snapshot (the compaction overhead may hold older entries).
    if (g.applied <= after) return;
    // Compacting behind a snapshot that overstates the state would lose
    // the entries that the state still needs.
    if (g.sm.snapshotReady?.() === false) return;
    let snapshot: { index: number; data: Uint8Array } | null = null;
    if (opts.current !== true && g.sm.durableSnapshot !== undefined) {
      snapshot = g.sm.durableSnapshot(after);
      // Not durable yet: the state machine is on it, and is asked again.
      if (snapshot === null) return;
    }
    // g.confState is the configuration as of g.confIndex only.
    if (snapshot === null || snapshot.index < g.confIndex) {
      snapshot = { index: g.applied, data: g.sm.snapshot() };
    }
    g.storage.compact(snapshot.index, {
      confState: g.confState,
      data: snapshot.data,
      retainEntries: opts.retainEntries ?? this.#compactionOverheadEntries,
      // Nobody is caught up from a sole member's log.
      retainBytesMax: isSole(g) ? 0 : this.#options.maxInMemLogBytes / 2,
    });
    g.snapshots++;
  }

  #failAll(g: Group, err: Error): void {
    for (const w of g.inFlight.values()) w.reject(err);
    g.inFlight.clear();
    this.#failPending(g, err);
  }

  /**
   * A deposed leader's proposals already in its log may still commit under
   * its successor. Each waits to be applied here, or found overwritten,
   * which is a definite answer (a client told to retry a write that did
   * commit would write it twice), for up to two election timeouts; any
   * still open then fails with its outcome unknown.
   */
  #expireInFlight(g: Group): void {
    if (g.inFlight.size === 0) return;
    const open = new Map(g.inFlight);
    this.#clock.setTimeout(() => {
      const err = new ProposalDroppedError(
        `Leadership of group ${g.id} moved: outcome of the proposal unknown`,
        { leaderHint: g.leader },
      );
      for (const [index, w] of open) {
        if (g.inFlight.get(index) !== w) continue;
        g.inFlight.delete(index);
        w.reject(err);
      }
    }, 2 * this.#options.electionTicks * this.#options.tickMs);
  }

  /** Fails what is not yet in the log, reads, and replica waits. */
  #failPending(g: Group, err: Error): void {
    for (const p of g.queued) p.reject(err);
    g.queued = [];
    for (const r of g.reads.values()) {
      this.#clock.clearTimeout(r.timer);
      r.reject(err);
    }
    g.reads.clear();
    for (const w of g.replicaWaits) {
      this.#clock.clearTimeout(w.timer);
      w.resolve(false);
    }
    g.replicaWaits.clear();
  }
}

function replicasHold(g: Group, index: number, count: number): boolean {
  let held = 0;
  for (const v of g.confState.voters) {
    if ((g.node.matchIndex(v) ?? 0) >= index) held++;
  }
  return held >= count;
}

/**
 * The share of maxInMemLogBytes a group without other members keeps in
 * memory before it snapshots. Its log serves no follower, and holding
 * record sets for seconds is not free: with the whole 16 MiB held, V8's GC
 * threads took a quarter of a single broker's CPU producing to one
 * partition; at an eighth they take half as much per message.
 */
const SOLE_LOG_SHARE = 1 / 8;

/** A group of one voter and no learners: no follower reads its log. */
function isSole(g: Group): boolean {
  return g.confState.voters.length === 1 && g.confState.learners.length === 0;
}

function isNewMember(g: Group, cc: ConfChange): boolean {
  return cc.type !== "removeVoter" &&
    !g.confState.voters.includes(cc.nodeId) &&
    !g.confState.learners.includes(cc.nodeId);
}

/** Distinct replicas of one group, and groups of one node, must not draw the same timeouts. */
function groupSeed(
  seed: number,
  ids: { nodeId: NodeId; groupId: number },
): number {
  let h = seed >>> 0;
  for (const v of [ids.nodeId, ids.groupId]) {
    h = Math.imul(h ^ v, 0x9e3779b1) >>> 0;
    h ^= h >>> 16;
  }
  return h;
}

function contextKey(context: Uint8Array): string {
  return context.join(",");
}
