// The transaction state machine, driven through whole lifecycles the way a
// coordinator drives it (each decision's next state taken as current, as
// if its write had become durable): epochs bump and fence, KIP-360 retries
// get their epoch back, open transactions are fenced then aborted, and
// every request out of turn gets Kafka's error for it.
import assert from "node:assert/strict";
import { ErrorCode } from "../../protocol/mod.ts";
import { AssertionError } from "../../util/mod.ts";
import { PRODUCER_EPOCH_MAX } from "../producers/producer_ids.ts";
import {
  abortFenced,
  addPartitions,
  canTransition,
  type ChangeDecision,
  completeTxn,
  endTxn,
  fenceProducerEpoch,
  type InitDecision,
  initProducerId,
  isTimedOut,
  mergePartitions,
  newTxn,
  NO_PRODUCER_EPOCH,
  preparedResult,
  rotateProducerId,
} from "./txn_metadata.ts";
import { type StoredTxn, TXN_STATE_IDS, type TxnState } from "./txn_records.ts";

const NOW = 1_700_000_000_000n;
const PID = 4000n;

function written(d: InitDecision | ChangeDecision): StoredTxn {
  assert.equal(d.kind, "write", JSON.stringify(d, (_k, v) => `${v}`));
  return (d as { next: StoredTxn }).next;
}

function refusal(d: InitDecision | ChangeDecision): number {
  assert.equal(d.kind, "refused");
  return (d as { errorCode: number }).errorCode;
}

const init = (
  txn: StoredTxn,
  expected: { producerId: bigint; producerEpoch: number } | null = null,
  more: { pending?: boolean; timeoutMs?: number } = {},
) =>
  initProducerId(txn, {
    timeoutMs: more.timeoutMs ?? 60_000,
    expected,
    nowMs: NOW,
    pending: more.pending ?? false,
  });

const producer = (txn: StoredTxn, more: { pending?: boolean } = {}) => ({
  producerId: txn.producerId,
  producerEpoch: txn.producerEpoch,
  nowMs: NOW + 10n,
  pending: more.pending ?? false,
});

const orders = [{ topic: "orders", partitions: [1, 0] }];

/** A fresh id initialized once: Empty at epoch 0. */
function initialized(): StoredTxn {
  return written(
    init(newTxn({ producerId: PID, timeoutMs: 60_000, nowMs: NOW })),
  );
}

function ongoing(): StoredTxn {
  const txn = initialized();
  return written(addPartitions(txn, { ...producer(txn), partitions: orders }));
}

Deno.test("canTransition allows exactly Kafka's state moves", () => {
  const legal = new Set([
    "Empty>Empty",
    "CompleteCommit>Empty",
    "CompleteAbort>Empty",
    "Ongoing>Ongoing",
    "Empty>Ongoing",
    "CompleteCommit>Ongoing",
    "CompleteAbort>Ongoing",
    "Ongoing>PrepareCommit",
    "Ongoing>PrepareAbort",
    "PrepareEpochFence>PrepareAbort",
    "PrepareCommit>CompleteCommit",
    "PrepareAbort>CompleteAbort",
    "Empty>Dead",
    "CompleteCommit>Dead",
    "CompleteAbort>Dead",
    "Ongoing>PrepareEpochFence",
  ]);
  const states = Object.keys(TXN_STATE_IDS) as TxnState[];
  for (const from of states) {
    for (const to of states) {
      assert.equal(canTransition(from, to), legal.has(`${from}>${to}`), {
        from,
        to,
      } as unknown as string);
    }
  }
});

Deno.test("initProducerId gives a new id epoch 0 and no epoch to retry", () => {
  const txn = initialized();
  assert.equal(txn.state, "Empty");
  assert.equal(txn.producerId, PID);
  assert.equal(txn.producerEpoch, 0);
  assert.equal(txn.lastProducerEpoch, NO_PRODUCER_EPOCH);
  assert.equal(txn.lastUpdateTimestampMs, NOW);
});

