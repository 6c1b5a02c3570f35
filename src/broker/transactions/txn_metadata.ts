/**
 * The state machine of one transactional id, as pure functions from the
 * stored state and a request to a decision: the next state to write to
 * `__transaction_state`, an answer without a write, or the error to answer.
 * Nothing here writes or waits; the coordinator writes each next state and
 * takes it as current only once it is durable, and while a write is in
 * flight (`pending`) every other change is answered CONCURRENT_TRANSACTIONS,
 * as Kafka's TransactionMetadata does with its pending state.
 *
 * Epochs follow KIP-98 and KIP-360: each InitProducerId bumps the epoch,
 * which fences every older producer of the id; a producer that names its
 * current id and epoch (after an error) gets the next epoch, and one that
 * names the epoch it was just given (a retry whose answer was lost) gets it
 * again. An epoch that would run out moves the id to a fresh producer id.
 */
import { type ControlRecordType, ErrorCode } from "../../protocol/mod.ts";
import { assert } from "../../util/mod.ts";
import { PRODUCER_EPOCH_MAX } from "../producers/producer_ids.ts";
import {
  OPEN_TXN_STATES,
  type StoredTxn,
  type TxnState,
  type TxnTopicPartitions,
} from "./txn_records.ts";

export const NO_PRODUCER_ID = -1n;
export const NO_PRODUCER_EPOCH = -1;
/** The epoch the coordinator may still fence with once clients ran out. */
const EPOCH_LIMIT = PRODUCER_EPOCH_MAX + 1;

/** Kafka's TransactionState.validPreviousStates, keyed by target. */
const PREVIOUS_STATES: Readonly<Record<TxnState, readonly TxnState[]>> = {
  Empty: ["Empty", "CompleteCommit", "CompleteAbort"],
  Ongoing: ["Ongoing", "Empty", "CompleteCommit", "CompleteAbort"],
  PrepareCommit: ["Ongoing"],
  PrepareAbort: ["Ongoing", "PrepareEpochFence"],
  CompleteCommit: ["PrepareCommit"],
  CompleteAbort: ["PrepareAbort"],
  Dead: ["Empty", "CompleteCommit", "CompleteAbort"],
  PrepareEpochFence: ["Ongoing"],
};

export function canTransition(from: TxnState, to: TxnState): boolean {
  return PREVIOUS_STATES[to].includes(from);
}

/**
 * Clients may not take the last epochs: the coordinator needs one above
 * theirs to fence them (Kafka's isEpochExhausted).
 */
export function isEpochExhausted(epoch: number): boolean {
  return epoch >= PRODUCER_EPOCH_MAX;
}

function moveTo(
  txn: StoredTxn,
  next: Omit<Partial<StoredTxn>, "state"> & {
    state: TxnState;
    nowMs: bigint;
  },
): StoredTxn {
  assert(
    canTransition(txn.state, next.state),
    `Transaction state ${txn.state} cannot move to ${next.state}`,
  );
  const { nowMs, ...fields } = next;
  const moved = { ...txn, ...fields, lastUpdateTimestampMs: nowMs };
  assert(
    moved.producerEpoch >= 0 && moved.producerEpoch <= EPOCH_LIMIT,
    "Producer epoch out of range",
    { epoch: moved.producerEpoch, state: next.state },
  );
  return moved;
}

/** A transactional id seen for the first time: no epoch handed out yet. */
export function newTxn(
  opts: { producerId: bigint; timeoutMs: number; nowMs: bigint },
): StoredTxn {
  return {
    producerId: opts.producerId,
    lastProducerId: NO_PRODUCER_ID,
    producerEpoch: NO_PRODUCER_EPOCH,
    lastProducerEpoch: NO_PRODUCER_EPOCH,
    timeoutMs: opts.timeoutMs,
    state: "Empty",
    partitions: [],
    lastUpdateTimestampMs: opts.nowMs,
    startTimestampMs: -1n,
  };
}

export type Refused = { kind: "refused"; errorCode: number };

function refused(errorCode: number): Refused {
  return { kind: "refused", errorCode };
}

export interface InitRequest {
  readonly timeoutMs: number;
  /** The id and epoch the producer holds (KIP-360), null for a new one. */
  readonly expected: { producerId: bigint; producerEpoch: number } | null;
  readonly nowMs: bigint;
  /** A write of this id's state is in flight. */
  readonly pending: boolean;
}

/**
 * `write`: write `next`, then answer its id and epoch. `rotate`: the epoch
 * ran out; take a fresh producer id into rotateProducerId. `fence`: a
 * transaction is open; write the abort of `next` (abortFenced) and answer
 * CONCURRENT_TRANSACTIONS, so the producer retries once it is aborted.
 */
export type InitDecision =
  | { kind: "write"; next: StoredTxn }
  | { kind: "rotate" }
  | { kind: "fence"; next: StoredTxn }
  | Refused;

