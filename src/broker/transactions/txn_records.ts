/**
 * The records the transaction coordinator writes to `__transaction_state`,
 * laid out as Kafka lays out its TransactionLogKey / TransactionLogValue
 * (non-flexible version 0, plus the previous producer id and epoch that
 * KIP-360 retries need across a coordinator change): the key is a version
 * and the transactional id; the value is a version, the producer ids and
 * epochs, the timeout, the state, the partitions and the timestamps. A
 * null value is a tombstone: the transactional id is forgotten.
 */
import { Reader, Writer } from "../../protocol/mod.ts";

/** The compacted internal topic the transaction coordinators keep state in. */
export const TXN_STATE_TOPIC = "__transaction_state";

const KEY_VERSION = 0;
const VALUE_VERSION = 0;

/** Kafka's TransactionState ids, which is what the state byte holds. */
export const TXN_STATE_IDS = {
  Empty: 0,
  Ongoing: 1,
  PrepareCommit: 2,
  PrepareAbort: 3,
  CompleteCommit: 4,
  CompleteAbort: 5,
  Dead: 6,
  PrepareEpochFence: 7,
} as const;

export type TxnState = keyof typeof TXN_STATE_IDS;

/** The states of a transaction begun and not yet complete. */
export const OPEN_TXN_STATES: ReadonlySet<string> = new Set<TxnState>([
  "Ongoing",
  "PrepareCommit",
  "PrepareAbort",
  "PrepareEpochFence",
]);

const STATE_BY_ID = new Map<number, TxnState>(
  Object.entries(TXN_STATE_IDS).map(([name, id]) => [id, name as TxnState]),
);

/** One topic's partitions in a transaction, in ascending order. */
export interface TxnTopicPartitions {
  readonly topic: string;
  readonly partitions: readonly number[];
}

/** What the log keeps of one transactional id. */
export interface StoredTxn {
  readonly producerId: bigint;
  /** The id before the last rotation (epoch exhausted), -1 if none. */
  readonly lastProducerId: bigint;
  readonly producerEpoch: number;
  /** The epoch before the last bump, -1 if a new producer fenced it. */
  readonly lastProducerEpoch: number;
  readonly timeoutMs: number;
  readonly state: TxnState;
  readonly partitions: readonly TxnTopicPartitions[];
  readonly lastUpdateTimestampMs: bigint;
  /** When the ongoing transaction began, -1 outside one. */
  readonly startTimestampMs: bigint;
}

export class TxnRecordError extends Error {
  override name = "TxnRecordError";
}

const utf8 = new TextEncoder();

function checkVersion(r: Reader, what: string, expected: number): void {
  const version = r.int16();
  if (version !== expected) {
    throw new TxnRecordError(
      `Transaction log ${what} version ${version} is unknown`,
    );
  }
}

function readText(r: Reader, what: string): string {
  const n = r.int16Length();
  if (n < 0) throw new TxnRecordError(`${what} is null`);
  return r.text(n);
}

export function encodeTxnKey(transactionalId: string): Uint8Array {
  const w = new Writer(4 + utf8.encode(transactionalId).length);
  w.int16(KEY_VERSION);
  w.int16String(transactionalId);
  return w.finish();
}

/** The transactional id a key names. */
export function decodeTxnKey(bytes: Uint8Array): string {
  const r = new Reader(bytes);
  checkVersion(r, "key", KEY_VERSION);
  return readText(r, "Transactional id");
}

export function encodeTxnValue(txn: StoredTxn): Uint8Array {
  const w = new Writer(64 + txn.partitions.length * 32);
  w.int16(VALUE_VERSION);
  w.int64(txn.producerId);
  w.int64(txn.lastProducerId);
  w.int16(txn.producerEpoch);
  w.int16(txn.lastProducerEpoch);
  w.int32(txn.timeoutMs);
  w.int8(TXN_STATE_IDS[txn.state]);
  w.int32(txn.partitions.length);
  for (const t of txn.partitions) {
    w.int16String(t.topic);
    w.int32(t.partitions.length);
    for (const p of t.partitions) w.int32(p);
  }
  w.int64(txn.lastUpdateTimestampMs);
  w.int64(txn.startTimestampMs);
  return w.finish();
}

export function decodeTxnValue(bytes: Uint8Array): StoredTxn {
  const r = new Reader(bytes);
  checkVersion(r, "value", VALUE_VERSION);
  const producerId = r.int64();
  const lastProducerId = r.int64();
  const producerEpoch = r.int16();
  const lastProducerEpoch = r.int16();
  const timeoutMs = r.int32();
  const stateId = r.int8();
  const state = STATE_BY_ID.get(stateId);
  if (state === undefined) {
    throw new TxnRecordError(`Transaction state ${stateId} is unknown`);
  }
  const topicCount = r.int32Length();
  const partitions: TxnTopicPartitions[] = [];
  for (let i = 0; i < topicCount; i++) {
    const topic = readText(r, "Topic");
    const count = r.int32Length();
    const indexes: number[] = [];
    for (let j = 0; j < count; j++) indexes.push(r.int32());
    partitions.push({ topic, partitions: indexes });
  }
  const lastUpdateTimestampMs = r.int64();
  const startTimestampMs = r.int64();
  if (r.remaining !== 0) {
    throw new TxnRecordError(
      `Transaction log value has ${r.remaining} bytes after its last field`,
    );
  }
  return {
    producerId,
    lastProducerId,
    producerEpoch,
    lastProducerEpoch,
    timeoutMs,
    state,
    partitions,
    lastUpdateTimestampMs,
    startTimestampMs,
  };
}

/** The record that makes the log forget a transactional id. */
export function txnTombstone(transactionalId: string): {
  key: Uint8Array;
  value: null;
} {
  return { key: encodeTxnKey(transactionalId), value: null };
}