Deno.test("initProducerId by a new producer bumps the epoch and forgets the old", () => {
  const first = initialized();
  const second = written(init(first, null, { timeoutMs: 5_000 }));
  assert.equal(second.producerEpoch, 1);
  assert.equal(second.lastProducerEpoch, NO_PRODUCER_EPOCH);
  assert.equal(second.timeoutMs, 5_000);
  // The first producer is a zombie now, even for a KIP-360 retry.
  assert.equal(
    refusal(init(second, { producerId: PID, producerEpoch: 0 })),
    ErrorCode.PRODUCER_FENCED,
  );
  assert.equal(
    refusal(addPartitions(second, { ...producer(first), partitions: orders })),
    ErrorCode.PRODUCER_FENCED,
  );
});

Deno.test("initProducerId with the current epoch bumps it and lets it be retried (KIP-360)", () => {
  const first = initialized();
  const bumped = written(init(first, { producerId: PID, producerEpoch: 0 }));
  assert.equal(bumped.producerEpoch, 1);
  assert.equal(bumped.lastProducerEpoch, 0);
  // The answer was lost: the retry names epoch 0 again and gets epoch 1.
  const retried = written(init(bumped, { producerId: PID, producerEpoch: 0 }));
  assert.equal(retried.producerEpoch, 1);
  assert.equal(retried.lastProducerEpoch, 0);
  assert.equal(
    refusal(init(bumped, { producerId: PID, producerEpoch: 7 })),
    ErrorCode.PRODUCER_FENCED,
  );
  assert.equal(
    refusal(init(bumped, { producerId: 99n, producerEpoch: 1 })),
    ErrorCode.PRODUCER_FENCED,
  );
});

Deno.test("initProducerId accepts any producer for an id just created", () => {
  const fresh = newTxn({ producerId: PID, timeoutMs: 60_000, nowMs: NOW });
  const next = written(init(fresh, { producerId: 12n, producerEpoch: 4 }));
  assert.equal(next.producerId, PID);
  assert.equal(next.producerEpoch, 0);
});

Deno.test("initProducerId waits out writes and markers in flight", () => {
  const txn = ongoing();
  assert.equal(
    refusal(init(initialized(), null, { pending: true })),
    ErrorCode.CONCURRENT_TRANSACTIONS,
  );
  const prepared = written(
    endTxn(txn, { ...producer(txn), result: "commit" }),
  );
  assert.equal(refusal(init(prepared)), ErrorCode.CONCURRENT_TRANSACTIONS);
});

Deno.test("initProducerId fences an open transaction, which is then aborted", () => {
  const txn = ongoing();
  const decision = init(txn);
  assert.equal(decision.kind, "fence");
  const fenced = (decision as { next: StoredTxn }).next;
  assert.equal(fenced.state, "PrepareEpochFence");
  assert.equal(fenced.producerEpoch, txn.producerEpoch + 1);
  const aborting = abortFenced(fenced, NOW + 20n);
  assert.equal(aborting.state, "PrepareAbort");
  assert.equal(aborting.producerEpoch, txn.producerEpoch + 1);
  assert.deepEqual(aborting.partitions, txn.partitions);
  assert.equal(preparedResult(aborting), "abort");
  // The zombie's late commit is fenced by the bumped epoch.
  assert.equal(
    refusal(endTxn(aborting, { ...producer(txn), result: "commit" })),
    ErrorCode.PRODUCER_FENCED,
  );
  const aborted = completeTxn(aborting, NOW + 30n);
  assert.equal(aborted.state, "CompleteAbort");
  assert.deepEqual(aborted.partitions, []);
  // The producer's retry bumps once more: it never held the fencing epoch.
  const next = written(init(aborted));
  assert.equal(next.state, "Empty");
  assert.equal(next.producerEpoch, txn.producerEpoch + 2);
});