export function initProducerId(
  txn: StoredTxn,
  req: InitRequest,
): InitDecision {
  if (req.pending) return refused(ErrorCode.CONCURRENT_TRANSACTIONS);
  const expected = req.expected;
  if (expected !== null && !mayClaim(txn, expected)) {
    return refused(ErrorCode.PRODUCER_FENCED);
  }
  switch (txn.state) {
    case "PrepareCommit":
    case "PrepareAbort":
      return refused(ErrorCode.CONCURRENT_TRANSACTIONS);
    case "Ongoing":
      return { kind: "fence", next: fenceProducerEpoch(txn, req.nowMs) };
    case "Empty":
    case "CompleteCommit":
    case "CompleteAbort":
      break;
    case "Dead":
    case "PrepareEpochFence":
      assert(false, `A loaded transaction cannot be in state ${txn.state}`);
  }
  if (
    isEpochExhausted(txn.producerEpoch) &&
    (expected === null || expected.producerEpoch === txn.producerEpoch)
  ) {
    return { kind: "rotate" };
  }
  const bumped = txn.producerEpoch + 1;
  let epochs: { producerEpoch: number; lastProducerEpoch: number };
  if (expected === null) {
    // A new producer: nobody may retry with the old epoch.
    epochs = { producerEpoch: bumped, lastProducerEpoch: NO_PRODUCER_EPOCH };
  } else if (
    txn.producerEpoch === NO_PRODUCER_EPOCH ||
    expected.producerEpoch === txn.producerEpoch
  ) {
    epochs = { producerEpoch: bumped, lastProducerEpoch: txn.producerEpoch };
  } else if (expected.producerEpoch === txn.lastProducerEpoch) {
    // The answer to the bump was lost: hand out the same epoch again.
    epochs = {
      producerEpoch: txn.producerEpoch,
      lastProducerEpoch: txn.lastProducerEpoch,
    };
  } else {
    return refused(ErrorCode.PRODUCER_FENCED);
  }
  return {
    kind: "write",
    next: moveTo(txn, {
      state: "Empty",
      ...epochs,
      timeoutMs: req.timeoutMs,
      partitions: [],
      startTimestampMs: -1n,
      nowMs: req.nowMs,
    }),
  };
}

/**
 * Whether a producer naming this id and epoch may take the id over: the
 * id was just created, or it is the producer's own, or the producer is
 * retrying a bump that moved the id to a fresh one.
 */
function mayClaim(
  txn: StoredTxn,
  expected: { producerId: bigint; producerEpoch: number },
): boolean {
  return txn.producerEpoch === NO_PRODUCER_EPOCH ||
    expected.producerId === txn.producerId ||
    (expected.producerId === txn.lastProducerId &&
      isEpochExhausted(expected.producerEpoch));
}

/** The id's state on a fresh producer id, after its epoch ran out. */
export function rotateProducerId(
  txn: StoredTxn,
  opts: {
    producerId: bigint;
    timeoutMs: number;
    nowMs: bigint;
    /** The producer named its epoch, so it may retry with it. */
    retriable: boolean;
  },
): StoredTxn {
  return moveTo(txn, {
    state: "Empty",
    producerId: opts.producerId,
    lastProducerId: txn.producerId,
    producerEpoch: 0,
    lastProducerEpoch: opts.retriable ? txn.producerEpoch : NO_PRODUCER_EPOCH,
    timeoutMs: opts.timeoutMs,
    partitions: [],
    startTimestampMs: -1n,
    nowMs: opts.nowMs,
  });
}

/**
 * Bumps the epoch of an open transaction so its producer is fenced before
 * the coordinator aborts it. This state is never written: abortFenced
 * turns it into the PrepareAbort that is.
 */
export function fenceProducerEpoch(txn: StoredTxn, nowMs: bigint): StoredTxn {
  return moveTo(txn, {
    state: "PrepareEpochFence",
    producerEpoch: txn.producerEpoch + 1,
    lastProducerEpoch: NO_PRODUCER_EPOCH,
    nowMs,
  });
}

export function abortFenced(fenced: StoredTxn, nowMs: bigint): StoredTxn {
  assert(
    fenced.state === "PrepareEpochFence",
    `Transaction state ${fenced.state} was not fenced`,
  );
  return moveTo(fenced, { state: "PrepareAbort", nowMs });
}

/** A request that names the producer it comes from. */
export interface ProducerRequest {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly nowMs: bigint;
  /** A write of this id's state is in flight. */
  readonly pending: boolean;
}

/**
 * The error for a request of a producer that does not hold the id at its
 * current epoch, or while a write is in flight; null if it may go on.
 */
export function producerError(
  txn: StoredTxn,
  req: ProducerRequest,
): number | null {
  if (txn.producerId !== req.producerId) {
    return ErrorCode.INVALID_PRODUCER_ID_MAPPING;
  }
  if (txn.producerEpoch !== req.producerEpoch) {
    return ErrorCode.PRODUCER_FENCED;
  }
  return req.pending ? ErrorCode.CONCURRENT_TRANSACTIONS : null;
}

