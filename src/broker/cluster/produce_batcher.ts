/**
 * Merges the record sets produced to one partition group into fewer Raft
 * entries. Each entry costs the leader and every follower a WAL record, a
 * share of the AppendEntries traffic and an apply call, so a busy partition
 * gains from carrying many record sets per entry.
 *
 * The rule, per group: a record set goes out at once when no entry of its
 * group is in flight, so an idle partition never waits. Otherwise it waits
 * for the oldest in-flight entry to settle (commit and apply, or fail), and
 * everything that arrived meanwhile goes out as one entry. Waiting is
 * bounded: by `batchTimeoutMs` after the first waiting set arrived, and by
 * `maxBatchSize` sets or `maxBatchBytes` bytes, either of which sends the
 * waiting sets at once. Entries leave in arrival order and the leader
 * proposes them in that order, so the order of produce() calls is the
 * order of offsets.
 *
 * Imports nothing: what an entry looks like is the caller's `propose`.
 */
import { assert } from "../../util/mod.ts";

export interface ProduceBatcherOptions<T> {
  /** Most record sets in one entry; 1 turns merging off. */
  maxBatchSize: number;
  /**
   * Most record set bytes in one entry (framing not counted). A set larger
   * than this still goes out, alone.
   */
  maxBatchBytes: number;
  /**
   * Longest a record set waits for the in-flight entry of its group before
   * it goes out anyway; 0 never waits, which turns merging off.
   */
  batchTimeoutMs: number;
  /**
   * Proposes one entry made of `sets` to a group; resolves with one outcome
   * per set, in their order. A rejection fails every set of the entry.
   */
  propose(groupId: number, sets: readonly Uint8Array[]): Promise<readonly T[]>;
}

interface Waiting<T> {
  records: Uint8Array;
  resolve(outcome: T): void;
  reject(err: unknown): void;
}

/** One group's sets: exists while one is waiting or in flight. */
interface Lane<T> {
  /** Entries proposed and not yet settled. */
  inFlight: number;
  /** Sets for the next entry, oldest first. */
  waiting: Waiting<T>[];
  /** Sum of waiting[].records.length. */
  waitingBytes: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export class ProduceBatcher<T> {
  readonly #opts: ProduceBatcherOptions<T>;
  readonly #lanes = new Map<number, Lane<T>>();
  #closed = false;
  #entries = 0;
  #recordSets = 0;

  constructor(opts: ProduceBatcherOptions<T>) {
    assert(
      Number.isInteger(opts.maxBatchSize) && opts.maxBatchSize >= 1,
      "ProduceBatcher needs maxBatchSize >= 1",
      { maxBatchSize: opts.maxBatchSize },
    );
    assert(
      opts.maxBatchBytes >= 1 && opts.batchTimeoutMs >= 0,
      "ProduceBatcher needs maxBatchBytes >= 1 and batchTimeoutMs >= 0",
      { maxBatchBytes: opts.maxBatchBytes, batchTimeout: opts.batchTimeoutMs },
    );
    this.#opts = opts;
  }

  /** Entries proposed so far and the record sets they carried. */
  get stats(): { entries: number; recordSets: number } {
    return { entries: this.#entries, recordSets: this.#recordSets };
  }

  /**
   * Queues a record set for its group's next entry and resolves with its
   * own outcome. Whatever is synchronous happens before this returns: the
   * set is proposed now or placed behind every earlier set of its group.
   */
  produce(groupId: number, records: Uint8Array): Promise<T> {
    let lane = this.#lanes.get(groupId);
    if (lane === undefined) {
      lane = { inFlight: 0, waiting: [], waitingBytes: 0, timer: undefined };
      this.#lanes.set(groupId, lane);
    }
    const { maxBatchSize, maxBatchBytes, batchTimeoutMs } = this.#opts;
    if (lane.waitingBytes + records.length > maxBatchBytes) {
      // This set would overflow the waiting entry: that one leaves now.
      this.#send(groupId, lane);
    }
    const outcome = new Promise<T>((resolve, reject) => {
      lane.waiting.push({ records, resolve, reject });
    });
    lane.waitingBytes += records.length;
    if (
      lane.inFlight === 0 || batchTimeoutMs === 0 || this.#closed ||
      lane.waiting.length >= maxBatchSize || lane.waitingBytes >= maxBatchBytes
    ) {
      this.#send(groupId, lane);
    } else {
      lane.timer ??= setTimeout(() => {
        lane.timer = undefined;
        this.#send(groupId, lane);
      }, batchTimeoutMs);
    }
    return outcome;
  }

  /** Sends every waiting set now and stops waiting from then on. */
  close(): void {
    this.#closed = true;
    for (const [groupId, lane] of this.#lanes) this.#send(groupId, lane);
  }

  #send(groupId: number, lane: Lane<T>): void {
    clearTimeout(lane.timer);
    lane.timer = undefined;
    const batch = lane.waiting;
    if (batch.length === 0) return;
    lane.waiting = [];
    lane.waitingBytes = 0;
    lane.inFlight++;
    this.#entries++;
    this.#recordSets += batch.length;
    const fail = (err: unknown) => {
      for (const w of batch) w.reject(err);
    };
    let proposed: Promise<readonly T[]>;
    try {
      proposed = this.#opts.propose(groupId, batch.map((w) => w.records));
    } catch (err) {
      proposed = Promise.reject(err);
    }
    proposed.then((outcomes) => {
      // Not one outcome per set (an entry applied behind a gap has none):
      // fail every caller rather than leave one waiting forever.
      if (!Array.isArray(outcomes) || outcomes.length !== batch.length) {
        fail(
          new RangeError(
            `Entry of ${batch.length} record sets to group ${groupId} applied without one outcome per set`,
          ),
        );
        return;
      }
      for (const [i, w] of batch.entries()) w.resolve(outcomes[i]!);
    }, fail).finally(() => {
      lane.inFlight--;
      if (lane.waiting.length > 0) this.#send(groupId, lane);
      else if (lane.inFlight === 0) this.#lanes.delete(groupId);
    });
  }
}
