/**
 * The data contract of the Raft core: what it reads from storage, what it is
 * fed (messages, options) and what it hands back (Ready). Shared with the WAL,
 * transport and host, so fields may be added but never renamed.
 */

/** A replica's id inside a group: a positive integer; 0 means "none". */
export type NodeId = number;

export const EntryType = { Normal: 0, ConfChange: 1 } as const;
export type EntryTypeValue = typeof EntryType[keyof typeof EntryType];

export interface Entry {
  term: number;
  index: number;
  type: EntryTypeValue;
  data: Uint8Array;
}

/** What must survive a crash besides the log: current term, vote, commit. */
export interface HardState {
  term: number;
  /** 0 = no vote in this term. */
  vote: NodeId;
  commit: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMeta {
  index: number;
  term: number;
  confState: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

/**
 * Message kinds. Types 1..MAX_WIRE_MESSAGE_TYPE travel on the wire; the rest
 * are local-only: Prop and TransferLeader are made by RawNode's methods,
 * SnapStatus and Unreachable are reports the host feeds to step().
 */
export const MessageType = {
  App: 1,
  AppResp: 2,
  Vote: 3,
  VoteResp: 4,
  PreVote: 5,
  PreVoteResp: 6,
  Heartbeat: 7,
  HeartbeatResp: 8,
  Snap: 9,
  TimeoutNow: 10,
  ReadIndex: 11,
  ReadIndexResp: 12,
  /** Local: a proposal (RawNode.propose). */
  Prop: 13,
  /** Local: RawNode.transferLeadership; `from` is the transferee. */
  TransferLeader: 14,
  /** Local: the host reports whether sending a snapshot to `from` worked (reject = failed). */
  SnapStatus: 15,
  /** Local: the host reports that `from` could not be reached. */
  Unreachable: 16,
} as const;
export type MessageTypeValue = typeof MessageType[keyof typeof MessageType];

/** Highest message type that may appear on the wire. */
export const MAX_WIRE_MESSAGE_TYPE = 12;

export interface Message {
  type: number;
  from: NodeId;
  to: NodeId;
  term: number;
  /** App: term of the entry at `index` (the entry before `entries`). */
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** AppResp reject: the follower's hint index for fast backtracking. */
  rejectHint: number;
  snapshot: Snapshot | null;
  /** ReadIndex / Heartbeat context. */
  context: Uint8Array | null;
}

/** One membership change. Promoting a learner is `addVoter` of that learner. */
export interface ConfChange {
  type: "addVoter" | "removeVoter" | "addLearner";
  nodeId: NodeId;
}

/** A linearizable read: safe to serve once applied ≥ index. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

export type Role = "follower" | "candidate" | "precandidate" | "leader";

/** Volatile state; reported in Ready only when it changed. */
export interface SoftState {
  /** 0 = unknown. */
  leader: NodeId;
  role: Role;
}

/**
 * Everything the host must do, in this order: persist hardState, entries and
 * snapshot (fsync when mustSync) → send messages → apply committedEntries →
 * advance(ready). earlyMessages may be sent as soon as the Ready is taken,
 * before or while it is persisted.
 */
export interface Ready {
  softState: SoftState | null;
  hardState: HardState | null;
  readStates: ReadState[];
  entries: Entry[];
  snapshot: Snapshot | null;
  committedEntries: Entry[];
  /** A leader's appends: free to leave before this Ready is durable (the leader counts itself only after advance()). */
  earlyMessages: Message[];
  /** Only once this Ready is durable. */
  messages: Message[];
  mustSync: boolean;
}

/** What the core reads; the application writes it after persisting each Ready. */
export interface RaftStorage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at least one if any, at most maxBytes beyond the first. Throws CompactedError / UnavailableError. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Throws CompactedError / UnavailableError. term(firstIndex()-1) is the snapshot's term. */
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

/** A seeded, deterministic source of randomness. */
export interface Rng {
  /** An integer in [0, bound). */
  nextInt(bound: number): number;
}

export interface RaftLogger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

export interface RaftOptions {
  id: NodeId;
  /** A follower that hears no leader for a random time in [electionTicks, 2·electionTicks) campaigns. */
  electionTicks: number;
  heartbeatTicks: number;
  checkQuorum: boolean;
  preVote: boolean;
  /** Bound on the entry bytes of one App message. */
  maxSizePerMsg: number;
  /** Bound on unacknowledged App messages per follower in replicate state. */
  maxInflightMsgs: number;
  /** Index already applied by the application before this restart. */
  applied?: number;
  /**
   * Ticks added to this node's first election timeout [0]. A restarted
   * member passes electionTicks, so that the members that stayed up, whose
   * connections clients still hold, win the election its return allows.
   */
  firstElectionDelayTicks?: number;
  rng: Rng;
  logger?: RaftLogger;
  /**
   * TEST ONLY. Switches on a deliberately wrong rule so that the simulator's
   * checkers can be shown to catch it. Never set in production.
   */
  unsafeTestingFaults?: UnsafeTestingFaults;
}

/** TEST ONLY: deliberately wrong rules, each breaking Raft safety. */
export interface UnsafeTestingFaults {
  /** Commit entries of earlier terms by counting replicas (Raft paper figure 8). */
  commitPreviousTerm?: boolean;
  /** Grant votes without checking that the candidate's log is up to date (§5.4.1). */
  skipVoteLogCheck?: boolean;
}

export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  lastIndex: number;
  confState: ConfState;
  /** Leader only: the match index of each peer. */
  progress:
    | Map<NodeId, { match: number; next: number; state: ProgressStateName }>
    | null;
}

export type ProgressStateName = "probe" | "replicate" | "snapshot";