Deno.test("initProducerId moves to a fresh producer id when the epoch runs out", () => {
  const worn: StoredTxn = {
    ...initialized(),
    producerEpoch: PRODUCER_EPOCH_MAX,
  };
  assert.equal(init(worn).kind, "rotate");
  assert.equal(
    init(worn, { producerId: PID, producerEpoch: PRODUCER_EPOCH_MAX }).kind,
    "rotate",
  );
  const rotated = rotateProducerId(worn, {
    producerId: 5000n,
    timeoutMs: 30_000,
    nowMs: NOW,
    retriable: true,
  });
  assert.equal(rotated.producerId, 5000n);
  assert.equal(rotated.lastProducerId, PID);
  assert.equal(rotated.producerEpoch, 0);
  assert.equal(rotated.lastProducerEpoch, PRODUCER_EPOCH_MAX);
  assert.equal(rotated.timeoutMs, 30_000);
  // A retry of the rotating call names the old id and its last epoch.
  const retried = written(
    init(rotated, { producerId: PID, producerEpoch: PRODUCER_EPOCH_MAX }),
  );
  assert.equal(retried.producerId, 5000n);
  assert.equal(retried.producerEpoch, 0);
  const forgotten = rotateProducerId(worn, {
    producerId: 5000n,
    timeoutMs: 30_000,
    nowMs: NOW,
    retriable: false,
  });
  assert.equal(forgotten.lastProducerEpoch, NO_PRODUCER_EPOCH);
});

Deno.test("addPartitions opens a transaction and merges partitions into it", () => {
  const txn = ongoing();
  assert.equal(txn.state, "Ongoing");
  assert.equal(txn.startTimestampMs, NOW + 10n);
  assert.deepEqual(txn.partitions, [{ topic: "orders", partitions: [0, 1] }]);
  assert.deepEqual(
    addPartitions(txn, { ...producer(txn), partitions: [orders[0]!] }),
    { kind: "done" },
  );
  const more = written(addPartitions(txn, {
    ...producer(txn),
    nowMs: NOW + 500n,
    partitions: [{ topic: "audit", partitions: [3] }, {
      topic: "orders",
      partitions: [2],
    }],
  }));
  assert.equal(more.startTimestampMs, NOW + 10n);
  assert.equal(more.lastUpdateTimestampMs, NOW + 500n);
  assert.deepEqual(more.partitions, [
    { topic: "audit", partitions: [3] },
    { topic: "orders", partitions: [0, 1, 2] },
  ]);
});

Deno.test("addPartitions refuses other producers, old epochs and turns out of order", () => {
  const txn = written(init(initialized()));
  const add = (over: { producerId?: bigint; producerEpoch?: number }) =>
    addPartitions(txn, { ...producer(txn), ...over, partitions: orders });
  assert.equal(
    refusal(add({ producerId: 1n })),
    ErrorCode.INVALID_PRODUCER_ID_MAPPING,
  );
  assert.equal(refusal(add({ producerEpoch: 0 })), ErrorCode.PRODUCER_FENCED);
  assert.equal(
    refusal(addPartitions(txn, {
      ...producer(txn, { pending: true }),
      partitions: orders,
    })),
    ErrorCode.CONCURRENT_TRANSACTIONS,
  );
  const open = written(add({}));
  const prepared = written(
    endTxn(open, { ...producer(open), result: "abort" }),
  );
  assert.equal(
    refusal(addPartitions(prepared, { ...producer(open), partitions: orders })),
    ErrorCode.CONCURRENT_TRANSACTIONS,
  );
});

