// ProducerStateTable decides, per batch header, between append, duplicate
// and refusal exactly as Kafka's idempotent producer expects.
import assert from "node:assert/strict";
import type { BatchHeader } from "../../protocol/mod.ts";
import { ProducerErrorCode, ProducerStateTable } from "./producer_state.ts";

function header(
  opts: { pid?: bigint; epoch?: number; seq: number; count?: number },
): BatchHeader {
  const count = opts.count ?? 1;
  return {
    baseOffset: 0n,
    sizeBytes: 100,
    partitionLeaderEpoch: 0,
    magic: 2,
    crc: 0,
    attributes: 0,
    lastOffsetDelta: count - 1,
    baseTimestamp: 0n,
    maxTimestamp: 0n,
    producerId: opts.pid ?? 7n,
    producerEpoch: opts.epoch ?? 0,
    baseSequence: opts.seq,
    recordsCount: count,
  };
}

Deno.test("ProducerStateTable.check answers a retried batch with its original offsets", () => {
  const table = new ProducerStateTable();
  const first = header({ seq: 0, count: 3 });
  assert.deepEqual(table.check(first), { kind: "append" });
  table.record(first, 10n);
  const second = header({ seq: 3, count: 2 });
  assert.deepEqual(table.check(second), { kind: "append" });
  table.record(second, 13n);
  assert.deepEqual(table.check(header({ seq: 0, count: 3 })), {
    kind: "duplicate",
    baseOffset: 10n,
    lastOffset: 12n,
  });
  assert.deepEqual(table.check(header({ seq: 3, count: 2 })), {
    kind: "duplicate",
    baseOffset: 13n,
    lastOffset: 14n,
  });
});

Deno.test("ProducerStateTable.check refuses a sequence gap and an old epoch", () => {
  const table = new ProducerStateTable();
  table.record(header({ epoch: 2, seq: 0 }), 0n);
  const gap = table.check(header({ epoch: 2, seq: 5 }));
  assert.equal(gap.kind, "refused");
  assert.equal(
    gap.kind === "refused" && gap.errorCode,
    ProducerErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
  );
  const fenced = table.check(header({ epoch: 1, seq: 1 }));
  assert.equal(
    fenced.kind === "refused" && fenced.errorCode,
    ProducerErrorCode.INVALID_PRODUCER_EPOCH,
  );
  // A new epoch starts over at sequence 0, and only there.
  assert.deepEqual(table.check(header({ epoch: 3, seq: 0 })), {
    kind: "append",
  });
  assert.equal(table.check(header({ epoch: 3, seq: 4 })).kind, "refused");
});

Deno.test("ProducerStateTable keeps only the last five batches per producer", () => {
  const table = new ProducerStateTable();
  for (let i = 0; i < 6; i++) table.record(header({ seq: i }), BigInt(i));
  // The oldest fell out: its retry is now out of order, not a duplicate.
  assert.equal(table.check(header({ seq: 0 })).kind, "refused");
  assert.equal(table.check(header({ seq: 1 })).kind, "duplicate");
});

Deno.test("ProducerStateTable.check wraps the sequence after Int32 max", () => {
  const table = new ProducerStateTable();
  table.record(header({ seq: 0x7ffffffe, count: 2 }), 0n);
  assert.deepEqual(table.check(header({ seq: 0 })), { kind: "append" });
  assert.equal(table.check(header({ seq: 1 })).kind, "refused");
});

Deno.test("ProducerStateTable accepts a producer it has no state for at any sequence", () => {
  const table = new ProducerStateTable();
  assert.deepEqual(table.check(header({ seq: 42 })), { kind: "append" });
  assert.deepEqual(table.check(header({ pid: -1n, seq: -1 })), {
    kind: "append",
  });
});

Deno.test("ProducerStateTable.checkRecordSet refuses a set mixing retried and new batches", () => {
  const table = new ProducerStateTable();
  table.record(header({ seq: 0 }), 0n);
  const mixed = table.checkRecordSet([header({ seq: 0 }), header({ seq: 1 })]);
  assert.equal(mixed.kind, "refused");
  const fresh = table.checkRecordSet([header({ seq: 1 }), header({ seq: 2 })]);
  assert.deepEqual(fresh, { kind: "append" });
});

Deno.test("ProducerStateTable.producers lists each producer's epoch, last sequence and newest timestamp", () => {
  const table = new ProducerStateTable();
  table.record(
    { ...header({ pid: 9n, seq: 0, count: 4 }), maxTimestamp: 50n },
    0n,
  );
  table.record(
    { ...header({ pid: 3n, seq: 0, count: 2 }), maxTimestamp: 60n },
    4n,
  );
  table.record(
    { ...header({ pid: 9n, seq: 4, count: 3 }), maxTimestamp: 70n },
    6n,
  );
  // A new epoch restarts the sequence; the old epoch's batches no longer count.
  table.record(
    { ...header({ pid: 3n, epoch: 1, seq: 0 }), maxTimestamp: 80n },
    9n,
  );
  assert.deepEqual(table.producers(), [
    { producerId: 3n, producerEpoch: 1, lastSequence: 0, lastTimestamp: 80n },
    { producerId: 9n, producerEpoch: 0, lastSequence: 6, lastTimestamp: 70n },
  ]);
});

