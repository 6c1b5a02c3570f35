/**
 * The fixed header of a Kafka record batch (magic v2), read and patched in
 * place. Batches are stored and served as the producer wrote them; the broker
 * only sets the base offset and the partition leader epoch, both outside the
 * CRC, so no checksum is recomputed.
 */
import { crc32c, crc32cCombine } from "../util/mod.ts";

export const BATCH_HEADER_BYTES = 61;
/** Bytes before `batchLength`'s payload starts: baseOffset + batchLength. */
export const BATCH_LOG_OVERHEAD = 12;
const CRC_START = 21;

export const Off = {
  baseOffset: 0,
  batchLength: 8,
  partitionLeaderEpoch: 12,
  magic: 16,
  crc: 17,
  attributes: 21,
  lastOffsetDelta: 23,
  baseTimestamp: 27,
  maxTimestamp: 35,
  producerId: 43,
  producerEpoch: 51,
  baseSequence: 53,
  recordsCount: 57,
} as const;

export const Compression = {
  none: 0,
  gzip: 1,
  snappy: 2,
  lz4: 3,
  zstd: 4,
} as const;
export type CompressionCode = typeof Compression[keyof typeof Compression];

export interface BatchHeader {
  baseOffset: bigint;
  /** Total bytes of the batch on the wire, header included. */
  sizeBytes: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: bigint;
  maxTimestamp: bigint;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordsCount: number;
}

/** Why a record set was refused; the broker maps each to a Kafka error code. */
export type BatchProblem =
  | "truncated"
  | "unsupported-magic"
  | "bad-crc"
  | "bad-length"
  | "bad-count"
  | "bad-compression";

