import type { NodeId } from "./types.ts";

/** Storage: the requested index was compacted into a snapshot. */
export class CompactedError extends RangeError {
  override name = "CompactedError";
  constructor(index: number, firstIndex: number) {
    super(
      `Cannot read index ${index}: compacted, first available is ${firstIndex}`,
    );
  }
}

/** Storage: the requested index is past the last one stored. */
export class UnavailableError extends RangeError {
  override name = "UnavailableError";
  constructor(index: number, lastIndex: number) {
    super(`Cannot read index ${index}: unavailable, last is ${lastIndex}`);
  }
}

/** Storage: a snapshot older than the one held was offered. */
export class SnapshotOutOfDateError extends RangeError {
  override name = "SnapshotOutOfDateError";
  constructor(index: number, currentIndex: number) {
    super(
      `Cannot use snapshot at index ${index}: out of date, storage holds ${currentIndex}`,
    );
  }
}

/** A proposal (or read, or transfer) was not accepted; retrying may help. */
export class ProposalDroppedError extends Error {
  override name = "ProposalDroppedError";
  /** The leader as this node knows it; 0 = unknown. */
  readonly leaderHint: NodeId;
  constructor(message: string, options: { leaderHint: NodeId }) {
    super(message);
    this.leaderHint = options.leaderHint;
  }
}

/** Only the leader accepts this; `leaderHint` says where to go (0 = unknown). */
export class NotLeaderError extends ProposalDroppedError {
  override name = "NotLeaderError";
  constructor(action: string, options: { leaderHint: NodeId }) {
    super(
      `Cannot ${action}: not the leader, leader hint is ${options.leaderHint}`,
      options,
    );
  }
}

/** Bad RaftOptions or a malformed request from the caller. */
export class RaftConfigError extends TypeError {
  override name = "RaftConfigError";
}
