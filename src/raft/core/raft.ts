import { assert } from "../../util/mod.ts";
import { decodeConfChange } from "./conf_change.ts";
import {
  CompactedError,
  NotLeaderError,
  ProposalDroppedError,
  RaftConfigError,
  UnavailableError,
} from "./errors.ts";
import { RaftLog } from "./log.ts";
import {
  committedIndex,
  Progress,
  quorumSize,
  voteResult,
} from "./progress.ts";
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  RaftOptions,
  RaftStorage,
  ReadState,
  Role,
  Snapshot,
  SoftState,
  UnsafeTestingFaults,
} from "./types.ts";
import { EntryType, MessageType } from "./types.ts";

/** Marks the votes of a campaign started by TimeoutNow: they bypass leader stickiness. */
const TRANSFER_CONTEXT = new TextEncoder().encode("transfer");

/** A message with only the fields that matter set; the rest take neutral values. */
export function newMessage(
  fields: Partial<Message> & Pick<Message, "type" | "to" | "from">,
): Message {
  return {
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    snapshot: null,
    context: null,
    ...fields,
  };
}

function contextKey(context: Uint8Array | null): string {
  return context === null ? "" : Array.from(context).join(",");
}

interface ReadRequest {
  index: number;
  from: NodeId;
  context: Uint8Array;
  acks: Set<NodeId>;
}

/** Checks RaftOptions; throws RaftConfigError naming the bad field. */
export function validateRaftOptions(options: RaftOptions): void {
  const positive = (name: string, value: number) => {
    if (!Number.isInteger(value) || value <= 0) {
      throw new RaftConfigError(
        `Invalid raft option ${name}: ${value} is not a positive integer`,
      );
    }
  };
  positive("id", options.id);
  positive("electionTicks", options.electionTicks);
  positive("heartbeatTicks", options.heartbeatTicks);
  positive("maxSizePerMsg", options.maxSizePerMsg);
  positive("maxInflightMsgs", options.maxInflightMsgs);
  const delay = options.firstElectionDelayTicks ?? 0;
  if (!Number.isInteger(delay) || delay < 0) {
    throw new RaftConfigError(
      `Invalid raft option firstElectionDelayTicks: ${delay} is not a non-negative integer`,
    );
  }
  if (options.electionTicks <= options.heartbeatTicks) {
    throw new RaftConfigError(
      `Invalid raft option electionTicks: ${options.electionTicks} must exceed heartbeatTicks ${options.heartbeatTicks}`,
    );
  }
  if (
    options.applied !== undefined &&
    (!Number.isInteger(options.applied) || options.applied < 0)
  ) {
    throw new RaftConfigError(
      `Invalid raft option applied: ${options.applied} is not a non-negative integer`,
    );
  }
}