export class InvalidBatchError extends Error {
  override name = "InvalidBatchError";
  constructor(readonly problem: BatchProblem, message: string) {
    super(message);
  }
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Reads the header of the batch at `pos`; the caller has checked the size. */
export function readBatchHeader(bytes: Uint8Array, pos = 0): BatchHeader {
  const v = view(bytes);
  return {
    baseOffset: v.getBigInt64(pos + Off.baseOffset),
    sizeBytes: v.getInt32(pos + Off.batchLength) + BATCH_LOG_OVERHEAD,
    partitionLeaderEpoch: v.getInt32(pos + Off.partitionLeaderEpoch),
    magic: v.getInt8(pos + Off.magic),
    crc: v.getUint32(pos + Off.crc),
    attributes: v.getInt16(pos + Off.attributes),
    lastOffsetDelta: v.getInt32(pos + Off.lastOffsetDelta),
    baseTimestamp: v.getBigInt64(pos + Off.baseTimestamp),
    maxTimestamp: v.getBigInt64(pos + Off.maxTimestamp),
    producerId: v.getBigInt64(pos + Off.producerId),
    producerEpoch: v.getInt16(pos + Off.producerEpoch),
    baseSequence: v.getInt32(pos + Off.baseSequence),
    recordsCount: v.getInt32(pos + Off.recordsCount),
  };
}

/**
 * Size of the complete batch starting at `pos`, or 0 when fewer bytes than a
 * whole batch remain (a torn tail, or a fetch cut short by max bytes).
 */
export function completeBatchSize(bytes: Uint8Array, pos: number): number {
  if (bytes.length - pos < BATCH_LOG_OVERHEAD) return 0;
  const len = view(bytes).getInt32(pos + Off.batchLength);
  if (len < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD) return 0;
  const size = len + BATCH_LOG_OVERHEAD;
  return bytes.length - pos >= size ? size : 0;
}

/** True when the CRC-32C stored in the batch at `pos` matches its content. */
export function batchCrcOk(bytes: Uint8Array, pos: number, size: number) {
  const stored = view(bytes).getUint32(pos + Off.crc);
  return crc32c(bytes.subarray(pos + CRC_START, pos + size)) === stored;
}

/**
 * CRC-32C of a whole record set that validateRecordSet checked, read from
 * its batch headers alone: each batch's stored CRC is then the CRC of its
 * body, so only the 21 bytes before each body are read. The bytes outside
 * the bodies (base offsets, epochs) may have changed since the check.
 */
export function validatedRecordSetCrc32c(records: Uint8Array): number {
  const v = view(records);
  let crc = 0;
  for (let pos = 0; pos < records.length;) {
    const size = v.getInt32(pos + Off.batchLength) + BATCH_LOG_OVERHEAD;
    crc = crc32c(records.subarray(pos, pos + CRC_START), crc);
    crc = crc32cCombine(crc, v.getUint32(pos + Off.crc), size - CRC_START);
    pos += size;
  }
  return crc;
}

/**
 * Splits a produced record set into its batches, checking that each one is a
 * whole magic-v2 batch with a valid CRC (unless `crcChecked`: the caller
 * knows these bytes passed this check before). Throws InvalidBatchError
 * naming the first problem found.
 */
export function validateRecordSet(
  records: Uint8Array,
  opts: { crcChecked?: boolean; emptyAllowed?: boolean } = {},
): BatchHeader[] {
  const headers: BatchHeader[] = [];
  let pos = 0;
  if (records.length === 0) {
    throw new InvalidBatchError("truncated", "Record set is empty");
  }
  while (pos < records.length) {
    const rest = records.length - pos;
    if (rest < BATCH_LOG_OVERHEAD + 5) {
      throw new InvalidBatchError(
        "truncated",
        `Record set ends with ${rest} stray bytes at position ${pos}`,
      );
    }
    const magic = records[pos + Off.magic]!;
    if (magic !== 2) {
      throw new InvalidBatchError(
        "unsupported-magic",
        `Record batch magic ${magic} is not supported: only magic v2`,
      );
    }
    const size = completeBatchSize(records, pos);
    if (size === 0) {
      throw new InvalidBatchError(
        "bad-length",
        `Record batch at position ${pos} has a length beyond the record set`,
      );
    }
    if (opts.crcChecked !== true && !batchCrcOk(records, pos, size)) {
      throw new InvalidBatchError(
        "bad-crc",
        `Record batch at position ${pos} fails its CRC-32C check`,
      );
    }
    const header = readBatchHeader(records, pos);
    // Only a cleaned log holds empty batches (a producer's last sequence).
    const minRecords = opts.emptyAllowed === true ? 0 : 1;
    if (header.recordsCount < minRecords || header.lastOffsetDelta < 0) {
      throw new InvalidBatchError(
        "bad-count",
        `Record batch at position ${pos} holds ${header.recordsCount} records`,
      );
    }
    headers.push(header);
    pos += size;
  }
  return headers;
}

/** Rewrites the base offset and leader epoch of the batch at `pos`. */
export function stampBatch(
  bytes: Uint8Array,
  pos: number,
  stamp: { baseOffset: bigint; partitionLeaderEpoch: number },
): void {
  const v = view(bytes);
  v.setBigInt64(pos + Off.baseOffset, stamp.baseOffset);
  v.setInt32(pos + Off.partitionLeaderEpoch, stamp.partitionLeaderEpoch);
}

// Unlike the base offset and leader epoch, the attributes and maxTimestamp
// sit inside the CRC, so it is recomputed (as Kafka does for LogAppendTime).
/**
 * Marks every batch of a checked record set as LogAppendTime at
 * `timestampMs` (message.timestamp.type=LogAppendTime): the type bit set,
 * maxTimestamp replaced, each CRC recomputed. A partition leader stamps
 * before it proposes, so every Raft replica writes the same bytes.
 */
export function stampLogAppendTime(
  records: Uint8Array,
  timestampMs: bigint,
): void {
  const v = view(records);
  for (let pos = 0; pos < records.length;) {
    const size = v.getInt32(pos + Off.batchLength) + BATCH_LOG_OVERHEAD;
    v.setInt16(pos + Off.attributes, v.getInt16(pos + Off.attributes) | 0x08);
    v.setBigInt64(pos + Off.maxTimestamp, timestampMs);
    sealBatch(records, pos, size);
    pos += size;
  }
}

/** Sets the CRC-32C of the `size`-byte batch at `pos` after its fields changed. */
export function sealBatch(bytes: Uint8Array, pos: number, size: number): void {
  view(bytes).setUint32(
    pos + Off.crc,
    crc32c(bytes.subarray(pos + CRC_START, pos + size)),
  );
}

/** The compression codec named by a batch's attributes. */
export function batchCompression(attributes: number): number {
  return attributes & 0x07;
}

/** Attribute bit 4: the batch belongs to its producer's transaction. */
export const TRANSACTIONAL_BIT = 0x10;
/** Attribute bit 5: the batch holds a transaction marker. */
export const CONTROL_BIT = 0x20;

export function isControlBatch(attributes: number): boolean {
  return (attributes & CONTROL_BIT) !== 0;
}

/** The key of a control record: a version (0), then Kafka's ControlRecordType. */
const CONTROL_KEY_VERSION = 0;
const CONTROL_TYPES = ["abort", "commit"] as const;
export type ControlRecordType = (typeof CONTROL_TYPES)[number];

export function encodeControlKey(type: ControlRecordType): Uint8Array {
  const key = new Uint8Array(4);
  const v = view(key);
  v.setInt16(0, CONTROL_KEY_VERSION);
  v.setInt16(2, CONTROL_TYPES.indexOf(type));
  return key;
}

/**
 * What a control record's key says it is: a transaction marker's outcome,
 * or null for a version or type this broker does not know.
 */
export function controlRecordType(
  key: Uint8Array | null,
): ControlRecordType | null {
  if (key === null || key.length < 4) return null;
  const v = view(key);
  if (v.getInt16(0) !== CONTROL_KEY_VERSION) return null;
  return CONTROL_TYPES[v.getInt16(2)] ?? null;
}

/** Bit 4 of the attributes: the batch's timestamps are log-append times. */
export function isLogAppendTime(attributes: number): boolean {
  return (attributes & 0x08) !== 0;
}
