/**
 * Test helpers for the storage module: builds magic-v2 record batches with a
 * valid header and CRC-32C around filler payload bytes. The storage layer never
 * looks inside records, so real record encoding is not needed here. Never
 * imported by production code.
 */
import {
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD,
  type BatchHeader,
  Off,
  validateRecordSet,
} from "../protocol/mod.ts";
import { crc32c } from "../util/mod.ts";

export interface TestBatchOptions {
  /** Records the batch claims to hold (default 1). */
  records?: number;
  /** Filler bytes after the header (default 100). */
  payloadBytes?: number;
  /** Base and max timestamp (default 1_000). */
  timestampMs?: bigint;
  /** Seeds the filler pattern so batches differ byte for byte (default 0). */
  fill?: number;
}

export function makeBatch(options: TestBatchOptions = {}): Uint8Array {
  const records = options.records ?? 1;
  const payloadBytes = options.payloadBytes ?? 100;
  const timestampMs = options.timestampMs ?? 1_000n;
  const fill = options.fill ?? 0;
  const bytes = new Uint8Array(BATCH_HEADER_BYTES + payloadBytes);
  const view = new DataView(bytes.buffer);
  view.setBigInt64(Off.baseOffset, 0n);
  view.setInt32(Off.batchLength, bytes.length - BATCH_LOG_OVERHEAD);
  view.setInt32(Off.partitionLeaderEpoch, -1);
  view.setInt8(Off.magic, 2);
  view.setInt16(Off.attributes, 0);
  view.setInt32(Off.lastOffsetDelta, records - 1);
  view.setBigInt64(Off.baseTimestamp, timestampMs);
  view.setBigInt64(Off.maxTimestamp, timestampMs);
  view.setBigInt64(Off.producerId, -1n);
  view.setInt16(Off.producerEpoch, -1);
  view.setInt32(Off.baseSequence, -1);
  view.setInt32(Off.recordsCount, records);
  for (let i = BATCH_HEADER_BYTES; i < bytes.length; i++) {
    bytes[i] = (i * 31 + fill * 7) & 0xff;
  }
  view.setUint32(Off.crc, crc32c(bytes.subarray(Off.attributes)));
  return bytes;
}

/** Concatenates batches into one produced record set, validated as the broker would. */
export function makeRecordSet(
  batches: Uint8Array[],
): { records: Uint8Array; headers: BatchHeader[] } {
  const total = batches.reduce((n, b) => n + b.length, 0);
  const records = new Uint8Array(total);
  let pos = 0;
  for (const batch of batches) {
    records.set(batch, pos);
    pos += batch.length;
  }
  return { records, headers: validateRecordSet(records) };
}
