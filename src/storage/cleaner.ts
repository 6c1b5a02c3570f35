/**
 * The log cleaner's record-level work, as Kafka's LogCleaner: a map from
 * each key to the offset of its latest record, and the rewrite of a batch
 * that keeps only the records the map names (plus keys it does not know).
 *
 * Rewritten batches keep their base offset, last offset delta, producer id,
 * epoch and base sequence, so offsets stay where they were (sparse) and an
 * idempotent producer's last sequence survives. A batch left with no
 * records is dropped, unless it is its producer's last one: then it stays
 * empty, as Kafka keeps it, to carry the sequence. Compressed batches are
 * recompressed with their codec.
 *
 * Tombstones follow KIP-534: the first cleaning that keeps one stamps the
 * batch with a delete horizon (attribute bit 6, the horizon in the base
 * timestamp) of now + delete.retention.ms; a cleaning after the horizon
 * drops them. A transaction marker whose transaction has no batch left is
 * stamped and dropped the same way.
 */
import {
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD,
  batchCompression,
  completeBatchSize,
  compress,
  type CompressionCode,
  type ControlRecordType,
  controlRecordType,
  decompress,
  isControlBatch,
  Off,
  readBatchHeader,
  Reader,
  sealBatch,
  TRANSACTIONAL_BIT,
  Writer,
} from "../protocol/mod.ts";

const DELETE_HORIZON_BIT = 0x40;
const CODEC_BITS = 0x07;
/** Map bookkeeping per key beyond its bytes (string, bigint, entry). */
const KEY_OVERHEAD_BYTES = 64;
const keyText = new TextDecoder("windows-1252");

/** A batch's key as a Map key; windows-1252 maps every byte to one char. */
function mapKey(key: Uint8Array): string {
  return keyText.decode(key);
}

/**
 * The latest offset of each key, within a memory budget, as of committed
 * writes: the keys of a transaction count from its commit marker on, and
 * never if it aborts or has no marker yet in the range mapped, so that
 * neither an aborted nor a possibly aborted record can shadow a committed
 * one.
 */
export class KeyMap {
  readonly #latest = new Map<string, bigint>();
  readonly #budgetBytes: number;
  #usedBytes = 0;
  /** Producer id to the base offset of its last batch seen. */
  readonly lastBatchOfProducer = new Map<bigint, bigint>();
  /** Producer id → where its transaction without a marker yet began. */
  readonly #txnStart = new Map<bigint, bigint>();
  /** Producer id → the keys its transaction wrote, until its marker. */
  readonly #pending = new Map<bigint, Map<string, bigint>>();
  /** Producer id → the spans (first offset, marker) of its aborts. */
  readonly #aborted = new Map<bigint, { first: bigint; last: bigint }[]>();

  constructor(budgetBytes: number) {
    this.#budgetBytes = budgetBytes;
  }

  get full(): boolean {
    return this.#usedBytes >= this.#budgetBytes;
  }

  get size(): number {
    return this.#latest.size;
  }

  latest(key: Uint8Array): bigint | undefined {
    return this.#latest.get(mapKey(key));
  }

  /** Whether a transactional batch at `offset` belongs to an aborted one. */
  aborted(producerId: bigint, offset: bigint): boolean {
    return this.#aborted.get(producerId)?.some((a) =>
      a.first <= offset && offset <= a.last
    ) ?? false;
  }

  /**
   * Notes only whose batches these are and which transactions they end (a
   * segment cleaned before, whose keys are already as compact as they go).
   */
  noteProducers(bytes: Uint8Array): void {
    this.#scan(bytes, { keys: false });
  }

  /** Notes every keyed record of the whole batches in `bytes`. */
  addBatches(bytes: Uint8Array): void {
    this.#scan(bytes, { keys: true });
  }

  #scan(bytes: Uint8Array, opts: { keys: boolean }): void {
    forEachBatch(bytes, (pos, size) => {
      const header = readBatchHeader(bytes, pos);
      const producerId = header.producerId;
      if (producerId >= 0n) {
        this.lastBatchOfProducer.set(producerId, header.baseOffset);
      }
      const records = () => readRecords(bytes, pos, size);
      if (isControlBatch(header.attributes)) {
        const outcome = controlRecordType(records()[0]?.key ?? null);
        if (outcome !== null) this.#end(producerId, outcome, header.baseOffset);
        return;
      }
      const transactional = (header.attributes & TRANSACTIONAL_BIT) !== 0;
      if (transactional && !this.#txnStart.has(producerId)) {
        this.#txnStart.set(producerId, header.baseOffset);
      }
      if (!opts.keys) return;
      let into = this.#latest;
      if (transactional) {
        into = this.#pending.get(producerId) ?? new Map();
        this.#pending.set(producerId, into);
      }
      for (const record of records()) {
        if (record.key === null) continue;
        this.#note(
          into,
          mapKey(record.key),
          header.baseOffset + BigInt(record.offsetDelta),
        );
      }
    });
  }

  #note(into: Map<string, bigint>, key: string, offset: bigint): void {
    if (!into.has(key)) this.#usedBytes += key.length + KEY_OVERHEAD_BYTES;
    into.set(key, offset);
  }

  /** A marker at `offset` ends the producer's transaction. */
  #end(producerId: bigint, outcome: ControlRecordType, offset: bigint): void {
    const first = this.#txnStart.get(producerId);
    this.#txnStart.delete(producerId);
    const written = this.#pending.get(producerId);
    this.#pending.delete(producerId);
    if (outcome === "abort") {
      if (first === undefined) return;
      const spans = this.#aborted.get(producerId) ?? [];
      spans.push({ first, last: offset });
      this.#aborted.set(producerId, spans);
      return;
    }
    // A record written outside the transaction after it may be newer.
    for (const [key, at] of written ?? []) {
      const newest = this.#latest.get(key);
      if (newest === undefined || newest < at) this.#latest.set(key, at);
    }
  }
}

