/**
 * Magic-v2 record batches as a client sees them: building one from records
 * and reading the records back out of a fetched record set.
 */
import { concatBytes } from "../util/mod.ts";
import { Reader, Writer } from "./codec.ts";
import { compress, decompress } from "./compression.ts";
import {
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD,
  batchCompression,
  batchCrcOk,
  completeBatchSize,
  Compression,
  type CompressionCode,
  CONTROL_BIT,
  InvalidBatchError,
  isControlBatch,
  isLogAppendTime,
  Off,
  readBatchHeader,
  sealBatch,
  TRANSACTIONAL_BIT,
} from "./record_batch.ts";
import type { BatchHeader } from "./record_batch.ts";

export interface RecordHeader {
  key: string;
  value: Uint8Array | null;
}

export interface Record {
  offset: bigint;
  timestamp: bigint;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
}

export interface RecordInput {
  key?: Uint8Array | null;
  value: Uint8Array | null;
  headers?: RecordHeader[];
  timestamp?: bigint;
}

export interface BuildBatchOptions {
  compression?: CompressionCode;
  baseOffset?: bigint;
  /** -1 (the default) for an idempotence-free producer. */
  producerId?: bigint;
  producerEpoch?: number;
  baseSequence?: number;
  /** Timestamp of records that carry none; defaults to the current time. */
  timestamp?: bigint;
  /** The batch belongs to its producer's transaction (attribute bit 4). */
  transactional?: boolean;
  /** The batch holds a transaction marker (attribute bit 5), uncompressed. */
  control?: boolean;
}

const MAGIC_V2 = 2;
const utf8 = new TextEncoder();

function writeNullableBytes(w: Writer, b: Uint8Array | null) {
  if (b === null) {
    w.varint(-1);
  } else {
    w.varint(b.length);
    w.bytes(b);
  }
}

function readNullableBytes(r: Reader): Uint8Array | null {
  const n = r.varint();
  if (n < -1) throw r.error(`negative length ${n}`);
  return n === -1 ? null : r.view(checkedLength(r, n));
}

function checkedLength(r: Reader, n: number): number {
  if (n > r.remaining) {
    throw r.error(`length ${n} exceeds the ${r.remaining} bytes left`);
  }
  return n;
}

/** Builds one magic-v2 batch with a correct CRC-32C. */
export function buildRecordBatch(
  records: readonly RecordInput[],
  opts: BuildBatchOptions = {},
): Uint8Array {
  if (records.length === 0) {
    throw new RangeError("Cannot build a record batch: no records given");
  }
  const now = opts.timestamp ?? BigInt(Date.now());
  const stamps = records.map((r) => r.timestamp ?? now);
  const baseTimestamp = stamps[0]!;
  const maxTimestamp = stamps.reduce((a, b) => (b > a ? b : a));

  const body = new Writer(1024);
  const one = new Writer(256);
  records.forEach((rec, i) => {
    one.pos = 0;
    one.int8(0);
    one.varlong(stamps[i]! - baseTimestamp);
    one.varint(i);
    writeNullableBytes(one, rec.key ?? null);
    writeNullableBytes(one, rec.value);
    const headers = rec.headers ?? [];
    one.varint(headers.length);
    for (const h of headers) {
      const key = utf8.encode(h.key);
      one.varint(key.length);
      one.bytes(key);
      writeNullableBytes(one, h.value);
    }
    const bytes = one.finish();
    body.varint(bytes.length);
    body.bytes(bytes);
  });
  const codec = opts.compression ?? Compression.none;
  const payload = compress(codec, body.finish());

  const w = new Writer(BATCH_HEADER_BYTES + payload.length);
  w.int64(opts.baseOffset ?? 0n);
  w.int32(BATCH_HEADER_BYTES - 12 + payload.length);
  w.int32(-1);
  w.int8(MAGIC_V2);
  w.int32(0);
  w.int16(
    codec | (opts.transactional === true ? TRANSACTIONAL_BIT : 0) |
      (opts.control === true ? CONTROL_BIT : 0),
  );
  w.int32(records.length - 1);
  w.int64(baseTimestamp);
  w.int64(maxTimestamp);
  w.int64(opts.producerId ?? -1n);
  w.int16(opts.producerEpoch ?? -1);
  w.int32(opts.baseSequence ?? -1);
  w.int32(records.length);
  w.bytes(payload);
  const batch = w.finish();
  sealBatch(batch, 0, batch.length);
  return batch;
}

