import { assert } from "../../util/mod.ts";
import {
  CompactedError,
  SnapshotOutOfDateError,
  UnavailableError,
} from "./errors.ts";
import type {
  ConfState,
  Entry,
  HardState,
  RaftStorage,
  Snapshot,
} from "./types.ts";
import { EntryType } from "./types.ts";

/** Approximate encoded size of an entry, used for the maxBytes bounds. */
export function entrySizeBytes(entry: Entry): number {
  // A fixed allowance for index, term and type keeps empty entries from being free.
  return entry.data.byteLength + 16;
}

/**
 * entries[lo, hi), cut to the longest prefix within maxBytes but never less
 * than one entry: sized before copying, so a long range is not copied whole.
 */
export function sliceWithin(
  entries: readonly Entry[],
  lo: number,
  hi: number,
  maxBytes: number,
): Entry[] {
  if (maxBytes === Number.POSITIVE_INFINITY) return entries.slice(lo, hi);
  let sizeBytes = 0;
  for (let i = lo; i < hi; i++) {
    sizeBytes += entrySizeBytes(entries[i]!);
    if (i > lo && sizeBytes > maxBytes) return entries.slice(lo, i);
  }
  return entries.slice(lo, hi);
}

function cloneConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}

/**
 * RaftStorage in memory: the reference implementation, used by tests and the
 * simulator. The application appends each Ready's entries, sets its hard
 * state and applies its snapshot; compaction is the application's call.
 */
export class MemoryStorage implements RaftStorage {
  #hardState: HardState = { term: 0, vote: 0, commit: 0 };
  #snapshot: Snapshot;
  /** #entries[0] is a dummy holding the snapshot's index and term. */
  #entries: Entry[];

  /** `confState` is the initial membership of a new group. */
  constructor(confState: ConfState = { voters: [], learners: [] }) {
    this.#snapshot = {
      meta: { index: 0, term: 0, confState: cloneConfState(confState) },
      data: new Uint8Array(0),
    };
    this.#entries = [dummyEntry(0, 0)];
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return {
      hardState: { ...this.#hardState },
      confState: cloneConfState(this.#snapshot.meta.confState),
    };
  }

  #offset(): number {
    return this.#entries[0]!.index;
  }

  firstIndex(): number {
    return this.#offset() + 1;
  }

  lastIndex(): number {
    return this.#offset() + this.#entries.length - 1;
  }

  term(index: number): number {
    const offset = this.#offset();
    if (index < offset) throw new CompactedError(index, offset + 1);
    const entry = this.#entries[index - offset];
    if (entry === undefined) {
      throw new UnavailableError(index, this.lastIndex());
    }
    return entry.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.#offset();
    if (lo <= offset) throw new CompactedError(lo, offset + 1);
    if (hi > this.lastIndex() + 1) {
      throw new UnavailableError(hi - 1, this.lastIndex());
    }
    return sliceWithin(this.#entries, lo - offset, hi - offset, maxBytes);
  }

  snapshot(): Snapshot {
    return this.#snapshot;
  }

  setHardState(hardState: HardState): void {
    this.#hardState = { ...hardState };
  }

  /** Appends entries, replacing any stored entries they conflict with. */
  append(entries: Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const firstIndex = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    // Entries already folded into the snapshot need not be kept.
    if (last < firstIndex) return;
    const fresh = first.index < firstIndex
      ? entries.slice(firstIndex - first.index)
      : entries;
    const at = fresh[0]!.index - this.#offset();
    assert(at <= this.#entries.length, "MemoryStorage.append leaves a gap", {
      firstNew: fresh[0]!.index,
      lastIndex: this.lastIndex(),
    });
    // In place: copying the whole log per append made it quadratic.
    const log = this.#entries;
    log.length = at;
    for (const e of fresh) log.push(e);
  }

  /** Replaces the whole log by a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    const current = this.#snapshot.meta.index;
    if (snapshot.meta.index <= current) {
      throw new SnapshotOutOfDateError(snapshot.meta.index, current);
    }
    this.#snapshot = snapshot;
    this.#entries = [dummyEntry(snapshot.meta.index, snapshot.meta.term)];
  }

  /** Records the application's snapshot at `index` (already applied there). */
  createSnapshot(
    index: number,
    options: { confState: ConfState; data: Uint8Array },
  ): Snapshot {
    const current = this.#snapshot.meta.index;
    if (index <= current) throw new SnapshotOutOfDateError(index, current);
    assert(index <= this.lastIndex(), "snapshot past the last index", {
      index,
      lastIndex: this.lastIndex(),
    });
    this.#snapshot = {
      meta: {
        index,
        term: this.term(index),
        confState: cloneConfState(options.confState),
      },
      data: options.data,
    };
    return this.#snapshot;
  }

  /** Drops entries up to and including `index`; later reads below it throw CompactedError. */
  compact(index: number): void {
    const offset = this.#offset();
    if (index <= offset) throw new CompactedError(index, offset + 1);
    assert(index <= this.lastIndex(), "compact past the last index", {
      index,
      lastIndex: this.lastIndex(),
    });
    const kept = this.#entries.slice(index - offset);
    kept[0] = dummyEntry(index, kept[0]!.term);
    this.#entries = kept;
  }

  /** An independent copy (the simulator keeps one as its "durable disk"). */
  clone(): MemoryStorage {
    const copy = new MemoryStorage();
    copy.#hardState = { ...this.#hardState };
    copy.#snapshot = this.#snapshot;
    copy.#entries = [...this.#entries];
    return copy;
  }
}

function dummyEntry(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(0) };
}