Deno.test("endTxn commits through PrepareCommit and CompleteCommit", () => {
  const txn = ongoing();
  const prepared = written(endTxn(txn, { ...producer(txn), result: "commit" }));
  assert.equal(prepared.state, "PrepareCommit");
  assert.deepEqual(prepared.partitions, txn.partitions);
  assert.equal(prepared.producerEpoch, txn.producerEpoch);
  assert.equal(preparedResult(prepared), "commit");
  assert.equal(
    refusal(endTxn(prepared, { ...producer(txn), result: "commit" })),
    ErrorCode.CONCURRENT_TRANSACTIONS,
  );
  assert.equal(
    refusal(endTxn(prepared, { ...producer(txn), result: "abort" })),
    ErrorCode.INVALID_TXN_STATE,
  );
  const committed = completeTxn(prepared, NOW + 40n);
  assert.equal(committed.state, "CompleteCommit");
  assert.deepEqual(committed.partitions, []);
  assert.equal(committed.lastUpdateTimestampMs, NOW + 40n);
  // A retried commit whose answer was lost succeeds; an abort cannot.
  assert.deepEqual(
    endTxn(committed, { ...producer(txn), result: "commit" }),
    { kind: "done" },
  );
  assert.equal(
    refusal(endTxn(committed, { ...producer(txn), result: "abort" })),
    ErrorCode.INVALID_TXN_STATE,
  );
  // The next transaction starts its clock afresh.
  const next = written(addPartitions(committed, {
    ...producer(txn),
    nowMs: NOW + 900n,
    partitions: [{ topic: "audit", partitions: [0] }],
  }));
  assert.equal(next.startTimestampMs, NOW + 900n);
  assert.deepEqual(next.partitions, [{ topic: "audit", partitions: [0] }]);
});

Deno.test("endTxn aborts, and refuses to end no transaction or a fenced one", () => {
  const txn = ongoing();
  const aborted = completeTxn(
    written(endTxn(txn, { ...producer(txn), result: "abort" })),
    NOW,
  );
  assert.equal(aborted.state, "CompleteAbort");
  assert.deepEqual(
    endTxn(aborted, { ...producer(txn), result: "abort" }),
    { kind: "done" },
  );
  assert.equal(
    refusal(endTxn(aborted, { ...producer(txn), result: "commit" })),
    ErrorCode.INVALID_TXN_STATE,
  );
  const empty = initialized();
  assert.equal(
    refusal(endTxn(empty, { ...producer(empty), result: "commit" })),
    ErrorCode.INVALID_TXN_STATE,
  );
  assert.equal(
    refusal(
      endTxn(txn, { ...producer(txn), producerEpoch: 5, result: "abort" }),
    ),
    ErrorCode.PRODUCER_FENCED,
  );
});

Deno.test("moves outside the state machine are bugs, caught by assertions", () => {
  assert.throws(() => completeTxn(ongoing(), NOW), AssertionError);
  assert.throws(() => abortFenced(ongoing(), NOW), AssertionError);
  assert.throws(() => fenceProducerEpoch(initialized(), NOW), AssertionError);
  // Past the last epoch there is nothing left to fence with.
  const worn = { ...ongoing(), producerEpoch: PRODUCER_EPOCH_MAX + 1 };
  assert.throws(() => fenceProducerEpoch(worn, NOW), AssertionError);
});

Deno.test("isTimedOut holds for an open transaction past its timeout only", () => {
  const txn = ongoing();
  const end = txn.startTimestampMs + BigInt(txn.timeoutMs);
  assert.equal(isTimedOut(txn, end - 1n), false);
  assert.equal(isTimedOut(txn, end), true);
  const prepared = written(endTxn(txn, { ...producer(txn), result: "commit" }));
  assert.equal(isTimedOut(prepared, end + 1_000n), false);
  assert.equal(isTimedOut(initialized(), end + 1_000n), false);
});

Deno.test("mergePartitions sorts topics and partitions without repeats", () => {
  assert.deepEqual(
    mergePartitions(
      [{ topic: "b", partitions: [2, 0] }],
      [{ topic: "a", partitions: [1] }, { topic: "b", partitions: [0, 1] }],
    ),
    [{ topic: "a", partitions: [1] }, { topic: "b", partitions: [0, 1, 2] }],
  );
});