/**
 * One replica's Raft state machine (Ongaro's thesis, with etcd's PreVote,
 * CheckQuorum, flow control and ReadIndex). Pure: input is step()/tick(),
 * output accumulates in `messages`, `readStates` and the log's unstable part.
 * Only the become* methods change role; step() compares terms once.
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  /** Whom we voted for in `term`; 0 = nobody. */
  vote: NodeId = 0;
  role: Role = "follower";
  /** Leader of `term` as far as we know; 0 = unknown. */
  lead: NodeId = 0;
  readonly log: RaftLog;
  /** Outbox, drained by RawNode.ready(). */
  messages: Message[] = [];
  readStates: ReadState[] = [];

  readonly #options: RaftOptions;
  readonly #faults: UnsafeTestingFaults;
  #progress = new Map<NodeId, Progress>();
  /** Sorted, so that broadcasts and traces are stable. */
  #voters: NodeId[] = [];
  #learners: NodeId[] = [];
  #votes = new Map<NodeId, boolean>();
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTicks = 0;
  /** Leader: the voter we hand leadership to; 0 = none. */
  #leadTransferee: NodeId = 0;
  /** Set for good once the node is leaving: it never campaigns again. */
  #campaignsHeld = false;
  /** Leader: index of the last conf change proposed; a new one waits until it is applied. */
  #pendingConfIndex = 0;
  /** Leader: reads waiting for a heartbeat quorum, in arrival order. */
  #readRequests: ReadRequest[] = [];
  /** Leader: entries proposed and not yet broadcast. */
  #proposalsUnsent = false;
  /** Leader: reads that arrived before an entry of this term committed. */
  #earlyReads: Message[] = [];

  constructor(storage: RaftStorage, options: RaftOptions) {
    validateRaftOptions(options);
    this.id = options.id;
    this.#options = options;
    this.#faults = options.unsafeTestingFaults ?? {};
    this.log = new RaftLog(storage, { applied: options.applied ?? 0 });
    const { hardState, confState } = storage.initialState();
    this.#setConfState(confState);
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.#becomeFollower(hardState.term, 0);
    this.#electionElapsed = -(options.firstElectionDelayTicks ?? 0);
  }

  // ---- queries -------------------------------------------------------------

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { leader: this.lead, role: this.role };
  }

  confState(): ConfState {
    return { voters: [...this.#voters], learners: [...this.#learners] };
  }

  progressOf(id: NodeId): Progress | undefined {
    return this.#progress.get(id);
  }

  peers(): NodeId[] {
    return [...this.#voters, ...this.#learners].sort((a, b) => a - b);
  }

  /** Voters only: learners neither campaign nor count. */
  promotable(): boolean {
    return this.#voters.includes(this.id);
  }

  // ---- role changes ----------------------------------------------------------

  #reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = 0;
    }
    this.lead = 0;
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#randomizedElectionTicks = this.#options.electionTicks +
      this.#options.rng.nextInt(this.#options.electionTicks);
    this.#leadTransferee = 0;
    this.#votes.clear();
    this.#pendingConfIndex = 0;
    this.#readRequests = [];
    this.#earlyReads = [];
    const next = this.log.lastIndex() + 1;
    for (const [id, pr] of this.#progress) {
      const fresh = new Progress(next, {
        maxInflightMsgs: this.#options.maxInflightMsgs,
        isLearner: pr.isLearner,
      });
      if (id === this.id) fresh.match = this.log.persistedIndex();
      this.#progress.set(id, fresh);
    }
  }

  #becomeFollower(term: number, lead: NodeId): void {
    this.#reset(term);
    this.role = "follower";
    this.lead = lead;
    this.#options.logger?.debug(
      `${this.id} became follower at term ${term}, leader ${lead}`,
    );
  }

  #becomePreCandidate(): void {
    assert(this.role !== "leader", "leader cannot become pre-candidate", {
      id: this.id,
    });
    // PreVote changes neither term nor vote: a failed pre-campaign leaves no trace.
    this.#votes.clear();
    this.role = "precandidate";
    this.lead = 0;
  }

  #becomeCandidate(): void {
    assert(this.role !== "leader", "leader cannot become candidate", {
      id: this.id,
    });
    this.#reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
  }

  #becomeLeader(): void {
    assert(this.role === "candidate", "only a candidate becomes leader", {
      id: this.id,
      role: this.role,
    });
    this.#reset(this.term);
    this.role = "leader";
    this.lead = this.id;
    this.#progress.get(this.id)?.becomeReplicate();
    // The no-op commits the previous terms' entries (§5.4.2) and, as a fence,
    // holds back conf changes until everything before it is applied.
    this.#appendEntries([{
      term: 0,
      index: 0,
      type: EntryType.Normal,
      data: new Uint8Array(0),
    }]);
    this.#pendingConfIndex = this.log.lastIndex();
    this.#options.logger?.info(`${this.id} became leader at term ${this.term}`);
  }

  // ---- time ------------------------------------------------------------------

  tick(): void {
    if (this.role === "leader") this.#tickLeader();
    else this.#tickElection();
  }

  #tickElection(): void {
    this.#electionElapsed++;
    // A held node's timer runs on past the timeout: restarting it would
    // keep the silent leader's lease alive here and refuse every vote.
    if (
      this.promotable() && !this.#campaignsHeld &&
      this.#electionElapsed >= this.#randomizedElectionTicks
    ) {
      this.#electionElapsed = 0;
      this.hup({ transfer: false });
    }
  }

  #tickLeader(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#options.electionTicks) {
      this.#electionElapsed = 0;
      if (this.#options.checkQuorum && !this.#quorumActive()) {
        this.#options.logger?.info(`${this.id} lost its quorum, stepping down`);
        this.#becomeFollower(this.term, 0);
        return;
      }
      // A transfer that did not finish within an election timeout is abandoned.
      this.#leadTransferee = 0;
    }
    if (this.#heartbeatElapsed >= this.#options.heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      const pending = this.#readRequests[this.#readRequests.length - 1];
      this.#broadcastHeartbeat(pending?.context ?? null);
    }
  }

  /** Counts voters heard from since the last check, then starts a new round. */
  #quorumActive(): boolean {
    let active = 0;
    for (const id of this.#voters) {
      const pr = this.#progress.get(id)!;
      if (id === this.id || pr.recentActive) active++;
      if (id !== this.id) pr.recentActive = false;
    }
    for (const id of this.#learners) {
      this.#progress.get(id)!.recentActive = false;
    }
    return active >= quorumSize(this.#voters.length);
  }

  // ---- elections ---------------------------------------------------------------

  /**
   * From now on this node never starts an election, not even when a
   * leader's TimeoutNow asks it to; it still votes. A node that is being
   * shut down hands its leaderships away and must not win one back.
   */
  holdCampaigns(): void {
    this.#campaignsHeld = true;
  }

  /** Starts an election (or a pre-election) unless this node may not. */
  hup(options: { transfer: boolean }): void {
    if (
      this.role === "leader" || !this.promotable() || this.#campaignsHeld
    ) return;
    // A conf change committed but not applied may change who votes: wait for it.
    const unapplied = this.log.slice(
      Math.max(this.log.applied + 1, this.log.firstIndex()),
      this.log.committed + 1,
      Number.POSITIVE_INFINITY,
    );
    if (unapplied.some((e) => e.type === EntryType.ConfChange)) return;
    if (this.#options.preVote && !options.transfer) {
      this.#campaign({ pre: true, transfer: false });
    } else {
      this.#campaign({ pre: false, transfer: options.transfer });
    }
  }

  #campaign(options: { pre: boolean; transfer: boolean }): void {
    let voteTerm: number;
    if (options.pre) {
      this.#becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.#becomeCandidate();
      voteTerm = this.term;
    }
    this.#votes.set(this.id, true);
    if (this.#tallyVotes() === "won") return;
    for (const id of this.#voters) {
      if (id === this.id) continue;
      this.#send(newMessage({
        type: options.pre ? MessageType.PreVote : MessageType.Vote,
        from: this.id,
        to: id,
        term: voteTerm,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        context: options.transfer ? TRANSFER_CONTEXT : null,
      }));
    }
  }

  /** Acts on the votes so far; returns the outcome. */
  #tallyVotes(): "won" | "lost" | "pending" {
    const result = voteResult(this.#voters, this.#votes);
    if (result === "won") {
      if (this.role === "precandidate") {
        this.#campaign({ pre: false, transfer: false });
      } else {
        this.#becomeLeader();
        this.#broadcastAppend();
      }
    } else if (result === "lost") {
      this.#becomeFollower(this.term, 0);
    }
    return result;
  }

  #handleVoteRequest(m: Message): void {
    const pre = m.type === MessageType.PreVote;
    const canVote = this.vote === m.from ||
      (this.vote === 0 && this.lead === 0) ||
      (pre && m.term > this.term);
    const upToDate = this.#faults.skipVoteLogCheck === true ||
      this.log.isUpToDate(m.index, m.logTerm);
    const respType = pre ? MessageType.PreVoteResp : MessageType.VoteResp;
    if (canVote && upToDate) {
      // A pre-vote grant answers in the candidate's future term, so it counts there.
      this.#send(newMessage({
        type: respType,
        from: this.id,
        to: m.from,
        term: m.term,
      }));
      if (!pre) {
        this.#electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.#send(newMessage({
        type: respType,
        from: this.id,
        to: m.from,
        term: this.term,
        reject: true,
      }));
    }
  }

  // ---- input -------------------------------------------------------------------

  step(m: Message): void {
    if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const transfer = contextKey(m.context) ===
          contextKey(TRANSFER_CONTEXT);
        // Leader stickiness: while a leader is heard from, a (pre)candidate
        // is a disruption, not a sign of failure.
        const inLease = this.lead !== 0 &&
          this.#electionElapsed < this.#options.electionTicks;
        if (!transfer && inLease) return;
      }
      if (m.type === MessageType.PreVote) {
        // Answered below without moving to the candidate's term.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A grant carries our own future term; it is not news of a newer leader.
      } else {
        const fromLeader = m.type === MessageType.App ||
          m.type === MessageType.Heartbeat || m.type === MessageType.Snap;
        this.#becomeFollower(m.term, fromLeader ? m.from : 0);
      }
    } else if (m.term !== 0 && m.term < this.term) {
      if (m.type === MessageType.App || m.type === MessageType.Heartbeat) {
        // A stale leader (or our own term bumped in a partition): our answer
        // carries our term, which makes that leader step down.
        this.#send(newMessage({
          type: MessageType.AppResp,
          from: this.id,
          to: m.from,
          term: this.term,
        }));
      } else if (m.type === MessageType.PreVote) {
        this.#send(newMessage({
          type: MessageType.PreVoteResp,
          from: this.id,
          to: m.from,
          term: this.term,
          reject: true,
        }));
      }
      return;
    }

    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      this.#handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case "leader":
        this.#stepLeader(m);
        return;
      case "candidate":
      case "precandidate":
        this.#stepCandidate(m);
        return;
      case "follower":
        this.#stepFollower(m);
        return;
    }
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.#electionElapsed = 0;
        this.lead = m.from;
        this.#handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.#electionElapsed = 0;
        this.lead = m.from;
        this.#handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.#electionElapsed = 0;
        this.lead = m.from;
        this.#handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        this.hup({ transfer: true });
        return;
      case MessageType.ReadIndex:
        if (m.from !== this.id) return; // meant for a leader we no longer are
        if (this.lead === 0) {
          throw new NotLeaderError("read", { leaderHint: 0 });
        }
        this.#send({ ...m, to: this.lead, term: 0 });
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({
          index: m.index,
          context: m.context ?? new Uint8Array(0),
        });
        return;
      default:
        this.#refuseLocal(m);
    }
  }

  #stepCandidate(m: Message): void {
    const ownResp = this.role === "precandidate"
      ? MessageType.PreVoteResp
      : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snap:
        this.#becomeFollower(m.term, m.from);
        this.#stepFollower(m);
        return;
      case ownResp:
        this.#votes.set(m.from, !m.reject);
        this.#tallyVotes();
        return;
      default:
        this.#refuseLocal(m);
    }
  }

  /** Local requests that need a leader fail with a hint; stray peer messages are dropped. */
  #refuseLocal(m: Message): void {
    const hint = { leaderHint: this.lead };
    switch (m.type) {
      case MessageType.Prop:
        throw new NotLeaderError("propose", hint);
      case MessageType.TransferLeader:
        throw new NotLeaderError("transfer leadership", hint);
      case MessageType.ReadIndex:
        if (m.from === this.id) throw new NotLeaderError("read", hint);
    }
  }

  #stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.Prop:
        this.#propose(m.entries);
        return;
      case MessageType.ReadIndex:
        this.#handleReadIndex(m);
        return;
      case MessageType.TransferLeader:
        this.#handleTransferLeader(m.from);
        return;
    }
    const pr = this.#progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case MessageType.AppResp:
        pr.recentActive = true;
        this.#handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp:
        pr.recentActive = true;
        this.#handleHeartbeatResponse(m, pr);
        return;
      case MessageType.SnapStatus:
        if (pr.state !== "snapshot") return;
        if (m.reject) pr.pendingSnapshot = 0;
        // Either way wait for the next heartbeat answer before probing again.
        pr.becomeProbe();
        pr.probeSent = true;
        return;
      case MessageType.Unreachable:
        if (pr.state === "replicate") pr.becomeProbe();
        return;
    }
  }

  // ---- leader: proposals and replication ---------------------------------------

  /**
   * Appends fresh entries (their term and index are stamped in place) to a
   * leader's log; the fast path of step() for local proposals.
   */
  propose(entries: Entry[]): void {
    if (this.role !== "leader") {
      throw new NotLeaderError("propose", { leaderHint: this.lead });
    }
    this.#propose(entries);
  }

  #propose(entries: Entry[]): void {
    if (!this.#progress.has(this.id)) {
      throw new ProposalDroppedError(
        "Cannot propose: this node was removed from the group",
        { leaderHint: 0 },
      );
    }
    if (this.#leadTransferee !== 0) {
      throw new ProposalDroppedError(
        `Cannot propose: leadership is moving to ${this.#leadTransferee}`,
        { leaderHint: this.#leadTransferee },
      );
    }
    const cc = entries.findIndex((e) => e.type === EntryType.ConfChange);
    if (cc >= 0) {
      if (
        entries.findLastIndex((e) => e.type === EntryType.ConfChange) !== cc ||
        this.#pendingConfIndex > this.log.applied
      ) {
        throw new ProposalDroppedError(
          "Cannot propose conf change: another one is not applied yet",
          { leaderHint: this.id },
        );
      }
      this.#checkConfChange(decodeConfChange(entries[cc]!.data));
    }
    this.#appendEntries(entries);
    if (cc >= 0) {
      this.#pendingConfIndex = this.log.lastIndex() - (entries.length - 1 - cc);
    }
    // Sent by flushProposals() when the Ready is taken, so that proposals
    // arriving together travel together.
    this.#proposalsUnsent = true;
  }

  hasUnsentProposals(): boolean {
    return this.#proposalsUnsent;
  }

  /** Sends the entries proposed since the last Ready to every follower. */
  flushProposals(): void {
    if (!this.#proposalsUnsent) return;
    this.#proposalsUnsent = false;
    if (this.role === "leader") this.#broadcastAppend();
  }

  /** Refuses a change single-server membership cannot make safely. */
  #checkConfChange(cc: ConfChange): void {
    if (
      cc.type === "removeVoter" && this.#voters.length === 1 &&
      this.#voters[0] === cc.nodeId
    ) {
      throw new ProposalDroppedError(
        `Cannot remove node ${cc.nodeId}: it is the last voter`,
        { leaderHint: this.id },
      );
    }
    if (cc.type === "addLearner" && this.#voters.includes(cc.nodeId)) {
      throw new ProposalDroppedError(
        `Cannot make node ${cc.nodeId} a learner: it is a voter (remove it first)`,
        { leaderHint: this.id },
      );
    }
  }

  /** Stamps `entries` (fresh objects, owned from now on) with this term and the next indices. */
  #appendEntries(entries: Entry[]): void {
    let index = this.log.lastIndex();
    for (const e of entries) {
      e.term = this.term;
      e.index = ++index;
    }
    // The leader's own copy counts toward commit only once durable (see
    // persisted()): its appends may reach followers before its own fsync.
    this.log.append(entries);
  }

  /**
   * The host made the log durable up to (index, term). A leader counts its
   * own copy toward the commit quorum only from here (thesis §10.2.1), so
   * that what commits is on a quorum of disks even when the leader sent its
   * appends before its own write finished and then crashed.
   */
  persisted(index: number, term: number): void {
    if (this.role !== "leader" || this.log.termOrZero(index) !== term) return;
    const pr = this.#progress.get(this.id);
    if (pr === undefined || !pr.maybeUpdate(index)) return;
    if (this.#maybeCommit()) this.#broadcastAppend();
  }

  /** Advances commit to what a quorum holds; returns whether it moved. */
  #maybeCommit(): boolean {
    const index = committedIndex(
      this.#voters,
      (id) => this.#progress.get(id)!.match,
    );
    let moved: boolean;
    if (this.#faults.commitPreviousTerm === true) {
      // TEST ONLY: the figure-8 bug, committing older terms by counting.
      moved = index > this.log.committed;
      if (moved) this.log.commitTo(index);
    } else {
      moved = this.log.maybeCommit(index, this.term);
    }
    if (moved && this.#earlyReads.length > 0) {
      const early = this.#earlyReads;
      this.#earlyReads = [];
      for (const m of early) this.#handleReadIndex(m);
    }
    return moved;
  }

  #broadcastAppend(): void {
    for (const id of this.peers()) {
      if (id !== this.id) this.#sendAppend(id, { sendIfEmpty: true });
    }
  }

  /** Sends the next App (or a snapshot) to `to` if flow control allows; returns whether it sent. */
  #sendAppend(to: NodeId, options: { sendIfEmpty: boolean }): boolean {
    const pr = this.#progress.get(to)!;
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let entries: Entry[];
    try {
      prevTerm = this.log.term(prevIndex);
      entries = this.log.entriesFrom(pr.next, this.#options.maxSizePerMsg);
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) {
        return this.#sendSnapshot(to, pr);
      }
      throw e;
    }
    if (entries.length === 0 && !options.sendIfEmpty) return false;
    this.#send(newMessage({
      type: MessageType.App,
      from: this.id,
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.log.committed,
    }));
    pr.appendSent = true;
    const last = entries[entries.length - 1];
    if (last !== undefined || pr.state === "probe") {
      pr.sentEntries(last?.index ?? prevIndex);
    }
    return true;
  }

  #sendSnapshot(to: NodeId, pr: Progress): boolean {
    // Only to a follower known to be alive: a snapshot is expensive.
    if (!pr.recentActive) return false;
    const snapshot = this.log.snapshot();
    assert(snapshot.meta.index > 0, "snapshot needed but none exists", { to });
    this.#send(newMessage({
      type: MessageType.Snap,
      from: this.id,
      to,
      snapshot,
    }));
    pr.becomeSnapshot(snapshot.meta.index);
    return true;
  }

  /**
   * Without a read to confirm, a follower sent an App since the last round
   * is skipped: the App reset its election timer and carried the commit,
   * and its answer counts for CheckQuorum. Under load this spares a
   * heartbeat and its answer per follower and round.
   */
  #broadcastHeartbeat(context: Uint8Array | null): void {
    for (const id of this.peers()) {
      if (id === this.id) continue;
      const pr = this.#progress.get(id)!;
      const busy = pr.appendSent;
      pr.appendSent = false;
      if (busy && context === null) continue;
      // Never tell a follower to commit past what it is known to hold.
      this.#send(newMessage({
        type: MessageType.Heartbeat,
        from: this.id,
        to: id,
        commit: Math.min(pr.match, this.log.committed),
        context,
      }));
    }
  }

  #handleAppendResponse(m: Message, pr: Progress): void {
    if (m.reject) {
      // The follower's hint names the last index it may share with us; skip
      // every entry of a term it does not have in one step.
      const hint = m.logTerm > 0
        ? this.log.findConflictByTerm(m.rejectHint, m.logTerm)
        : m.rejectHint;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.#sendAppend(m.from, { sendIfEmpty: true });
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      return;
    }
    if (pr.state === "probe") {
      pr.becomeReplicate();
    } else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "replicate") {
      pr.inflights.freeTo(m.index);
    }
    if (this.#maybeCommit()) {
      this.#broadcastAppend();
    } else if (wasPaused) {
      this.#sendAppend(m.from, { sendIfEmpty: true });
    }
    // Fill the pipeline; the inflight bound ends the loop.
    while (this.#sendAppend(m.from, { sendIfEmpty: false }));
    if (m.from === this.#leadTransferee && pr.match === this.log.lastIndex()) {
      this.#sendTimeoutNow(m.from);
    }
  }

  #handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.probeSent = false;
    if (pr.state === "replicate" && pr.inflights.full()) {
      pr.inflights.freeFirst();
    }
    if (pr.match < this.log.lastIndex()) {
      this.#sendAppend(m.from, { sendIfEmpty: true });
    }
    if (m.context === null) return;
    const key = contextKey(m.context);
    const at = this.#readRequests.findIndex((r) =>
      contextKey(r.context) === key
    );
    const request = this.#readRequests[at];
    if (request === undefined) return;
    request.acks.add(m.from);
    const acked = this.#voters.filter((id) => request.acks.has(id)).length;
    if (acked < quorumSize(this.#voters.length)) return;
    // A quorum confirmed leadership at this point: every earlier read is safe too.
    const done = this.#readRequests.slice(0, at + 1);
    this.#readRequests = this.#readRequests.slice(at + 1);
    for (const r of done) this.#answerRead(r.from, r);
  }

  // ---- leader: reads and transfers ------------------------------------------------

  #handleReadIndex(m: Message): void {
    const context = m.context ?? new Uint8Array(0);
    if (this.#voters.length === 1 && this.#voters[0] === this.id) {
      this.#answerRead(m.from, { index: this.log.committed, context });
      return;
    }
    // Until an entry of this term commits, our commit index may lag (§6.4).
    if (this.log.termOrZero(this.log.committed) !== this.term) {
      this.#earlyReads.push(m);
      return;
    }
    const key = contextKey(context);
    if (this.#readRequests.some((r) => contextKey(r.context) === key)) return;
    this.#readRequests.push({
      index: this.log.committed,
      from: m.from,
      context,
      acks: new Set([this.id]),
    });
    this.#broadcastHeartbeat(context);
  }

  #answerRead(
    to: NodeId,
    read: { index: number; context: Uint8Array },
  ): void {
    if (to === this.id) {
      this.readStates.push({ index: read.index, context: read.context });
    } else {
      this.#send(newMessage({
        type: MessageType.ReadIndexResp,
        from: this.id,
        to,
        index: read.index,
        context: read.context,
      }));
    }
  }

  #handleTransferLeader(transferee: NodeId): void {
    const pr = this.#progress.get(transferee);
    if (pr === undefined || pr.isLearner) {
      throw new ProposalDroppedError(
        `Cannot transfer leadership to ${transferee}: not a voter`,
        { leaderHint: this.id },
      );
    }
    if (transferee === this.id || transferee === this.#leadTransferee) return;
    // The transfer must finish within one election timeout (see #tickLeader).
    this.#electionElapsed = 0;
    this.#leadTransferee = transferee;
    if (pr.match === this.log.lastIndex()) this.#sendTimeoutNow(transferee);
    else this.#sendAppend(transferee, { sendIfEmpty: true });
  }

  #sendTimeoutNow(to: NodeId): void {
    this.#send(newMessage({ type: MessageType.TimeoutNow, from: this.id, to }));
  }

  // ---- follower: log and snapshot -------------------------------------------------

  #handleAppend(m: Message): void {
    const reply = (fields: Partial<Message>) =>
      this.#send(newMessage({
        type: MessageType.AppResp,
        from: this.id,
        to: m.from,
        ...fields,
      }));
    if (m.index < this.log.committed) {
      reply({ index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(
      { index: m.index, logTerm: m.logTerm },
      { commit: m.commit, entries: m.entries },
    );
    if (lastNew !== null) {
      reply({ index: lastNew });
      return;
    }
    // Point the leader at the last index whose term could match: the leader
    // then skips a whole conflicting term per round trip.
    const hintIndex = this.log.findConflictByTerm(
      Math.min(m.index, this.log.lastIndex()),
      m.logTerm,
    );
    reply({
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: this.log.termOrZero(hintIndex),
    });
  }

  #handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.#send(newMessage({
      type: MessageType.HeartbeatResp,
      from: this.id,
      to: m.from,
      context: m.context,
    }));
  }

  #handleSnapshot(m: Message): void {
    const snapshot = m.snapshot;
    if (snapshot === null) return;
    const restored = this.#restore(snapshot);
    this.#send(newMessage({
      type: MessageType.AppResp,
      from: this.id,
      to: m.from,
      index: restored ? this.log.lastIndex() : this.log.committed,
    }));
  }

  #restore(snapshot: Snapshot): boolean {
    const { index, term, confState } = snapshot.meta;
    // A snapshot from before this node joined lacks it in confState; it is
    // taken all the same, and the entries after it re-add this node.
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      // We have the snapshot's entries already: just catch up the commit.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.#setConfState(confState);
    return true;
  }

  // ---- membership -----------------------------------------------------------------

  #setConfState(cs: ConfState): void {
    const old = this.#progress;
    this.#progress = new Map();
    const next = this.log.lastIndex() + 1;
    for (const id of [...cs.voters, ...cs.learners]) {
      const isLearner = !cs.voters.includes(id);
      const pr = old.get(id) ?? new Progress(next, {
        maxInflightMsgs: this.#options.maxInflightMsgs,
        isLearner,
      });
      pr.isLearner = isLearner;
      if (id === this.id) pr.maybeUpdate(this.log.persistedIndex());
      this.#progress.set(id, pr);
    }
    this.#voters = [...new Set(cs.voters)].sort((a, b) => a - b);
    this.#learners = [...new Set(cs.learners)]
      .filter((id) => !cs.voters.includes(id))
      .sort((a, b) => a - b);
  }

  /** Applies a committed ConfChange entry (the application calls this in order). */
  applyConfChange(cc: ConfChange): ConfState {
    const voters = new Set(this.#voters);
    const learners = new Set(this.#learners);
    switch (cc.type) {
      case "addVoter":
        learners.delete(cc.nodeId);
        voters.add(cc.nodeId);
        break;
      case "addLearner":
        if (!voters.has(cc.nodeId)) learners.add(cc.nodeId);
        break;
      case "removeVoter":
        voters.delete(cc.nodeId);
        learners.delete(cc.nodeId);
        break;
    }
    this.#setConfState({ voters: [...voters], learners: [...learners] });
    if (this.role !== "leader") return this.confState();
    if (!this.#voters.includes(this.id)) {
      // A leader removed from the group stops leading; the rest elect anew.
      this.#becomeFollower(this.term, 0);
      return this.confState();
    }
    if (!this.#progress.has(this.#leadTransferee)) this.#leadTransferee = 0;
    // A smaller quorum may commit more; a new member needs the log.
    this.#maybeCommit();
    this.#broadcastAppend();
    return this.confState();
  }

  // ---- output -----------------------------------------------------------------------

  #send(m: Message): void {
    assert(m.to !== this.id, "message to self", { type: m.type, id: this.id });
    const termless = m.type === MessageType.ReadIndex ||
      m.type === MessageType.Prop;
    const explicit = m.type === MessageType.Vote ||
      m.type === MessageType.PreVote || m.type === MessageType.VoteResp ||
      m.type === MessageType.PreVoteResp;
    if (explicit) {
      assert(m.term > 0, "vote message without term", { type: m.type });
    } else if (!termless) {
      m.term = this.term;
    }
    this.messages.push(m);
  }
}