/**
 * The record set with every batch not already in `codec` rewritten in it,
 * as a broker does for a topic whose compression.type is not `producer`:
 * the records section decompressed and compressed again, the length, codec
 * bits and CRC updated. Offsets, timestamps and the producer id, epoch and
 * sequence are kept, so idempotence still holds. Control batches, which
 * are never compressed, stay as they are. Answers `records` itself when no
 * batch changes. Expects a checked record set (validateRecordSet).
 */
export function recompressRecordSet(
  records: Uint8Array,
  codec: CompressionCode,
  level?: number,
): Uint8Array {
  const parts: Uint8Array[] = [];
  let changed = false;
  for (let pos = 0; pos < records.length;) {
    const size = completeBatchSize(records, pos);
    const batch = records.subarray(pos, pos + size);
    pos += size;
    const attributes = readBatchHeader(batch).attributes;
    const from = batchCompression(attributes);
    if (from === codec || isControlBatch(attributes)) {
      parts.push(batch);
      continue;
    }
    const payload = compress(
      codec,
      decompress(from, batch.subarray(BATCH_HEADER_BYTES)),
      level,
    );
    const out = new Uint8Array(BATCH_HEADER_BYTES + payload.length);
    out.set(batch.subarray(0, BATCH_HEADER_BYTES));
    out.set(payload, BATCH_HEADER_BYTES);
    const v = new DataView(out.buffer);
    v.setInt32(Off.batchLength, out.length - BATCH_LOG_OVERHEAD);
    v.setInt16(Off.attributes, (attributes & ~0x07) | codec);
    sealBatch(out, 0, out.length);
    parts.push(out);
    changed = true;
  }
  return changed ? concatBytes(parts) : records;
}

/**
 * Every whole batch in `bytes` with its header and records, control
 * batches (transaction markers) included. A partial trailing batch is
 * ignored (fetch responses may cut one short). Throws InvalidBatchError for
 * a bad magic or CRC and DecodeError for a malformed record.
 */
export function decodeBatches(
  bytes: Uint8Array,
): { header: BatchHeader; records: Record[] }[] {
  const out: { header: BatchHeader; records: Record[] }[] = [];
  let pos = 0;
  for (;;) {
    const size = completeBatchSize(bytes, pos);
    if (size === 0) break;
    const magic = bytes[pos + Off.magic]!;
    if (magic !== MAGIC_V2) {
      throw new InvalidBatchError(
        "unsupported-magic",
        `Record batch magic ${magic} at position ${pos} is not supported: only magic v2`,
      );
    }
    if (size < BATCH_HEADER_BYTES) {
      throw new InvalidBatchError(
        "bad-length",
        `Record batch at position ${pos} is shorter than its header`,
      );
    }
    if (!batchCrcOk(bytes, pos, size)) {
      throw new InvalidBatchError(
        "bad-crc",
        `Record batch at position ${pos} fails its CRC-32C check`,
      );
    }
    const header = readBatchHeader(bytes, pos);
    const payload = decompress(
      batchCompression(header.attributes),
      bytes.subarray(pos + BATCH_HEADER_BYTES, pos + size),
    );
    const records: Record[] = [];
    readRecords(new Reader(payload), header, records);
    out.push({ header, records });
    pos += size;
  }
  return out;
}

/**
 * The records of every whole batch in `bytes`, as decodeBatches reads them,
 * less the control batches (transaction markers), which hold no data.
 */
export function decodeRecordBatches(bytes: Uint8Array): Record[] {
  return decodeBatches(bytes).flatMap((b) =>
    isControlBatch(b.header.attributes) ? [] : b.records
  );
}

function readRecords(
  r: Reader,
  header: ReturnType<typeof readBatchHeader>,
  out: Record[],
) {
  const appendTime = isLogAppendTime(header.attributes);
  for (let i = 0; i < header.recordsCount; i++) {
    const length = checkedLength(r, r.varint());
    const end = r.pos + length;
    r.int8();
    const timestampDelta = r.varlong();
    const offsetDelta = r.varint();
    const key = readNullableBytes(r);
    const value = readNullableBytes(r);
    const headerCount = checkedLength(r, r.varint());
    const headers: RecordHeader[] = [];
    for (let h = 0; h < headerCount; h++) {
      const keyLength = r.varint();
      if (keyLength < 0) throw r.error(`header key length ${keyLength}`);
      const hkey = r.text(checkedLength(r, keyLength));
      headers.push({ key: hkey, value: readNullableBytes(r) });
    }
    if (r.pos !== end) {
      throw r.error(`record ${i} does not fill its ${length} bytes`);
    }
    out.push({
      offset: header.baseOffset + BigInt(offsetDelta),
      timestamp: appendTime
        ? header.maxTimestamp
        : header.baseTimestamp + timestampDelta,
      key,
      value,
      headers,
    });
  }
}