/** Calls `each` with the position and size of every whole batch. */
export function forEachBatch(
  bytes: Uint8Array,
  each: (pos: number, size: number) => void,
): number {
  let pos = 0;
  for (;;) {
    const size = completeBatchSize(bytes, pos);
    if (size === 0) return pos;
    each(pos, size);
    pos += size;
  }
}

interface RawRecord {
  offsetDelta: number;
  timestamp: bigint;
  key: Uint8Array | null;
  tombstone: boolean;
  /** The record's bytes from its key on, copied unchanged. */
  tail: Uint8Array;
}

function readRecords(bytes: Uint8Array, pos: number, size: number) {
  const header = readBatchHeader(bytes, pos);
  const payload = decompress(
    batchCompression(header.attributes),
    bytes.subarray(pos + BATCH_HEADER_BYTES, pos + size),
  );
  const r = new Reader(payload);
  const out: RawRecord[] = [];
  for (let i = 0; i < header.recordsCount; i++) {
    const length = r.varint();
    const end = r.pos + length;
    r.int8();
    const timestamp = header.baseTimestamp + r.varlong();
    const offsetDelta = r.varint();
    const tailStart = r.pos;
    const keyLength = r.varint();
    const key = keyLength < 0 ? null : r.view(keyLength);
    const tombstone = r.varint() < 0;
    if (end > payload.length || end < r.pos) {
      throw r.error(`record ${i} overruns its batch`);
    }
    out.push({
      offsetDelta,
      timestamp,
      key,
      tombstone,
      tail: payload.subarray(tailStart, end),
    });
    r.pos = end;
  }
  return out;
}

export interface FilterContext {
  map: KeyMap;
  nowMs: number;
  deleteRetentionMs: number;
  /**
   * Lowered to the delete horizon of every batch kept with a tombstone, so
   * the log knows when a cleaning is due to drop them even if nothing new
   * is written.
   */
  tombstoneHorizonMs: number;
  /**
   * Producer id → whether any batch of its transaction in progress (in
   * offset order) was kept, until its marker says the transaction ended.
   */
  txnKept: Map<bigint, boolean>;
}

/**
 * The batch at `pos` as the cleaner keeps it: the same bytes when nothing
 * changes, a rewritten batch, or null when it goes entirely.
 */
export function cleanBatch(
  bytes: Uint8Array,
  pos: number,
  size: number,
  ctx: FilterContext,
): Uint8Array | null {
  const batch: Batch = {
    header: readBatchHeader(bytes, pos),
    original: bytes.subarray(pos, pos + size),
    records: () => readRecords(bytes, pos, size),
  };
  const { header } = batch;
  if (isControlBatch(header.attributes)) return cleanMarker(batch, ctx);
  const kept = cleanRecords(batch, ctx);
  if ((header.attributes & TRANSACTIONAL_BIT) !== 0) {
    const txnKept = ctx.txnKept.get(header.producerId) ?? false;
    ctx.txnKept.set(header.producerId, txnKept || kept !== null);
  }
  return kept;
}

/** A batch being cleaned: its header, its bytes, and its records read. */
interface Batch {
  readonly header: ReturnType<typeof readBatchHeader>;
  readonly original: Uint8Array;
  records(): RawRecord[];
}

