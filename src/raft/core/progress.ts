import { assert } from "../../util/mod.ts";
import type { NodeId, ProgressStateName } from "./types.ts";

/**
 * Last indices of App messages sent to one follower and not yet acknowledged,
 * oldest first; bounded so that a slow follower gets at most `capacity`.
 */
export class Inflights {
  readonly #capacity: number;
  #lastIndices: number[] = [];

  constructor(capacity: number) {
    assert(capacity > 0, "inflight capacity must be positive", { capacity });
    this.#capacity = capacity;
  }

  add(lastIndex: number): void {
    assert(!this.full(), "inflights overflow", { capacity: this.#capacity });
    const newest = this.#lastIndices[this.#lastIndices.length - 1];
    assert(newest === undefined || lastIndex > newest, "inflights not rising", {
      lastIndex,
      newest,
    });
    this.#lastIndices.push(lastIndex);
  }

  /** Frees every message whose last index is ≤ `index` (acknowledged). */
  freeTo(index: number): void {
    let n = 0;
    while (n < this.#lastIndices.length && this.#lastIndices[n]! <= index) n++;
    if (n > 0) this.#lastIndices = this.#lastIndices.slice(n);
  }

  /** A heartbeat answer proves the follower alive: let one more message out. */
  freeFirst(): void {
    this.#lastIndices = this.#lastIndices.slice(1);
  }

  full(): boolean {
    return this.#lastIndices.length >= this.#capacity;
  }

  reset(): void {
    this.#lastIndices = [];
  }
}

/**
 * The leader's view of one peer (thesis §3.5, etcd's tracker): in `probe` it
 * sends one App at a time until it finds where the logs agree; in
 * `replicate` it streams optimistically up to the inflight bound; in
 * `snapshot` it waits for a snapshot to land.
 *
 * Invariant: match < next.
 */
export class Progress {
  match = 0;
  next: number;
  state: ProgressStateName = "probe";
  /** In `snapshot`: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** An App went out since the last heartbeat round: it did a heartbeat's job. */
  appendSent = false;
  /** In `probe`: an App is out and unanswered, so wait (a heartbeat answer clears it). */
  probeSent = false;
  isLearner: boolean;
  readonly inflights: Inflights;

  constructor(
    next: number,
    options: { maxInflightMsgs: number; isLearner: boolean },
  ) {
    this.next = next;
    this.isLearner = options.isLearner;
    this.inflights = new Inflights(options.maxInflightMsgs);
  }

  #resetState(state: ProgressStateName): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, the follower holds at least the snapshot.
    const floor = this.state === "snapshot" ? this.pendingSnapshot : 0;
    this.#resetState("probe");
    this.next = Math.max(this.match + 1, floor + 1);
  }

  becomeReplicate(): void {
    this.#resetState("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.#resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /** The follower acknowledged up to `index`; returns whether match moved. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    this.#assertInvariant();
    return updated;
  }

  /** In `replicate`: entries up to `lastIndex` are on their way. */
  sentEntries(lastIndex: number): void {
    if (this.state === "replicate") {
      this.next = lastIndex + 1;
      this.inflights.add(lastIndex);
    } else {
      this.probeSent = true;
    }
    this.#assertInvariant();
  }

  /**
   * The follower rejected App at `rejected`; `hint` is where the logs may
   * agree. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1);
    this.probeSent = false;
    this.#assertInvariant();
    return true;
  }

  #assertInvariant(): void {
    assert(this.match < this.next, "progress match must stay below next", {
      match: this.match,
      next: this.next,
    });
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }
}

/** Smallest majority of `voterCount` voters. */
export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/** The highest index that a quorum of `voters` has (their match indices). */
export function committedIndex(
  voters: readonly NodeId[],
  matchOf: (id: NodeId) => number,
): number {
  if (voters.length === 0) return 0;
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  return matches[quorumSize(voters.length) - 1]!;
}

export type VoteResult = "won" | "lost" | "pending";

/** Tallies granted/rejected votes among `voters`. */
export function voteResult(
  voters: readonly NodeId[],
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const q = quorumSize(voters.length);
  if (granted >= q) return "won";
  if (voters.length - rejected < q) return "lost";
  return "pending";
}
