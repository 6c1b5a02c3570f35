import { assert } from "../../util/mod.ts";
import { CompactedError, UnavailableError } from "./errors.ts";
import { entrySizeBytes, sliceWithin } from "./storage.ts";
import type { Entry, RaftStorage, Snapshot } from "./types.ts";

/**
 * The Raft log as the core sees it: the stable part in storage followed by the
 * unstable part (entries and maybe a snapshot not yet persisted).
 *
 * Invariants: applied ≤ applying ≤ committed ≤ lastIndex.
 */
export class RaftLog {
  readonly #storage: RaftStorage;
  /** Not yet persisted: a snapshot, then entries from #unstableOffset on. */
  #unstableSnapshot: Snapshot | null = null;
  #unstableEntries: Entry[] = [];
  #unstableOffset: number;
  /**
   * Highest index known to be on this node's disk: stable entries may still
   * be waiting for a background sync (see RawNode.advance).
   */
  #durableIndex: number;
  /** Highest index known to be on a quorum. */
  committed: number;
  /** Highest index handed out for applying (in a Ready not yet advanced). */
  applying: number;
  /** Highest index the application reported applied. */
  applied: number;

  constructor(storage: RaftStorage, options: { applied: number }) {
    this.#storage = storage;
    this.#unstableOffset = storage.lastIndex() + 1;
    this.#durableIndex = storage.lastIndex();
    const committed = storage.initialState().hardState.commit;
    const floor = storage.firstIndex() - 1;
    this.committed = Math.max(committed, floor);
    this.applied = Math.max(options.applied, floor);
    this.applying = this.applied;
    assert(this.applied <= this.committed, "applied beyond committed", {
      applied: this.applied,
      committed: this.committed,
    });
    assert(this.committed <= this.lastIndex(), "committed beyond last index", {
      committed: this.committed,
      lastIndex: this.lastIndex(),
    });
  }

  firstIndex(): number {
    if (this.#unstableSnapshot !== null) {
      return this.#unstableSnapshot.meta.index + 1;
    }
    return this.#storage.firstIndex();
  }

  lastIndex(): number {
    if (this.#unstableEntries.length > 0) {
      return this.#unstableOffset + this.#unstableEntries.length - 1;
    }
    if (this.#unstableSnapshot !== null) {
      return this.#unstableSnapshot.meta.index;
    }
    return this.#storage.lastIndex();
  }

  /** Throws CompactedError / UnavailableError outside [firstIndex-1, lastIndex]. */
  term(index: number): number {
    const t = this.termOrZero(index);
    if (t !== 0 || index === 0) return t;
    const first = this.firstIndex();
    if (index < first - 1) throw new CompactedError(index, first);
    throw new UnavailableError(index, this.lastIndex());
  }