/** A marker of producer `pid` (control and transactional bits). */
function marker(epoch: number, pid = 7n): BatchHeader {
  return { ...header({ pid, epoch, seq: -1 }), attributes: 0x30 };
}

Deno.test("ProducerStateTable.recordMarker takes a marker's newer epoch, fencing the older", () => {
  const table = new ProducerStateTable();
  table.record(header({ seq: 0, count: 2 }), 0n);
  // The transaction's own commit marker leaves its sequence as it was.
  table.recordMarker(marker(0), {
    offset: 2n,
    result: "commit",
    coordinatorEpoch: 0,
  });
  assert.deepEqual(table.check(header({ seq: 2 })), { kind: "append" });
  // The coordinator fenced the producer with epoch 1 and aborted.
  table.recordMarker(marker(1), {
    offset: 3n,
    result: "abort",
    coordinatorEpoch: 0,
  });
  assert.deepEqual(table.check(header({ seq: 2 })), {
    kind: "refused",
    errorCode: ProducerErrorCode.INVALID_PRODUCER_EPOCH,
    message: "Producer 7 epoch 0 is older than the current epoch 1",
  });
  assert.deepEqual(table.check(header({ epoch: 2, seq: 0 })), {
    kind: "append",
  });
  // A marker of a producer that never wrote here makes no state.
  table.recordMarker(marker(4, 9n), {
    offset: 4n,
    result: "abort",
    coordinatorEpoch: 0,
  });
  assert.deepEqual(table.check(header({ pid: 9n, epoch: 0, seq: 5 })), {
    kind: "append",
  });
});

Deno.test("ProducerStateTable tracks open transactions and lists the aborted ones", () => {
  const table = new ProducerStateTable();
  const txn = (pid: bigint, seq: number) => ({
    ...header({ pid, seq }),
    attributes: 0x10,
  });
  table.record(header({ pid: 5n, seq: 0 }), 9n);
  assert.equal(table.firstUnstableOffset(), null, "not transactional");
  table.record(txn(7n, 0), 10n);
  table.record(txn(8n, 0), 12n);
  table.record(txn(7n, 1), 13n);
  assert.equal(table.firstUnstableOffset(), 10n);
  table.recordMarker(marker(0, 7n), {
    offset: 14n,
    result: "commit",
    coordinatorEpoch: 0,
  });
  assert.equal(table.firstUnstableOffset(), 12n);
  table.recordMarker(marker(0, 8n), {
    offset: 15n,
    result: "abort",
    coordinatorEpoch: 0,
  });
  assert.equal(table.firstUnstableOffset(), null);
  const aborted = { producerId: 8n, firstOffset: 12n, lastOffset: 15n };
  assert.deepEqual(table.abortedIn(0n, 100n), [aborted]);
  assert.deepEqual(table.abortedIn(15n, 16n), [aborted]);
  assert.deepEqual(table.abortedIn(16n, 100n), []);
  assert.deepEqual(table.abortedIn(0n, 12n), []);
  // Once the log starts past an abort marker, no fetch can need it.
  table.trimBefore(15n);
  assert.deepEqual(table.abortedIn(0n, 100n), [aborted]);
  table.trimBefore(16n);
  assert.deepEqual(table.abortedIn(0n, 100n), []);
  // The next transaction of producer 8 starts afresh.
  table.record(txn(8n, 1), 16n);
  assert.equal(table.firstUnstableOffset(), 16n);
  table.clear();
  assert.equal(table.firstUnstableOffset(), null);
  assert.deepEqual(table.abortedIn(0n, 100n), []);
});

Deno.test("ProducerStateTable.checkMarker refuses a marker from a coordinator older than the last one to mark the producer", () => {
  const table = new ProducerStateTable();
  // No marker yet: any coordinator may write the first.
  assert.deepEqual(table.checkMarker(marker(0), 3), { kind: "append" });
  table.recordMarker(marker(0), {
    offset: 0n,
    result: "commit",
    coordinatorEpoch: 5,
  });
  assert.deepEqual(table.checkMarker(marker(0), 5), { kind: "append" });
  assert.deepEqual(table.checkMarker(marker(0), 6), { kind: "append" });
  assert.deepEqual(table.checkMarker(marker(0), 4), {
    kind: "refused",
    errorCode: ProducerErrorCode.TRANSACTION_COORDINATOR_FENCED,
    message: "Marker of producer 7 from coordinator epoch 4, older than 5",
  });
  // Another producer's markers are judged on their own.
  assert.deepEqual(table.checkMarker(marker(0, 8n), 1), { kind: "append" });
});
