/**
 * Per-partition state of idempotent producers: for each producer id, its
 * epoch and the last few batches it wrote. The partition consults it before
 * an append, so that a producer retrying a batch whose answer was lost gets
 * the original offsets back instead of a second copy (KIP-98). The decision
 * depends only on the log's content, so every replica that applies the same
 * entries makes the same one.
 */
import {
  type BatchHeader,
  isControlBatch,
  TRANSACTIONAL_BIT,
} from "../../protocol/mod.ts";
import type { TxnResult } from "../transactions/txn_metadata.ts";

/** Kafka keeps the last five batches per producer (max.in.flight = 5). */
export const RETAINED_BATCHES = 5;
/** Sequence numbers wrap from Int32 max to 0 (KIP-98). */
const SEQUENCE_MAX = 0x7fffffff;
const NO_PRODUCER_ID = -1n;

/** Kafka error codes answered for a refused batch. */
export const ProducerErrorCode = {
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  INVALID_PRODUCER_EPOCH: 47,
  TRANSACTION_COORDINATOR_FENCED: 52,
} as const;

interface BatchEntry {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly baseOffset: bigint;
  readonly lastOffset: bigint;
}

interface ProducerEntry {
  epoch: number;
  /** Oldest first; at most RETAINED_BATCHES. */
  batches: BatchEntry[];
  /** The max timestamp of the newest batch, which DescribeProducers reports. */
  lastTimestamp: bigint;
}

/** One idempotent producer as DescribeProducers lists it. */
export interface ProducerSummary {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  /** The sequence of the producer's last record in this partition. */
  readonly lastSequence: number;
  readonly lastTimestamp: bigint;
}

/** An aborted transaction's span in this partition, as Fetch lists it. */
export interface AbortedTxn {
  readonly producerId: bigint;
  readonly firstOffset: bigint;
  /** The offset of its abort marker. */
  readonly lastOffset: bigint;
}

export type SequenceCheck =
  | { kind: "append" }
  | { kind: "duplicate"; baseOffset: bigint; lastOffset: bigint }
  | { kind: "refused"; errorCode: number; message: string };

export class ProducerSequenceError extends Error {
  override name = "ProducerSequenceError";
  constructor(readonly errorCode: number, message: string) {
    super(message);
  }
}

function lastSequence(h: BatchHeader): number {
  return (h.baseSequence + h.lastOffsetDelta) % (SEQUENCE_MAX + 1);
}

function nextSequence(seq: number): number {
  return seq === SEQUENCE_MAX ? 0 : seq + 1;
}

export function isIdempotent(h: BatchHeader): boolean {
  return h.producerId !== NO_PRODUCER_ID && h.baseSequence >= 0;
}

export class ProducerStateTable {
  readonly #producers = new Map<bigint, ProducerEntry>();
  /** Producer id → offset of the first batch of its open transaction. */
  readonly #open = new Map<bigint, bigint>();
  /** Aborted transactions, in the order of their markers. */
  readonly #aborted: AbortedTxn[] = [];
  /** Producer id → the newest coordinator epoch of its markers here. */
  readonly #coordinatorEpochs = new Map<bigint, number>();

  get size(): number {
    return this.#producers.size;
  }

  /** Every producer with state here, by producer id. */
  producers(): ProducerSummary[] {
    return [...this.#producers].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
      .flatMap(([producerId, entry]) => {
        const newest = entry.batches.at(-1);
        return newest === undefined ? [] : [{
          producerId,
          producerEpoch: entry.epoch,
          lastSequence: newest.lastSeq,
          lastTimestamp: entry.lastTimestamp,
        }];
      });
  }

  /** Forgets every producer (the log they were rebuilt from was cut). */
  clear(): void {
    this.#producers.clear();
    this.#open.clear();
    this.#aborted.length = 0;
    this.#coordinatorEpochs.clear();
  }

  /**
   * Forgets the aborted transactions that ended before `offset`, the new
   * log start: no fetch can ask for their records any more.
   */
  trimBefore(offset: bigint): void {
    const kept = this.#aborted.findIndex((a) => a.lastOffset >= offset);
    this.#aborted.splice(0, kept === -1 ? this.#aborted.length : kept);
  }

  /**
   * Refuses a marker from a coordinator older than one that has already
   * marked this producer's transactions here: a deposed coordinator's late
   * marker could otherwise end the transaction its successor has open
   * (Kafka's TRANSACTION_COORDINATOR_FENCED).
   */
  checkMarker(
    h: BatchHeader,
    coordinatorEpoch: number,
  ): SequenceCheck {
    const newest = this.#coordinatorEpochs.get(h.producerId);
    if (newest === undefined || coordinatorEpoch >= newest) {
      return { kind: "append" };
    }
    return {
      kind: "refused",
      errorCode: ProducerErrorCode.TRANSACTION_COORDINATOR_FENCED,
      message:
        `Marker of producer ${h.producerId} from coordinator epoch ${coordinatorEpoch}, older than ${newest}`,
    };
  }

  /** Where the oldest open transaction begins; null if none is open. */
  firstUnstableOffset(): bigint | null {
    let first: bigint | null = null;
    for (const offset of this.#open.values()) {
      if (first === null || offset < first) first = offset;
    }
    return first;
  }

  /**
   * The aborted transactions with records in [from, to), which a
   * read_committed consumer of that range must drop (KIP-98).
   */
  abortedIn(from: bigint, to: bigint): AbortedTxn[] {
    return this.#aborted.filter((a) =>
      a.lastOffset >= from && a.firstOffset < to
    );
  }

