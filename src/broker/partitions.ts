/**
 * The partition replicas this broker holds: one PartitionLog each, with
 * wake-ups for fetches that long-poll. A partition's Raft group applies its
 * committed record sets through `append`; the Raft WAL, not this log, is
 * what makes them durable.
 */
import {
  type BatchHeader,
  completeBatchSize,
  decodeBatches,
  ErrorCode,
  InvalidBatchError,
  isControlBatch,
  readBatchHeader,
  validateRecordSet,
} from "../protocol/mod.ts";
import {
  type CleanOptions,
  type CleanResult,
  DEFAULT_LOG_OPTIONS,
  type LogOptions,
  PartitionLog,
} from "../storage/mod.ts";
import {
  ProducerSequenceError,
  ProducerStateTable,
  type SequenceCheck,
} from "./producers/producer_state.ts";
import { markerOf } from "./transactions/marker_batch.ts";

export interface PartitionDefaults {
  segmentBytes: number;
  segmentMs: number;
  retentionMs: number;
  retentionBytes: number;
  indexIntervalBytes: number;
  maxMessageBytes: number;
}

/**
 * What clients wrote to and read from a replica while it led, for metrics:
 * plain numbers, so that the produce and fetch paths only add, and the
 * metrics page reads them at scrape time.
 */
export interface PartitionTraffic {
  bytesIn: number;
  recordsIn: number;
  bytesOut: number;
  recordsOut: number;
}

/** Records in the complete batches of a fetched record set. */
export function countRecords(records: Uint8Array): number {
  let count = 0;
  for (let pos = 0;;) {
    const size = completeBatchSize(records, pos);
    if (size === 0) return count;
    count += readBatchHeader(records, pos).lastOffsetDelta + 1;
    pos += size;
  }
}

export class Partition {
  readonly topic: string;
  readonly index: number;
  readonly log: PartitionLog;
  maxMessageBytes: number;
  /** The topic configs the log options were last taken from. */
  configs: Readonly<Record<string, string>>;
  /** Idempotent producers' recent batches, consulted by every append. */
  readonly producers = new ProducerStateTable();
  readonly traffic: PartitionTraffic = {
    bytesIn: 0,
    recordsIn: 0,
    bytesOut: 0,
    recordsOut: 0,
  };
  readonly #waiters = new Set<() => void>();
  /** Offsets below this are committed and visible to consumers. */
  #highWatermark: bigint;

  constructor(
    topic: string,
    index: number,
    opts: {
      log: PartitionLog;
      maxMessageBytes: number;
      configs: Readonly<Record<string, string>>;
    },
  ) {
    this.topic = topic;
    this.index = index;
    this.log = opts.log;
    this.maxMessageBytes = opts.maxMessageBytes;
    this.configs = opts.configs;
    // What survived recovery is on disk, so all of it is visible.
    this.#highWatermark = opts.log.logEndOffset;
  }

  get highWatermark(): bigint {
    return this.#highWatermark;
  }

  /**
   * Kafka's last stable offset: below it every transaction has ended, so
   * read_committed consumers read up to here. Every replica derives it
   * from its log alone, so it survives leader changes.
   */
  get lastStableOffset(): bigint {
    const first = this.producers.firstUnstableOffset();
    return first !== null && first < this.#highWatermark
      ? first
      : this.#highWatermark;
  }

