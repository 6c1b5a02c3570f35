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
