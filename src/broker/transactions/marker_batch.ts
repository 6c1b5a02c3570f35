/**
 * The transaction marker: the control batch that ends a producer's
 * transaction in one partition (Kafka's EndTransactionMarker: its key is
 * the control record type, abort or commit; its value a version and the
 * coordinator epoch). Partitions read it to end transactions; the
 * coordinator writes it.
 */
import {
  type BatchHeader,
  buildRecordBatch,
  controlRecordType,
  encodeControlKey,
  Reader,
  type Record,
  Writer,
} from "../../protocol/mod.ts";
import type { TxnResult } from "./txn_metadata.ts";

const MARKER_VERSION = 0;

export interface TxnMarker {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly result: TxnResult;
  /** The leader epoch of the coordinator's `__transaction_state` partition. */
  readonly coordinatorEpoch: number;
}

/** One control batch holding the marker, under the producer's id and epoch. */
export function encodeMarkerBatch(
  marker: TxnMarker,
  opts: { timestampMs: bigint },
): Uint8Array {
  const value = new Writer(6);
  value.int16(MARKER_VERSION);
  value.int32(marker.coordinatorEpoch);
  const key = encodeControlKey(marker.result);
  return buildRecordBatch([{ key, value: value.finish() }], {
    producerId: marker.producerId,
    producerEpoch: marker.producerEpoch,
    timestamp: opts.timestampMs,
    transactional: true,
    control: true,
  });
}

/**
 * The transaction marker a decoded control batch holds; null for a
 * control record of another kind.
 */
export function markerOf(
  batch: { header: BatchHeader; records: readonly Record[] },
): { producerId: bigint; result: TxnResult; coordinatorEpoch: number } | null {
  const [record] = batch.records;
  const result = controlRecordType(record?.key ?? null);
  if (result === null) return null;
  const value = record?.value ?? null;
  const coordinatorEpoch = value !== null && value.length >= 6
    ? new Reader(value, 2).int32()
    : -1;
  return { producerId: batch.header.producerId, result, coordinatorEpoch };
}