function cleanRecords(batch: Batch, ctx: FilterContext): Uint8Array | null {
  const { header, original } = batch;
  const horizonSet = (header.attributes & DELETE_HORIZON_BIT) !== 0;
  const records = batch.records();
  // An aborted transaction's records are nobody's data: all go.
  const aborted = (header.attributes & TRANSACTIONAL_BIT) !== 0 &&
    ctx.map.aborted(header.producerId, header.baseOffset);
  const kept = aborted ? [] : records.filter((record) => {
    if (record.key === null) return true;
    const latest = ctx.map.latest(record.key);
    const offset = header.baseOffset + BigInt(record.offsetDelta);
    if (latest !== undefined && offset < latest) return false;
    return !(record.tombstone && horizonSet &&
      BigInt(ctx.nowMs) >= header.baseTimestamp);
  });
  const keepsTombstone = kept.some((r) => r.tombstone);
  const needsHorizon = !horizonSet && keepsTombstone;
  const baseTimestamp = needsHorizon ? newHorizon(ctx) : header.baseTimestamp;
  if (keepsTombstone) noteHorizon(ctx, baseTimestamp);
  if (kept.length === records.length && !needsHorizon) return original;
  const lastOfProducer = header.producerId >= 0n &&
    ctx.map.lastBatchOfProducer.get(header.producerId) === header.baseOffset;
  if (kept.length === 0 && !lastOfProducer) return null;
  return rewrite(batch, kept, {
    baseTimestamp,
    horizon: needsHorizon || horizonSet,
  });
}

/**
 * A marker stays while its transaction has a batch left in the log. Once
 * none is, it is stamped with a delete horizon as a tombstone is, and a
 * cleaning after the horizon drops it (as Kafka's cleaner does), so the
 * markers of long-finished transactions do not pile up in a compacted
 * topic such as __consumer_offsets.
 */
function cleanMarker(batch: Batch, ctx: FilterContext): Uint8Array | null {
  const { header, original } = batch;
  const txnKept = ctx.txnKept.get(header.producerId) ?? false;
  ctx.txnKept.delete(header.producerId);
  if (txnKept) return original;
  if ((header.attributes & DELETE_HORIZON_BIT) !== 0) {
    if (BigInt(ctx.nowMs) >= header.baseTimestamp) return null;
    noteHorizon(ctx, header.baseTimestamp);
    return original;
  }
  const baseTimestamp = newHorizon(ctx);
  noteHorizon(ctx, baseTimestamp);
  return rewrite(batch, batch.records(), { baseTimestamp, horizon: true });
}

/** The delete horizon a batch kept with a tombstone gets now. */
function newHorizon(ctx: FilterContext): bigint {
  return BigInt(ctx.nowMs + ctx.deleteRetentionMs);
}

/**
 * Lowers the context's next horizon to a kept batch's, so the log knows
 * when a cleaning is due even with nothing new.
 */
function noteHorizon(ctx: FilterContext, horizonMs: bigint): void {
  ctx.tombstoneHorizonMs = Math.min(ctx.tombstoneHorizonMs, Number(horizonMs));
}

/** The batch with only `kept` of its records, re-encoded and resealed. */
function rewrite(
  batch: Batch,
  kept: readonly RawRecord[],
  opts: { baseTimestamp: bigint; horizon: boolean },
): Uint8Array {
  const { header, original } = batch;
  const body = new Writer(original.length);
  const prefix = new Writer(32);
  for (const record of kept) {
    prefix.pos = 0;
    prefix.int8(0);
    prefix.varlong(record.timestamp - opts.baseTimestamp);
    prefix.varint(record.offsetDelta);
    const head = prefix.finish();
    body.varint(head.length + record.tail.length);
    body.bytes(head);
    body.bytes(record.tail);
  }
  const target = batchCompression(header.attributes) as CompressionCode;
  const payload = compress(target, body.finish());
  let attributes = (header.attributes & ~CODEC_BITS) | target;
  if (opts.horizon) attributes |= DELETE_HORIZON_BIT;
  const out = new Uint8Array(BATCH_HEADER_BYTES + payload.length);
  out.set(original.subarray(0, BATCH_HEADER_BYTES));
  out.set(payload, BATCH_HEADER_BYTES);
  const v = new DataView(out.buffer);
  v.setInt32(Off.batchLength, out.length - BATCH_LOG_OVERHEAD);
  v.setInt16(Off.attributes, attributes);
  v.setBigInt64(Off.baseTimestamp, opts.baseTimestamp);
  v.setInt32(Off.recordsCount, kept.length);
  sealBatch(out, 0, out.length);
  return out;
}