/** `done`: nothing to write, answer success. */
export type ChangeDecision =
  | { kind: "write"; next: StoredTxn }
  | { kind: "done" }
  | Refused;

/** AddPartitionsToTxn (and AddOffsetsToTxn, with its offsets partition). */
export function addPartitions(
  txn: StoredTxn,
  req: ProducerRequest & { partitions: readonly TxnTopicPartitions[] },
): ChangeDecision {
  const error = producerError(txn, req);
  if (error !== null) return refused(error);
  switch (txn.state) {
    case "PrepareCommit":
    case "PrepareAbort":
      return refused(ErrorCode.CONCURRENT_TRANSACTIONS);
    case "Ongoing":
      if (containsAll(txn.partitions, req.partitions)) return { kind: "done" };
      break;
    case "Empty":
    case "CompleteCommit":
    case "CompleteAbort":
      break;
    case "Dead":
    case "PrepareEpochFence":
      assert(false, `A loaded transaction cannot be in state ${txn.state}`);
  }
  return {
    kind: "write",
    next: moveTo(txn, {
      state: "Ongoing",
      partitions: mergePartitions(txn.partitions, req.partitions),
      startTimestampMs: txn.state === "Ongoing"
        ? txn.startTimestampMs
        : req.nowMs,
      nowMs: req.nowMs,
    }),
  };
}

/** A transaction's outcome, as its markers' control records name it. */
export type TxnResult = ControlRecordType;

/**
 * EndTxn: an open transaction moves to PrepareCommit or PrepareAbort. A
 * retry of an end already decided is answered as such (done once complete,
 * CONCURRENT_TRANSACTIONS while its markers are written); asking for the
 * other outcome, or ending no transaction, is INVALID_TXN_STATE.
 */
export function endTxn(
  txn: StoredTxn,
  req: ProducerRequest & { result: TxnResult },
): ChangeDecision {
  const error = producerError(txn, req);
  if (error !== null) return refused(error);
  const commit = req.result === "commit";
  switch (txn.state) {
    case "Ongoing":
      return {
        kind: "write",
        next: moveTo(txn, {
          state: commit ? "PrepareCommit" : "PrepareAbort",
          nowMs: req.nowMs,
        }),
      };
    case "CompleteCommit":
    case "CompleteAbort":
      return (txn.state === "CompleteCommit") === commit
        ? { kind: "done" }
        : refused(ErrorCode.INVALID_TXN_STATE);
    case "PrepareCommit":
    case "PrepareAbort":
      return (txn.state === "PrepareCommit") === commit
        ? refused(ErrorCode.CONCURRENT_TRANSACTIONS)
        : refused(ErrorCode.INVALID_TXN_STATE);
    case "Empty":
      return refused(ErrorCode.INVALID_TXN_STATE);
    case "Dead":
    case "PrepareEpochFence":
      assert(false, `A loaded transaction cannot be in state ${txn.state}`);
  }
}

/** The outcome a prepared transaction's markers carry. */
export function preparedResult(txn: StoredTxn): TxnResult {
  assert(
    txn.state === "PrepareCommit" || txn.state === "PrepareAbort",
    `Transaction state ${txn.state} has no markers to write`,
  );
  return txn.state === "PrepareCommit" ? "commit" : "abort";
}

/** After every partition has its marker: the transaction is over. */
export function completeTxn(txn: StoredTxn, nowMs: bigint): StoredTxn {
  return moveTo(txn, {
    state: preparedResult(txn) === "commit"
      ? "CompleteCommit"
      : "CompleteAbort",
    partitions: [],
    nowMs,
  });
}

/** A transaction begun and not yet complete: it holds back the LSO. */
export function isOpen(txn: StoredTxn): boolean {
  return OPEN_TXN_STATES.has(txn.state);
}

/**
 * An open transaction older than its timeout, which the coordinator
 * aborts (Kafka's transaction.timeout.ms, counted from its first
 * partition).
 */
export function isTimedOut(txn: StoredTxn, nowMs: bigint): boolean {
  return txn.state === "Ongoing" &&
    txn.startTimestampMs + BigInt(txn.timeoutMs) <= nowMs;
}

function containsAll(
  held: readonly TxnTopicPartitions[],
  wanted: readonly TxnTopicPartitions[],
): boolean {
  return wanted.every((w) => {
    const have = held.find((h) => h.topic === w.topic)?.partitions ?? [];
    return w.partitions.every((p) => have.includes(p));
  });
}

/** The union, topics and partitions in ascending order. */
export function mergePartitions(
  held: readonly TxnTopicPartitions[],
  added: readonly TxnTopicPartitions[],
): TxnTopicPartitions[] {
  const byTopic = new Map<string, Set<number>>();
  for (const t of [...held, ...added]) {
    const set = byTopic.get(t.topic) ?? new Set<number>();
    for (const p of t.partitions) set.add(p);
    byTopic.set(t.topic, set);
  }
  return [...byTopic.keys()].sort().map((topic) => ({
    topic,
    partitions: [...byTopic.get(topic)!].sort((a, b) => a - b),
  }));
}
