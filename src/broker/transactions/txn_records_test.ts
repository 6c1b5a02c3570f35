// The `__transaction_state` records: every state and field survives a
// round trip, the key is Kafka's (version 0, then the id as an int16
// string), and damaged or unknown records are refused with a
// TxnRecordError or DecodeError rather than read as something else.
import assert from "node:assert/strict";
import { DecodeError } from "../../protocol/mod.ts";
import {
  decodeTxnKey,
  decodeTxnValue,
  encodeTxnKey,
  encodeTxnValue,
  type StoredTxn,
  TXN_STATE_IDS,
  TxnRecordError,
  type TxnState,
  txnTombstone,
} from "./txn_records.ts";

const ongoing: StoredTxn = {
  producerId: 4001n,
  lastProducerId: 17n,
  producerEpoch: 3,
  lastProducerEpoch: 2,
  timeoutMs: 60_000,
  state: "Ongoing",
  partitions: [
    { topic: "orders", partitions: [0, 2, 5] },
    { topic: "__consumer_offsets", partitions: [11] },
  ],
  lastUpdateTimestampMs: 1_700_000_000_500n,
  startTimestampMs: 1_700_000_000_000n,
};

Deno.test("encodeTxnKey writes version 0 and the id as Kafka's key does", () => {
  assert.deepEqual(
    [...encodeTxnKey("tx")],
    [0, 0, 0, 2, "t".charCodeAt(0), "x".charCodeAt(0)],
  );
  assert.equal(decodeTxnKey(encodeTxnKey("pay-ü-1")), "pay-ü-1");
});

Deno.test("encodeTxnValue round-trips every state with its fields", () => {
  for (const state of Object.keys(TXN_STATE_IDS) as TxnState[]) {
    const txn = { ...ongoing, state };
    assert.deepEqual(decodeTxnValue(encodeTxnValue(txn)), txn);
  }
  const empty: StoredTxn = {
    ...ongoing,
    state: "Empty",
    partitions: [],
    lastProducerId: -1n,
    lastProducerEpoch: -1,
    startTimestampMs: -1n,
  };
  assert.deepEqual(decodeTxnValue(encodeTxnValue(empty)), empty);
});

Deno.test("encodeTxnValue stores the state as Kafka's state id", () => {
  const bytes = encodeTxnValue({ ...ongoing, state: "PrepareEpochFence" });
  // version 2 + ids 8+8 + epochs 2+2 + timeout 4: the state byte follows.
  assert.equal(bytes[2 + 16 + 4 + 4], 7);
});

Deno.test("decodeTxnValue refuses unknown versions, states and trailing bytes", () => {
  const bytes = encodeTxnValue(ongoing);
  const newer = bytes.slice();
  newer[1] = 1;
  assert.throws(() => decodeTxnValue(newer), TxnRecordError);
  const badState = bytes.slice();
  badState[2 + 16 + 4 + 4] = 42;
  assert.throws(() => decodeTxnValue(badState), /state 42 is unknown/);
  const longer = new Uint8Array(bytes.length + 1);
  longer.set(bytes);
  assert.throws(() => decodeTxnValue(longer), /after its last field/);
  assert.throws(() => decodeTxnValue(bytes.subarray(0, 20)), DecodeError);
});

Deno.test("decodeTxnKey refuses a key of another version or a null id", () => {
  assert.throws(() => decodeTxnKey(Uint8Array.of(0, 1, 0, 0)), TxnRecordError);
  assert.throws(
    () => decodeTxnKey(Uint8Array.of(0, 0, 0xff, 0xff)),
    /Transactional id is null/,
  );
});

Deno.test("txnTombstone keys the id with a null value", () => {
  const t = txnTombstone("tx");
  assert.equal(t.value, null);
  assert.equal(decodeTxnKey(t.key), "tx");
});