  /** Moves the high watermark forward (never back) and wakes fetchers. */
  advanceHighWatermark(offset: bigint): void {
    if (offset <= this.#highWatermark) return;
    this.#highWatermark = offset;
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  /** Registers a one-shot wake-up for the next high-watermark move. */
  onData(wake: () => void): () => void {
    this.#waiters.add(wake);
    return () => this.#waiters.delete(wake);
  }
}

export function partitionKey(topic: string, index: number): string {
  return `${topic}\u0000${index}`;
}

/**
 * A topic's log options: its own configs over the broker's defaults. Kafka's
 * ranges reach past what the log takes (longs beyond 2^53, an index
 * interval of 0), so values are clamped to what means the same here.
 */
function topicLogOptions(
  defaults: PartitionDefaults,
  configs: Readonly<Record<string, string>>,
): LogOptions & { maxMessageBytes: number } {
  const num = (key: string, fallback: number, min: number) =>
    configs[key] === undefined
      ? fallback
      : Math.max(min, Math.min(Number(configs[key]), Number.MAX_SAFE_INTEGER));
  const policy = (configs["cleanup.policy"] ?? "delete").split(",").map((
    s,
  ) => s.trim());
  // Without "delete", Kafka removes no segment by age or size.
  const deletes = policy.includes("delete");
  return {
    segmentBytes: num("segment.bytes", defaults.segmentBytes, 1),
    segmentMs: num("segment.ms", defaults.segmentMs, 1),
    retentionMs: deletes ? num("retention.ms", defaults.retentionMs, -1) : -1,
    retentionBytes: deletes
      ? num("retention.bytes", defaults.retentionBytes, -1)
      : -1,
    indexIntervalBytes: num(
      "index.interval.bytes",
      defaults.indexIntervalBytes,
      1,
    ),
    maxMessageBytes: num("max.message.bytes", defaults.maxMessageBytes, 0),
    compact: policy.includes("compact"),
    deleteRetentionMs: num(
      "delete.retention.ms",
      DEFAULT_LOG_OPTIONS.deleteRetentionMs,
      0,
    ),
    minCleanableDirtyRatio: Math.min(
      1,
      Math.max(
        0,
        Number(
          configs["min.cleanable.dirty.ratio"] ??
            DEFAULT_LOG_OPTIONS.minCleanableDirtyRatio,
        ),
      ),
    ),
    minCompactionLagMs: num("min.compaction.lag.ms", 0, 0),
    maxCompactionLagMs: num(
      "max.compaction.lag.ms",
      Number.MAX_SAFE_INTEGER,
      0,
    ),
  };
}

export type AppendOutcome =
  | { ok: true; baseOffset: bigint; lastOffset: bigint }
  | {
    ok: false;
    error: InvalidBatchError | RecordTooLargeError | ProducerSequenceError;
  };

/** The Kafka error code a producer gets for an append refused. */
export function appendErrorCode(
  err: (AppendOutcome & { ok: false })["error"],
): number {
  if (err instanceof RecordTooLargeError) return ErrorCode.MESSAGE_TOO_LARGE;
  if (err instanceof ProducerSequenceError) return err.errorCode;
  // Magic v0/v1 message sets are refused outright rather than converted.
  return err.problem === "unsupported-magic"
    ? ErrorCode.UNSUPPORTED_VERSION
    : ErrorCode.CORRUPT_MESSAGE;
}

/** Bytes read per step when the producer state is rebuilt from the log. */
const SCAN_CHUNK_BYTES = 1 << 20;

type Marker = ReturnType<typeof markerOf>;

/** The transaction marker of the batch at `pos` of `bytes`, if it is one. */
function markerAt(h: BatchHeader, bytes: Uint8Array, pos: number): Marker {
  if (!isControlBatch(h.attributes)) return null;
  const [batch] = decodeBatches(bytes.subarray(pos, pos + h.sizeBytes));
  return batch === undefined ? null : markerOf(batch);
}

/** The marker of each batch of a record set, null for the data batches. */
function markersOf(
  records: Uint8Array,
  headers: readonly BatchHeader[],
): Marker[] {
  let pos = 0;
  return headers.map((h) => {
    const marker = markerAt(h, records, pos);
    pos += h.sizeBytes;
    return marker;
  });
}

/**
 * Records one batch, now at log offset `offset`, in its partition's
 * producer state; a marker, by the outcome its record holds.
 */
function recordBatch(
  p: Partition,
  h: BatchHeader,
  offset: bigint,
  marker: Marker,
): void {
  if (!isControlBatch(h.attributes)) {
    p.producers.record(h, offset);
  } else if (marker !== null) {
    p.producers.recordMarker(h, { offset, ...marker });
  }
}

/** Checks a record set's producers, and the coordinator of its markers. */
function checkProducers(
  p: Partition,
  headers: readonly BatchHeader[],
  markers: readonly Marker[],
): SequenceCheck {
  for (const [i, h] of headers.entries()) {
    const marker = markers[i] ?? null;
    if (marker === null) continue;
    const check = p.producers.checkMarker(h, marker.coordinatorEpoch);
    if (check.kind === "refused") return check;
  }
  return p.producers.checkRecordSet(headers);
}

/**
 * Replays the batch headers of a log into its producer state table. The
 * whole retained log is read: producer-state snapshots would bound this to
 * the tail.
 */
function rebuildProducerState(p: Partition): void {
  const log = p.log;
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const chunk = log.read(offset, { maxBytes: SCAN_CHUNK_BYTES });
    let pos = 0;
    for (;;) {
      const size = completeBatchSize(chunk, pos);
      if (size === 0) break;
      const h = readBatchHeader(chunk, pos);
      recordBatch(p, h, h.baseOffset, markerAt(h, chunk, pos));
      offset = h.baseOffset + BigInt(h.lastOffsetDelta) + 1n;
      pos += size;
    }
    if (pos === 0) break;
  }
}

export class RecordTooLargeError extends RangeError {
  override name = "RecordTooLargeError";
}

export class PartitionManager {
  readonly #dataDir: string;
  readonly #defaults: PartitionDefaults;
  readonly #partitions = new Map<string, Partition>();

  constructor(opts: { dataDir: string; defaults: PartitionDefaults }) {
    this.#dataDir = opts.dataDir;
    this.#defaults = opts.defaults;
  }

  #dir(topic: string, index: number): string {
    return `${this.#dataDir}/${topic}-${index}`;
  }