  /**
   * term(index), or 0 when the index is compacted or not there. Hot on
   * every append: it answers out-of-range indices without throwing.
   */
  termOrZero(index: number): number {
    const snap = this.#unstableSnapshot;
    if (snap !== null && index === snap.meta.index) return snap.meta.term;
    if (index >= this.#unstableOffset) {
      return this.#unstableEntries[index - this.#unstableOffset]?.term ?? 0;
    }
    const first = this.firstIndex();
    if (index < first - 1 || index > this.lastIndex()) return 0;
    return this.#storage.term(index);
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  matchTerm(index: number, term: number): boolean {
    return this.termOrZero(index) === term && (term > 0 || index === 0);
  }

  /** §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm ||
      (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Follower side of App: if our log has (index, logTerm), merge `entries`
   * after it and return the index of the last new entry; otherwise null.
   */
  maybeAppend(
    prev: { index: number; logTerm: number },
    options: { commit: number; entries: Entry[] },
  ): number | null {
    if (!this.matchTerm(prev.index, prev.logTerm)) return null;
    const lastNew = prev.index + options.entries.length;
    const conflict = this.#findConflict(options.entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, "conflict with a committed entry", {
        conflict,
        committed: this.committed,
      });
      this.append(options.entries.slice(conflict - prev.index - 1));
    }
    this.commitTo(Math.min(options.commit, lastNew));
    return lastNew;
  }

  /** Index of the first entry that is new or whose term differs from ours; 0 if none. */
  #findConflict(entries: Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The largest index ≤ `index` whose term is ≤ `term`: where a log that has
   * `term` at `index` can first agree with ours (fast backtracking).
   */
  findConflictByTerm(index: number, term: number): number {
    let i = index;
    while (i > 0) {
      const t = this.termOrZero(i);
      if (t === 0 || t <= term) break;
      i--;
    }
    return i;
  }

  append(entries: Entry[]): number {
    const first = entries[0];
    if (first === undefined) return this.lastIndex();
    assert(first.index > this.committed, "append below committed", {
      firstIndex: first.index,
      committed: this.committed,
    });
    // Entries replaced from here on are not the ones that were made durable.
    this.#durableIndex = Math.min(this.#durableIndex, first.index - 1);
    const last = this.#unstableOffset + this.#unstableEntries.length;
    if (first.index === last) {
      // In place: one proposal at a time must not copy the unstable tail each time.
      for (const e of entries) this.#unstableEntries.push(e);
    } else if (first.index <= this.#unstableOffset) {
      // Replaces stored entries too; storage.append truncates them on persist.
      this.#unstableOffset = first.index;
      this.#unstableEntries = [...entries];
    } else {
      this.#unstableEntries = this.#unstableEntries
        .slice(0, first.index - this.#unstableOffset)
        .concat(entries);
    }
    return this.lastIndex();
  }

  /** Entries in [lo, hi) within maxBytes (at least one). */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    const last = this.lastIndex();
    if (hi > last + 1) throw new UnavailableError(hi - 1, last);
    const offset = this.#unstableOffset;
    if (lo >= offset) {
      return sliceWithin(
        this.#unstableEntries,
        lo - offset,
        hi - offset,
        maxBytes,
      );
    }
    const out = this.#storage.entries(lo, Math.min(hi, offset), maxBytes);
    // Storage stopped early on the size bound: the unstable part must wait.
    if (hi <= offset || out.length < offset - lo) return out;
    let sizeBytes = 0;
    for (const e of out) sizeBytes += entrySizeBytes(e);
    for (let i = 0; i < hi - offset; i++) {
      const e = this.#unstableEntries[i]!;
      sizeBytes += entrySizeBytes(e);
      if (sizeBytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** Entries from `index` to the end, within maxBytes. */
  entriesFrom(index: number, maxBytes: number): Entry[] {
    return this.slice(index, this.lastIndex() + 1, maxBytes);
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), "commit beyond last index", {
      index,
      lastIndex: this.lastIndex(),
    });
    this.committed = index;
  }

  /** Leader commit rule (§5.4.2): only an entry of the current term commits by counting. */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.termOrZero(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  hasNextCommitted(): boolean {
    return this.committed > Math.max(this.applying, this.firstIndex() - 1);
  }

  /** The committed entries not yet handed out for applying. */
  nextCommitted(): Entry[] {
    const lo = Math.max(this.applying + 1, this.firstIndex());
    if (lo > this.committed) return [];
    return this.slice(lo, this.committed + 1, Number.POSITIVE_INFINITY);
  }

  acceptApplying(index: number): void {
    assert(index <= this.committed, "applying beyond committed", {
      index,
      committed: this.committed,
    });
    this.applying = Math.max(this.applying, index);
  }

  appliedTo(index: number): void {
    if (index <= this.applied) return;
    assert(index <= this.applying, "applied beyond applying", {
      index,
      applying: this.applying,
    });
    this.applied = index;
  }

  /**
   * The last index of the durable log: what storage held when the last
   * advance() ran (entries written since are still unstable here), less
   * what still waits for its sync. 0 while a snapshot that replaces the
   * log is not yet stored.
   */
  persistedIndex(): number {
    return this.#unstableSnapshot === null
      ? Math.min(this.#unstableOffset - 1, this.#durableIndex)
      : 0;
  }

  /** Entries up to (index, term) are on this node's disk. */
  durableTo(index: number, term: number): void {
    // A newer leader may have replaced the entry since it was written.
    if (this.termOrZero(index) !== term) return;
    this.#durableIndex = Math.max(this.#durableIndex, index);
  }

  unstableEntries(): Entry[] {
    return this.#unstableEntries;
  }

  unstableSnapshot(): Snapshot | null {
    return this.#unstableSnapshot;
  }

  /** Entries up to (index, term) are now in storage. */
  stableTo(index: number, term: number): void {
    if (index < this.#unstableOffset) return;
    const entry = this.#unstableEntries[index - this.#unstableOffset];
    // A newer leader may have replaced the entry since the Ready was taken.
    if (entry === undefined || entry.term !== term) return;
    this.#unstableEntries = this.#unstableEntries.slice(
      index + 1 - this.#unstableOffset,
    );
    this.#unstableOffset = index + 1;
  }

  stableSnapshotTo(index: number): void {
    if (this.#unstableSnapshot?.meta.index === index) {
      this.#unstableSnapshot = null;
    }
  }

  snapshot(): Snapshot {
    return this.#unstableSnapshot ?? this.#storage.snapshot();
  }

  /** Replaces the whole log by a snapshot (follower receiving MsgSnap). */
  restore(snapshot: Snapshot): void {
    this.committed = snapshot.meta.index;
    this.applying = Math.max(this.applying, snapshot.meta.index);
    this.#unstableOffset = snapshot.meta.index + 1;
    this.#unstableEntries = [];
    this.#unstableSnapshot = snapshot;
    this.#durableIndex = Math.min(this.#durableIndex, snapshot.meta.index);
  }
}
