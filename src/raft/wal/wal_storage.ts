import {
  type ConfState,
  type Entry,
  entrySizeBytes,
  type HardState,
  MemoryStorage,
  type RaftStorage,
  type Snapshot,
} from "../core/mod.ts";
import type { PersistableReady, RecoveredGroup, Wal } from "./wal.ts";

/**
 * One group's RaftStorage on top of the shared WAL. Every entry since the
 * last snapshot stays in memory (no re-reads from segment files): the host
 * bounds memory by snapshotting and compacting a group once `inMemBytes`
 * passes its maxInMemLogBytes.
 */
export class WalStorage implements RaftStorage {
  readonly #wal: Wal;
  readonly #groupId: number;
  readonly #mem: MemoryStorage;
  /** Bytes of entries appended since the last compaction; overwritten suffixes count until then (errs high). */
  #inMemBytes = 0;

  /** `confState` is the membership of a new group; a recovered snapshot overrides it. */
  constructor(
    wal: Wal,
    groupId: number,
    options: { confState: ConfState; recovered?: RecoveredGroup },
  ) {
    this.#wal = wal;
    this.#groupId = groupId;
    const recovered = options.recovered;
    const snapshot = recovered?.snapshot ?? null;
    // A snapshot at index 0 only records the founding membership of the group.
    this.#mem = new MemoryStorage(
      snapshot?.meta.confState ?? options.confState,
    );
    if (recovered !== undefined) {
      if (snapshot !== null && snapshot.meta.index > 0) {
        this.#mem.applySnapshot(snapshot);
      }
      this.#mem.setHardState(recovered.hardState);
      this.#mem.append(recovered.entries);
      this.#inMemBytes = sumBytes(recovered.entries);
    }
  }

  get groupId(): number {
    return this.#groupId;
  }

  get inMemBytes(): number {
    return this.#inMemBytes;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.#mem.initialState();
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.#mem.entries(lo, hi, maxBytes);
  }

  term(index: number): number {
    return this.#mem.term(index);
  }

  firstIndex(): number {
    return this.#mem.firstIndex();
  }

  lastIndex(): number {
    return this.#mem.lastIndex();
  }

  snapshot(): Snapshot {
    return this.#mem.snapshot();
  }

  /**
   * Buffers a Ready's durable part in the WAL and makes it visible to the
   * core. Nothing may be sent on its behalf before the WAL's next sync().
   */
  persist(rd: PersistableReady): void {
    this.#wal.appendReady(this.#groupId, rd);
    if (rd.snapshot !== null) {
      this.#mem.applySnapshot(rd.snapshot);
      this.#inMemBytes = 0;
    }
    if (rd.entries.length > 0) {
      this.#mem.append(rd.entries);
      this.#inMemBytes += sumBytes(rd.entries);
    }
    if (rd.hardState !== null) this.#mem.setHardState(rd.hardState);
  }

  /**
   * Records the state machine's snapshot taken at applied `index` and drops
   * the entries it covers, in memory and (after later rolls) on disk.
   *
   * `retainEntries` of the covered entries (the newest ones) stay in memory
   * so that a follower slightly behind catches up from the log instead of
   * by a snapshot; only as many as keep the whole in-memory log within
   * `retainBytesMax`. They are not kept across a reopen: replay resumes
   * the log after the snapshot.
   */
  compact(
    index: number,
    options: {
      confState: ConfState;
      data: Uint8Array;
      retainEntries?: number;
      retainBytesMax?: number;
    },
  ): Snapshot {
    const snapshot = this.#mem.createSnapshot(index, options);
    const last = this.#mem.lastIndex();
    let bytes = last > index
      ? sumBytes(this.#mem.entries(index + 1, last + 1, Infinity))
      : 0;
    const floor = Math.max(
      this.#mem.firstIndex(),
      index - (options.retainEntries ?? 0) + 1,
    );
    const bytesMax = options.retainBytesMax ?? Infinity;
    let keepFrom = index + 1;
    while (keepFrom > floor) {
      const e = this.#mem.entries(keepFrom - 1, keepFrom, Infinity)[0]!;
      if (bytes + entrySizeBytes(e) > bytesMax) break;
      bytes += entrySizeBytes(e);
      keepFrom--;
    }
    if (keepFrom > this.#mem.firstIndex()) this.#mem.compact(keepFrom - 1);
    this.#wal.compact(this.#groupId, snapshot);
    this.#inMemBytes = bytes;
    return snapshot;
  }
}

function sumBytes(entries: readonly Entry[]): number {
  let total = 0;
  for (const e of entries) total += entrySizeBytes(e);
  return total;
}
