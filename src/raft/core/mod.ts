/**
 * The Raft consensus core: a pure, deterministic state machine per group in
 * the style of etcd raft. It is fed ticks, peer messages and proposals, and
 * answers with a Ready: what to persist, what to send, what committed, what to
 * apply. No I/O, no clock, no Math.random: randomness comes from the Rng in
 * RaftOptions.
 *
 * Seams: RaftStorage (what the core reads; MemoryStorage is the in-memory
 * one), Rng, RaftLogger. The host (src/raft/host) drives a RawNode and must
 * keep the order persist → send → apply → advance.
 *
 * Membership: every replica of a group starts from the same bootstrap
 * ConfState (MemoryStorage's constructor argument; a node joining later too),
 * and changes arrive as ConfChange entries that the application hands to
 * applyConfChange when it applies them. RaftStorage.initialState() must return
 * the ConfState as of the `applied` index given in RaftOptions (for
 * MemoryStorage: its snapshot's, with applied = the snapshot index).
 *
 * Imports nothing from src/ except src/util.
 */
export * from "./types.ts";
export {
  CompactedError,
  NotLeaderError,
  ProposalDroppedError,
  RaftConfigError,
  SnapshotOutOfDateError,
  UnavailableError,
} from "./errors.ts";
export {
  ConfChangeError,
  decodeConfChange,
  encodeConfChange,
} from "./conf_change.ts";
export { entrySizeBytes, MemoryStorage } from "./storage.ts";
export { newMessage } from "./raft.ts";
export { RawNode } from "./raw_node.ts";