  /**
   * Decides what to do with one batch. A producer this partition has no
   * state for is accepted at any sequence: its state may have been lost to
   * retention, and refusing it would be the spurious fatal error that
   * KAFKA-COMPAT.md item 9 warns about.
   */
  check(h: BatchHeader): SequenceCheck {
    if (!isIdempotent(h)) return { kind: "append" };
    const entry = this.#producers.get(h.producerId);
    if (entry === undefined) return { kind: "append" };
    if (h.producerEpoch < entry.epoch) {
      return {
        kind: "refused",
        errorCode: ProducerErrorCode.INVALID_PRODUCER_EPOCH,
        message:
          `Producer ${h.producerId} epoch ${h.producerEpoch} is older than the current epoch ${entry.epoch}`,
      };
    }
    if (h.producerEpoch > entry.epoch) {
      if (h.baseSequence === 0) return { kind: "append" };
      return {
        kind: "refused",
        errorCode: ProducerErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
        message:
          `Producer ${h.producerId} started epoch ${h.producerEpoch} at sequence ${h.baseSequence}, not 0`,
      };
    }
    const last = lastSequence(h);
    const same = entry.batches.find((b) =>
      b.firstSeq === h.baseSequence && b.lastSeq === last
    );
    if (same !== undefined) {
      return {
        kind: "duplicate",
        baseOffset: same.baseOffset,
        lastOffset: same.lastOffset,
      };
    }
    const newest = entry.batches.at(-1);
    const expected = newest === undefined ? 0 : nextSequence(newest.lastSeq);
    if (h.baseSequence !== expected) {
      return {
        kind: "refused",
        errorCode: ProducerErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
        message:
          `Producer ${h.producerId} sent sequence ${h.baseSequence} where ${expected} was expected`,
      };
    }
    return { kind: "append" };
  }

  /** Records a batch that is now in the log at `baseOffset`. */
  record(h: BatchHeader, baseOffset: bigint): void {
    // Markers carry their outcome in their record: see recordMarker.
    if (isControlBatch(h.attributes)) return;
    if (
      (h.attributes & TRANSACTIONAL_BIT) !== 0 && !this.#open.has(h.producerId)
    ) {
      this.#open.set(h.producerId, baseOffset);
    }
    if (!isIdempotent(h)) return;
    let entry = this.#producers.get(h.producerId);
    if (entry === undefined || h.producerEpoch > entry.epoch) {
      entry = { epoch: h.producerEpoch, batches: [], lastTimestamp: -1n };
      this.#producers.set(h.producerId, entry);
    }
    entry.lastTimestamp = h.maxTimestamp;
    entry.batches.push({
      firstSeq: h.baseSequence,
      lastSeq: lastSequence(h),
      baseOffset,
      lastOffset: baseOffset + BigInt(h.lastOffsetDelta),
    });
    if (entry.batches.length > RETAINED_BATCHES) entry.batches.shift();
  }

  /**
   * Records a transaction marker now in the log at `offset`: the
   * producer's transaction here is over, and listed if aborted.
   *
   * A marker also carries the epoch its coordinator fenced the producer
   * with; from then on this partition refuses the older epoch, so a zombie
   * that had joined the transaction cannot write past its abort (KIP-98).
   * Producers unknown here stay unknown: with no sequence to go on, their
   * next batch is taken as it comes.
   */
  recordMarker(
    h: BatchHeader,
    marker: { offset: bigint; result: TxnResult; coordinatorEpoch: number },
  ): void {
    const newest = this.#coordinatorEpochs.get(h.producerId) ?? -1;
    if (marker.coordinatorEpoch > newest) {
      this.#coordinatorEpochs.set(h.producerId, marker.coordinatorEpoch);
    }
    const first = this.#open.get(h.producerId);
    this.#open.delete(h.producerId);
    if (marker.result === "abort" && first !== undefined) {
      this.#aborted.push({
        producerId: h.producerId,
        firstOffset: first,
        lastOffset: marker.offset,
      });
    }
    const entry = this.#producers.get(h.producerId);
    if (entry === undefined || h.producerEpoch <= entry.epoch) return;
    entry.epoch = h.producerEpoch;
    entry.batches = [];
  }

  /**
   * Checks every batch of a record set as a unit: all new (append), or all
   * retries of batches already written (duplicate, with the offsets they
   * got), else refused. Batches of one producer within the set must follow
   * each other, so each is checked against the state the previous ones
   * would leave.
   */
  checkRecordSet(headers: readonly BatchHeader[]): SequenceCheck {
    if (headers.length === 1) return this.check(headers[0]!);
    const trial = this.#copyFor(headers);
    const outcomes = headers.map((h) => {
      const outcome = trial.check(h);
      if (outcome.kind === "append") trial.record(h, 0n);
      return outcome;
    });
    const refused = outcomes.find((o) => o.kind === "refused");
    if (refused !== undefined) return refused;
    const duplicates = outcomes.filter((o) => o.kind === "duplicate");
    if (duplicates.length === 0) return { kind: "append" };
    if (duplicates.length < outcomes.length) {
      return {
        kind: "refused",
        errorCode: ProducerErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
        message: "Record set mixes retried and new batches",
      };
    }
    return {
      kind: "duplicate",
      baseOffset: duplicates[0]!.baseOffset,
      lastOffset: duplicates.at(-1)!.lastOffset,
    };
  }

  #copyFor(headers: readonly BatchHeader[]): ProducerStateTable {
    const copy = new ProducerStateTable();
    for (const h of headers) {
      const entry = this.#producers.get(h.producerId);
      if (entry !== undefined) {
        copy.#producers.set(h.producerId, {
          ...entry,
          batches: [...entry.batches],
        });
      }
    }
    return copy;
  }
}
