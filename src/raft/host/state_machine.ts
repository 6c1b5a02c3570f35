import type { Entry, NodeId } from "../core/mod.ts";

/**
 * What the broker implements per group. Called from the host's loop, one
 * group at a time, in log order; every replica sees the same calls.
 */
export interface StateMachine {
  /**
   * Applies committed entries (normal entries with data; no-ops and
   * membership changes are handled by the host). May return one result per
   * entry, handed to the propose() caller of that entry.
   */
  apply(entries: Entry[]): void | unknown[];
  /** Serialises the state at the last applied entry (the host compacts the log behind it). */
  snapshot(): Uint8Array;
  /**
   * A snapshot of an earlier state that is already durable, at an index
   * above `after`, or null when there is none yet: the state machine then
   * starts making its present state durable, off the loop, and the host
   * asks again later. With it the host need not call snapshot(), whose
   * state may first have to reach the disk while the loop waits. Absent
   * means the host always calls snapshot().
   */
  durableSnapshot?(after: number): { index: number; data: Uint8Array } | null;
  /**
   * False while a snapshot would claim more than the state holds (data it
   * names is still being copied in): the host then keeps the log and asks
   * again later. Absent means always ready.
   */
  snapshotReady?(): boolean;
  /** Replaces the state by a snapshot (from this host's WAL or from the leader). */
  restore(data: Uint8Array): void;
}

/** Raised through onLeaderChange whenever a group's known leader changes. */
export interface LeaderChange {
  groupId: number;
  /** 0 = no leader known. */
  leader: NodeId;
  term: number;
}