  /** Opens (recovering if needed) one partition replica. */
  openPartition(
    topic: { name: string; configs: Readonly<Record<string, string>> },
    index: number,
  ): Partition {
    const key = partitionKey(topic.name, index);
    const open = this.#partitions.get(key);
    if (open !== undefined) return open;
    const options = topicLogOptions(this.#defaults, topic.configs);
    const log = PartitionLog.open(this.#dir(topic.name, index), options);
    const p = new Partition(topic.name, index, {
      log,
      maxMessageBytes: options.maxMessageBytes,
      configs: topic.configs,
    });
    rebuildProducerState(p);
    this.#partitions.set(key, p);
    return p;
  }

  /** Takes altered topic configs into an open partition at once. */
  reconfigure(p: Partition, configs: Readonly<Record<string, string>>): void {
    if (p.configs === configs) return;
    const { maxMessageBytes, ...log } = topicLogOptions(
      this.#defaults,
      configs,
    );
    p.log.reconfigure(log);
    p.maxMessageBytes = maxMessageBytes;
    p.configs = configs;
  }

  /** Closes one partition and deletes its data. */
  dropPartition(p: Partition): void {
    const key = partitionKey(p.topic, p.index);
    if (this.#partitions.get(key) === p) {
      p.log.close();
      this.#partitions.delete(key);
    }
    PartitionLog.destroy(this.#dir(p.topic, p.index));
  }

  /**
   * Drops every offset at or after `offset` (a Raft replica cutting back to
   * what its log can replay) and rebuilds the producer state to match.
   */
  truncate(p: Partition, offset: bigint): void {
    p.log.truncateTo(offset);
    p.producers.clear();
    rebuildProducerState(p);
  }

  /**
   * Empties the log and restarts it at `offset`, beyond its end, with the
   * producer state of the dropped batches forgotten.
   */
  restartAt(p: Partition, offset: bigint): void {
    p.log.restartAt(offset);
    p.producers.clear();
  }

  get(topic: string, index: number): Partition | undefined {
    return this.#partitions.get(partitionKey(topic, index));
  }

  /**
   * Validates and appends a committed record set. Batches of idempotent producers are checked
   * here, on the path every replica runs: a retry is answered with the
   * offsets of the copy already in the log and not appended again.
   */
  append(
    p: Partition,
    records: Uint8Array,
    opts: {
      leaderEpoch?: number;
      crcChecked?: boolean;
      /** Copied from another replica's log: offsets (sparse when compacted) kept. */
      copied?: boolean;
    } = {},
  ): AppendOutcome {
    if (records.length > p.maxMessageBytes) {
      return {
        ok: false,
        error: new RecordTooLargeError(
          `Record set of ${records.length} bytes exceeds max.message.bytes ${p.maxMessageBytes}`,
        ),
      };
    }
    let headers: BatchHeader[];
    try {
      headers = validateRecordSet(records, {
        ...opts,
        emptyAllowed: opts.copied === true,
      });
    } catch (err) {
      if (err instanceof InvalidBatchError) return { ok: false, error: err };
      throw err;
    }
    const markers = markersOf(records, headers);
    const sequences = checkProducers(p, headers, markers);
    if (sequences.kind === "refused") {
      return {
        ok: false,
        error: new ProducerSequenceError(
          sequences.errorCode,
          sequences.message,
        ),
      };
    }
    if (sequences.kind === "duplicate") {
      return {
        ok: true,
        baseOffset: sequences.baseOffset,
        lastOffset: sequences.lastOffset,
      };
    }
    const { baseOffset, lastOffset } = p.log.append(records, headers, {
      ...opts,
      keepOffsets: opts.copied === true,
    });
    let offset = baseOffset;
    for (const [i, h] of headers.entries()) {
      recordBatch(p, h, offset, markers[i] ?? null);
      offset += BigInt(h.lastOffsetDelta) + 1n;
    }
    return { ok: true, baseOffset, lastOffset };
  }

  /**
   * Cleans every compacted partition once, one after another (each cleaning
   * yields between its chunks); stops early when `signal` aborts.
   */
  async clean(
    options: CleanOptions,
    signal: AbortSignal,
  ): Promise<{ partition: Partition; result: CleanResult }[]> {
    const done: { partition: Partition; result: CleanResult }[] = [];
    for (const p of [...this.#partitions.values()]) {
      if (signal.aborted) break;
      // Dropped meanwhile: its log is closed.
      if (this.#partitions.get(partitionKey(p.topic, p.index)) !== p) continue;
      const result = await p.log.clean(options);
      if (result !== null) done.push({ partition: p, result });
    }
    return done;
  }

  /** Moves the log start up to `offset` (DeleteRecords, a snapshot). */
  deleteRecordsBefore(p: Partition, offset: bigint): void {
    p.log.deleteRecordsBefore(offset);
    p.producers.trimBefore(p.log.logStartOffset);
  }

  /** Applies time and size retention to every partition. */
  enforceRetention(): number {
    let deleted = 0;
    for (const p of this.#partitions.values()) {
      deleted += p.log.enforceRetention().deletedSegments;
      p.producers.trimBefore(p.log.logStartOffset);
    }
    return deleted;
  }

  closeAll(): void {
    for (const p of this.#partitions.values()) p.log.close();
    this.#partitions.clear();
  }
}
