/**
 * Kafka's per-partition log: a directory of segments named by base offset.
 * Appends are synchronous writes of whole record sets to the active segment;
 * durability is a separate `sync()` or `syncAsync()`, called when the owner
 * decides (a Raft state machine syncs in the background as data piles up,
 * and before each snapshot: until then its WAL holds the data). The state
 * machine drives the log directly: it appends committed batches, truncates
 * on conflicts and advances the start on snapshots.
 */
import {
  type BatchHeader,
  readBatchHeader,
  stampBatch,
} from "../protocol/mod.ts";
import { assert, writeAllSync } from "../util/mod.ts";
import { syncDirectory, writeFileAtomic } from "./atomic_file.ts";
import { cleanBatch, forEachBatch, KeyMap } from "./cleaner.ts";
import {
  MAX_RELATIVE_OFFSET,
  Segment,
  type SegmentFileKind,
  segmentFileName,
  type StampedBatch,
} from "./segment.ts";

export interface LogOptions {
  /** Roll when the active segment would grow beyond this. */
  segmentBytes: number;
  /** Roll when the active segment's first batch arrived this long ago. */
  segmentMs: number;
  /** Delete segments whose newest timestamp is older; -1 keeps all. */
  retentionMs: number;
  /** Delete the oldest segments while the log is larger; -1 keeps all. */
  retentionBytes: number;
  /** Bytes of log between two offset-index entries. */
  indexIntervalBytes: number;
  /** cleanup.policy holds compact: keep the last record per key. */
  compact: boolean;
  /** How long a tombstone outlives the cleaning that first saw it. */
  deleteRetentionMs: number;
  /** Dirty share of the closed segments' bytes that starts a cleaning. */
  minCleanableDirtyRatio: number;
  /** Records younger than this are never cleaned. */
  minCompactionLagMs: number;
  /** A dirty segment older than this is cleaned whatever the ratio. */
  maxCompactionLagMs: number;
  /** Wall clock in ms; injected by tests. */
  clock?: () => number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** Kafka's broker defaults. */
export const DEFAULT_LOG_OPTIONS: Readonly<
  Required<Omit<LogOptions, "clock">>
> = {
  segmentBytes: 1 << 30,
  segmentMs: 7 * DAY_MS,
  retentionMs: 7 * DAY_MS,
  retentionBytes: -1,
  indexIntervalBytes: 4096,
  compact: false,
  deleteRetentionMs: DAY_MS,
  minCleanableDirtyRatio: 0.5,
  minCompactionLagMs: 0,
  maxCompactionLagMs: Number.MAX_SAFE_INTEGER,
};

/** Positions in a segment are u32 on disk and int32 in Kafka's configs. */
const SEGMENT_BYTES_MAX = 0x7fff_ffff;
const LOG_START_FILE = "log-start-offset";
/** Offsets below this were cleaned by the last finished cleaning. */
const CLEANER_CHECKPOINT_FILE = "cleaner-offset-checkpoint";
/** When the earliest tombstone kept by the last cleaning may go, in ms. */
const TOMBSTONE_HORIZON_FILE = "cleaner-tombstone-horizon";
/** Bytes the cleaner reads between two yields to the event loop. */
const CLEAN_CHUNK_BYTES = 128 * 1024;

/** What bounds a cleaning; the broker's cleaner settings. */
export interface CleanOptions {
  /** Memory for the key map; at least one segment is mapped per cleaning. */
  keyMapBytes: number;
  /** Read plus written bytes per second; the cleaner sleeps to stay under. */
  ioBytesPerSec: number;
  /** A pause after every chunk: a test hook that widens the crash window. */
  chunkPauseMs?: number;
}

export interface CleanResult {
  readBytes: number;
  writtenBytes: number;
  /** Bytes of the segments cleaned before and after. */
  sourceBytes: number;
  targetBytes: number;
  durationMs: number;
}
const EMPTY = new Uint8Array(0);

/** A fetch or truncation asked for an offset the log does not hold. */
export class OffsetOutOfRangeError extends RangeError {
  override name = "OffsetOutOfRangeError";
  constructor(
    readonly offset: bigint,
    readonly logStartOffset: bigint,
    readonly logEndOffset: bigint,
  ) {
    super(
      `Offset ${offset} is out of range: the log holds [${logStartOffset}, ${logEndOffset}]`,
    );
  }
}

type ResolvedOptions = Required<Omit<LogOptions, "clock">> & {
  clock: () => number;
};

function resolveOptions(options: Partial<LogOptions>): ResolvedOptions {
  const resolved = {
    ...DEFAULT_LOG_OPTIONS,
    clock: Date.now,
    ...options,
  };
  checkInteger("segmentBytes", resolved.segmentBytes, 1, SEGMENT_BYTES_MAX);
  checkInteger("segmentMs", resolved.segmentMs, 1, Number.MAX_SAFE_INTEGER);
  checkInteger(
    "retentionMs",
    resolved.retentionMs,
    -1,
    Number.MAX_SAFE_INTEGER,
  );
  checkInteger(
    "retentionBytes",
    resolved.retentionBytes,
    -1,
    Number.MAX_SAFE_INTEGER,
  );
  checkInteger(
    "indexIntervalBytes",
    resolved.indexIntervalBytes,
    1,
    SEGMENT_BYTES_MAX,
  );
  for (
    const name of [
      "deleteRetentionMs",
      "minCompactionLagMs",
      "maxCompactionLagMs",
    ] as const
  ) {
    checkInteger(name, resolved[name], 0, Number.MAX_SAFE_INTEGER);
  }
  const ratio = resolved.minCleanableDirtyRatio;
  if (!(ratio >= 0 && ratio <= 1)) {
    throw new RangeError(
      `Log option minCleanableDirtyRatio must be in [0, 1]: got ${ratio}`,
    );
  }
  return resolved;
}

function checkInteger(name: string, value: number, min: number, max: number) {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Log option ${name} must be an integer in [${min}, ${max}]: got ${value}`,
    );
  }
}

export class PartitionLog {
  readonly #dir: string;
  #options: ResolvedOptions;
  // Invariant: never empty; ascending (each segment's nextOffset is at most
  // the next one's baseOffset: equal until compaction empties a segment's
  // tail); the last one is active.
  #segments: Segment[];
  // Invariant: logStartOffset <= logEndOffset, and segments[0].baseOffset <=
  // logStartOffset unless compaction emptied the segments in between.
  #logStartOffset: bigint;
  // Invariant: durableEndOffset <= logEndOffset.
  #durableEndOffset: bigint;
  #unsynced = new Set<Segment>();
  // Directory entries created or removed, and how many of those a finished
  // sync covers; counters, so a background sync cannot claim later changes.
  #directoryChanges = 0;
  #directorySynced = 0;
  // The end each running syncAsync may make durable; truncateTo lowers
  // them, so no sync claims offsets rewritten after it began.
  #syncTargets = new Set<{ end: bigint }>();
  #closed = false;
  // Invariant: at most logEndOffset; below it every key's older records
  // are gone (as of the last finished cleaning).
  #cleanedEndOffset: bigint;
  /** Infinity when the cleaned part holds no tombstone. */
  #tombstoneHorizonMs: number;
  #cleaning = false;

  private constructor(
    dir: string,
    options: ResolvedOptions,
    segments: Segment[],
    logStartOffset: bigint,
  ) {
    this.#dir = dir;
    this.#options = options;
    this.#segments = segments;
    this.#logStartOffset = logStartOffset;
    this.#durableEndOffset = this.#active.baseOffset;
    const checkpoint = readOffsetFile(dir, CLEANER_CHECKPOINT_FILE) ?? 0n;
    this.#cleanedEndOffset = checkpoint > this.logEndOffset
      ? this.logEndOffset
      : checkpoint;
    const horizon = readOffsetFile(dir, TOMBSTONE_HORIZON_FILE);
    this.#tombstoneHorizonMs = horizon === null ? Infinity : Number(horizon);
  }

  /**
   * Opens (creating if needed) the log in `dir` and recovers it: every
   * segment is checked from its last trusted index entry, the first torn or
   * corrupt batch ends the log, and whatever follows it is deleted.
   */
  static open(dir: string, options: Partial<LogOptions> = {}): PartitionLog {
    const resolved = resolveOptions(options);
    Deno.mkdirSync(dir, { recursive: true });
    const segmentOptions = {
      indexIntervalBytes: resolved.indexIntervalBytes,
      nowMs: resolved.clock(),
    };
    const segments: Segment[] = [];
    const dropped: bigint[] = [];
    // Nothing may follow a cut or an overlap: the log stays one prefix.
    let ended = false;
    for (const baseOffset of listSegments(dir)) {
      const previous = segments.at(-1);
      if (previous !== undefined && previous.nextOffset > baseOffset) {
        ended = true;
      }
      if (ended) {
        dropped.push(baseOffset);
        continue;
      }
      const { segment, truncated } = Segment.open(
        dir,
        baseOffset,
        segmentOptions,
      );
      segments.push(segment);
      ended = truncated;
    }
    // Newest first, so a crash in between still leaves a prefix.
    for (const baseOffset of dropped.reverse()) {
      console.warn(
        `Deleting ${dir}/${segmentFileName(baseOffset, "log")}: ` +
          `it overlaps or follows a truncated segment`,
      );
      removeSegmentFiles(dir, baseOffset);
    }
    const checkpoint = readOffsetFile(dir, LOG_START_FILE);
    if (segments.length === 0) {
      segments.push(Segment.create(dir, checkpoint ?? 0n, segmentOptions));
    }
    const first = segments[0]!;
    const end = segments.at(-1)!.nextOffset;
    let start = checkpoint ?? first.baseOffset;
    if (start < first.baseOffset) start = first.baseOffset;
    if (start > end) start = end;
    const log = new PartitionLog(dir, resolved, segments, start);
    for (const segment of segments) {
      if (segment.hasUnsyncedWrites) log.#unsynced.add(segment);
    }
    log.#directoryChanges++;
    // What recovery read may sit only in the page cache (after a kill -9);
    // make it durable so durableEndOffset can start at the end.
    log.sync();
    return log;
  }

  /** Deletes a partition's whole directory (topic deletion). */
  static destroy(dir: string): void {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }

  /** First offset still held. */
  /**
   * Changes options from the next append or retention pass on (a topic's
   * configs were altered); segments already written keep their layout.
   */
  reconfigure(options: Omit<LogOptions, "clock">): void {
    this.#options = resolveOptions({ ...options, clock: this.#options.clock });
  }

  /** cleanup.policy holds compact: clean() keeps the last record per key. */
  get compacted(): boolean {
    return this.#options.compact;
  }

  get logStartOffset(): bigint {
    return this.#logStartOffset;
  }

  /** Next offset to assign. */
  get logEndOffset(): bigint {
    return this.#active.nextOffset;
  }

  /** Bytes of record batches held in the segment files. */
  get sizeBytes(): number {
    return this.#segments.reduce((n, s) => n + s.sizeBytes, 0);
  }

  /** Every offset below this is fdatasync'ed. */
  get durableEndOffset(): bigint {
    return this.#durableEndOffset;
  }

  get #active(): Segment {
    return this.#segments.at(-1)!;
  }

  /**
   * Appends validated magic-v2 batches (`records` as the producer sent them,
   * `headers` from validateRecordSet): stamps their base offsets, and the
   * leader epoch when given, in place, then writes them with one write. Not
   * durable until sync().
   */
  append(
    records: Uint8Array,
    headers: readonly BatchHeader[],
    options: { leaderEpoch?: number; keepOffsets?: boolean } = {},
  ): { baseOffset: bigint; lastOffset: bigint } {
    this.#checkOpen();
    assert(headers.length > 0, "Append needs at least one batch");
    const { leaderEpoch, keepOffsets } = options;
    let offset = this.logEndOffset;
    let position = 0;
    const stamped: StampedBatch[] = [];
    for (const header of headers) {
      // A copy of another replica's compacted log keeps its sparse offsets;
      // a batch not stamped yet (below the end) continues the log.
      if (keepOffsets === true && header.baseOffset > offset) {
        offset = header.baseOffset;
      }
      stampBatch(records, position, {
        baseOffset: offset,
        partitionLeaderEpoch: leaderEpoch ?? header.partitionLeaderEpoch,
      });
      stamped.push({
        baseOffset: offset,
        lastOffsetDelta: header.lastOffsetDelta,
        maxTimestamp: header.maxTimestamp,
        sizeBytes: header.sizeBytes,
      });
      offset += BigInt(header.lastOffsetDelta) + 1n;
      position += header.sizeBytes;
    }
    assert(position === records.length, "Headers must cover the record set", {
      position,
      recordsBytes: records.length,
    });
    const baseOffset = stamped[0]!.baseOffset;
    const lastOffset = offset - 1n;
    const nowMs = this.#options.clock();
    this.#maybeRoll({
      sizeBytes: records.length,
      baseOffset,
      lastOffset,
      nowMs,
    });
    const active = this.#active;
    active.append(records, stamped, { nowMs });
    this.#unsynced.add(active);
    return { baseOffset, lastOffset };
  }

  /**
   * Moves the log end up to `offset` with nothing in between: a copy of a
   * compacted log whose last batches before `offset` were cleaned away.
   */
  skipTo(offset: bigint): void {
    this.#checkOpen();
    if (offset <= this.logEndOffset) return;
    const active = this.#active;
    if (active.sizeBytes > 0) this.#roll(offset);
    else {
      active.delete();
      this.#unsynced.delete(active);
      this.#segments[this.#segments.length - 1] = Segment.create(
        this.#dir,
        offset,
        this.#options,
      );
      this.#directoryChanges++;
    }
  }

  #maybeRoll(
    next: {
      sizeBytes: number;
      baseOffset: bigint;
      lastOffset: bigint;
      nowMs: number;
    },
  ): void {
    const active = this.#active;
    if (active.sizeBytes === 0) {
      // An empty active segment may start below a copied batch's gap.
      if (next.lastOffset - active.baseOffset > MAX_RELATIVE_OFFSET) {
        this.skipTo(next.baseOffset);
      }
      return;
    }
    const rollStartMs = active.rollStartMs;
    if (
      active.sizeBytes + next.sizeBytes > this.#options.segmentBytes ||
      next.lastOffset - active.baseOffset > MAX_RELATIVE_OFFSET ||
      (rollStartMs !== null &&
        next.nowMs - rollStartMs >= this.#options.segmentMs)
    ) {
      this.#roll(next.baseOffset);
    }
  }

  #roll(nextBaseOffset?: bigint): void {
    const sealed = this.#active;
    assert(sealed.sizeBytes > 0, "Only a non-empty segment is rolled");
    // A sealed segment's index files are written once its data is durable:
    // now if it already is, else by the sync() that makes it so.
    if (!sealed.hasUnsyncedWrites) sealed.writeIndexFiles();
    this.#segments.push(
      Segment.create(
        this.#dir,
        nextBaseOffset ?? sealed.nextOffset,
        this.#options,
      ),
    );
    this.#directoryChanges++;
  }

  /** fdatasyncs every segment with unsynced writes; advances durableEndOffset. */
  sync(): void {
    this.#checkOpen();
    const end = this.logEndOffset;
    const directoryChanges = this.#directoryChanges;
    if (directoryChanges !== this.#directorySynced) {
      syncDirectory(this.#dir);
      this.#directorySynced = directoryChanges;
    }
    const active = this.#active;
    for (const segment of this.#unsynced) {
      segment.sync();
      if (segment !== active) segment.writeIndexFiles();
    }
    this.#unsynced.clear();
    this.#durableEndOffset = end;
  }

  /**
   * Like sync(), but the fdatasyncs run off the event loop, so appends (and
   * everything else) go on meanwhile. When it resolves, durableEndOffset
   * covers what was appended before the call; later appends wait for the
   * next sync. A sync() or close() in between is harmless.
   */
  async syncAsync(): Promise<void> {
    this.#checkOpen();
    const target = { end: this.logEndOffset };
    const directoryChanges = this.#directoryChanges;
    const segments = [...this.#unsynced];
    const syncs = segments.map((segment) =>
      segment.syncAsync().catch((error) => {
        // A segment deleted meanwhile (retention, truncation) or a log
        // closed meanwhile (close() syncs first) has nothing left to lose.
        if (!this.#closed && this.#segments.includes(segment)) throw error;
      })
    );
    if (directoryChanges !== this.#directorySynced) {
      syncs.push(syncDirectoryAsync(this.#dir));
    }
    this.#syncTargets.add(target);
    try {
      await Promise.all(syncs);
    } finally {
      this.#syncTargets.delete(target);
    }
    // close() synced everything itself before closing the files.
    if (this.#closed) return;
    if (directoryChanges > this.#directorySynced) {
      this.#directorySynced = directoryChanges;
    }
    const active = this.#active;
    for (const segment of segments) {
      // Written again meanwhile, or already handled by a sync() or deletion.
      if (segment.hasUnsyncedWrites || !this.#unsynced.delete(segment)) {
        continue;
      }
      if (segment !== active) segment.writeIndexFiles();
    }
    if (target.end > this.#durableEndOffset) {
      this.#durableEndOffset = target.end;
    }
  }

  /**
   * Whole batches from the one holding `offset`, up to `maxBytes` but always
   * at least that batch (KIP-74), from one segment, and only batches that end
   * below `maxOffset` (exclusive; the high watermark). Empty at the end.
   */
  read(
    offset: bigint,
    options: { maxBytes: number; maxOffset?: bigint },
  ): Uint8Array {
    this.#checkOpen();
    if (!Number.isInteger(options.maxBytes) || options.maxBytes < 0) {
      throw new RangeError(
        `Fetch maxBytes must be a non-negative integer: got ${options.maxBytes}`,
      );
    }
    const end = this.logEndOffset;
    if (offset < this.#logStartOffset || offset > end) {
      throw new OffsetOutOfRangeError(offset, this.#logStartOffset, end);
    }
    const limit = options.maxOffset === undefined || options.maxOffset > end
      ? end
      : options.maxOffset;
    if (offset >= limit) return EMPTY;
    const { segment, from } = this.#segmentFor(offset);
    if (from >= limit) return EMPTY;
    return segment.read(from, {
      maxBytes: options.maxBytes,
      maxOffset: limit,
    });
  }

  /**
   * The segment holding `offset` and where to read it from: an offset in the
   * gap after a compacted segment is read from the next segment's start.
   */
  #segmentFor(offset: bigint): { segment: Segment; from: bigint } {
    let lo = 0;
    let hi = this.#segments.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#segments[mid]!.baseOffset <= offset) lo = mid + 1;
      else hi = mid;
    }
    // Compaction may empty the first segments: logStartOffset stays put.
    const segment = this.#segments[lo === 0 ? 0 : lo - 1]!;
    if (offset < segment.baseOffset) {
      return { segment, from: segment.baseOffset };
    }
    if (offset < segment.nextOffset) return { segment, from: offset };
    const next = this.#segments[lo] ?? segment;
    return { segment: next, from: next.baseOffset };
  }

  /**
   * The first batch whose maxTimestamp is >= `timestampMs` (ListOffsets), as
   * its base offset, or null. A batch straddling logStartOffset answers with
   * logStartOffset, which may be a little early but never skips a record.
   */
  offsetForTimestamp(
    timestampMs: bigint,
  ): { offset: bigint; timestamp: bigint } | null {
    this.#checkOpen();
    for (const segment of this.#visibleSegments()) {
      const hit = segment.offsetForTimestamp(Number(timestampMs));
      if (hit !== null) return this.#clampToStart(hit);
    }
    return null;
  }

  /** The batch with the greatest timestamp (ListOffsets -3), or null. */
  maxTimestamp(): { offset: bigint; timestamp: bigint } | null {
    this.#checkOpen();
    let best: { offset: bigint; timestamp: bigint } | null = null;
    for (const segment of this.#visibleSegments()) {
      const largest = segment.largestTimestamp();
      if (
        largest !== null &&
        (best === null || largest.timestamp > best.timestamp)
      ) {
        best = largest;
      }
    }
    return best === null ? null : this.#clampToStart(best);
  }

  #visibleSegments(): Segment[] {
    return this.#segments.filter((s) => s.nextOffset > this.#logStartOffset);
  }

  #clampToStart(
    hit: { offset: bigint; timestamp: bigint },
  ): { offset: bigint; timestamp: bigint } {
    return hit.offset < this.#logStartOffset
      ? { offset: this.#logStartOffset, timestamp: hit.timestamp }
      : hit;
  }

  /**
   * Deletes the oldest segments that are below logStartOffset, past
   * retentionMs, or beyond retentionBytes, and moves logStartOffset past them.
   * The active segment is never deleted; when it too is past retentionMs (or
   * below the start) it is first rolled, so an empty active segment keeps the
   * log's offsets.
   */
  enforceRetention(): { deletedSegments: number } {
    this.#checkOpen();
    const nowMs = this.#options.clock();
    const { retentionMs, retentionBytes } = this.#options;
    let totalBytes = this.sizeBytes;
    let deletedSegments = 0;
    // Bounded: each pass deletes a segment, or rolls once and then deletes.
    for (;;) {
      const oldest = this.#segments[0]!;
      const largest = oldest.largestTimestamp();
      const expired = oldest.nextOffset <= this.#logStartOffset ||
        (retentionMs >= 0 && largest !== null &&
          nowMs - Number(largest.timestamp) > retentionMs);
      const oversize = retentionBytes >= 0 &&
        totalBytes - oldest.sizeBytes >= retentionBytes;
      if (this.#segments.length === 1) {
        if (!expired || oldest.sizeBytes === 0) break;
        this.#roll();
      } else if (!expired && !oversize) {
        break;
      }
      this.#segments.shift();
      this.#unsynced.delete(oldest);
      oldest.delete();
      totalBytes -= oldest.sizeBytes;
      deletedSegments++;
    }
    const first = this.#segments[0]!.baseOffset;
    if (this.#logStartOffset < first) this.#logStartOffset = first;
    return { deletedSegments };
  }

  /**
   * Compacts the closed segments (cleanup.policy=compact): keeps the latest
   * record of every key, as of the dirty segments mapped this time, and
   * rewrites each group of segments into one. Runs in chunks with yields
   * and sleeps (`options` bounds its memory and I/O), so appends and reads
   * go on meanwhile; the active segment is never touched. Each group is
   * swapped in atomically (see #installSwap). Null when nothing was due.
   */
  async clean(options: CleanOptions): Promise<CleanResult | null> {
    this.#checkOpen();
    if (!this.#options.compact || this.#cleaning) return null;
    const plan = this.#planCleaning();
    if (plan === null) return null;
    this.#cleaning = true;
    try {
      return await this.#runCleaning(plan, options);
    } finally {
      this.#cleaning = false;
    }
  }

  /** The closed segments a cleaning covers and where its dirty part starts. */
  #planCleaning(): { segments: Segment[]; firstDirty: number } | null {
    const nowMs = this.#options.clock();
    const { minCompactionLagMs, maxCompactionLagMs, minCleanableDirtyRatio } =
      this.#options;
    const closed = this.#segments.slice(0, -1).filter((segment) =>
      segment.nextOffset > this.#logStartOffset
    );
    let cleanBytes = 0;
    let dirtyBytes = 0;
    let overdue = false;
    let firstDirty = -1;
    let end = 0;
    for (const [i, segment] of closed.entries()) {
      if (segment.nextOffset <= this.#cleanedEndOffset) {
        cleanBytes += segment.sizeBytes;
        end = i + 1;
        continue;
      }
      const largest = segment.largestTimestamp();
      if (
        largest !== null &&
        nowMs - Number(largest.timestamp) < minCompactionLagMs
      ) break;
      if (firstDirty < 0) firstDirty = i;
      dirtyBytes += segment.sizeBytes;
      const start = segment.rollStartMs;
      if (start !== null && nowMs - start > maxCompactionLagMs) overdue = true;
      end = i + 1;
    }
    if (firstDirty < 0 || dirtyBytes === 0) {
      // Nothing new to clean, but tombstones past their horizon: a pass
      // over the cleaned segments alone drops them.
      const due = nowMs >= this.#tombstoneHorizonMs && end > 0;
      return due ? { segments: closed.slice(0, end), firstDirty: end } : null;
    }
    const ratio = dirtyBytes / (cleanBytes + dirtyBytes);
    if (ratio < minCleanableDirtyRatio && !overdue) return null;
    return { segments: closed.slice(0, end), firstDirty };
  }

  async #runCleaning(
    plan: { segments: Segment[]; firstDirty: number },
    options: CleanOptions,
  ): Promise<CleanResult | null> {
    const startedMs = Date.now();
    const throttle = new Throttle(options);
    const map = new KeyMap(options.keyMapBytes);
    // Keys come from the dirty segments, as many as the map holds; every
    // segment up to the last mapped one is then rewritten with that map.
    let mapped = 0;
    for (const [i, segment] of plan.segments.entries()) {
      const dirty = i >= plan.firstDirty;
      const alive = await this.#scanSegment(segment, throttle, (chunk) => {
        if (dirty) map.addBatches(chunk);
        else map.noteProducers(chunk);
      });
      if (!alive) return null;
      mapped = i + 1;
      if (dirty && map.full) break;
    }
    const segments = plan.segments.slice(0, mapped);
    const nowMs = this.#options.clock();
    const result: CleanResult = {
      readBytes: throttle.readBytes,
      writtenBytes: 0,
      sourceBytes: 0,
      targetBytes: 0,
      durationMs: 0,
    };
    const ctx = {
      map,
      nowMs,
      deleteRetentionMs: this.#options.deleteRetentionMs,
      tombstoneHorizonMs: Infinity,
      txnKept: new Map(),
    };
    for (const group of this.#groupsOf(segments)) {
      const target = await this.#writeCleaned(group, throttle, ctx);
      if (target === null) return null;
      result.sourceBytes += group.reduce((n, s) => n + s.sizeBytes, 0);
      result.targetBytes += target.sizeBytes;
    }
    this.#cleanedEndOffset = segments.at(-1)!.nextOffset;
    // Every cleaned segment was rewritten and swapped in just now, so the
    // horizon seen is the whole cleaned part's.
    this.#tombstoneHorizonMs = ctx.tombstoneHorizonMs;
    const horizonPath = `${this.#dir}/${TOMBSTONE_HORIZON_FILE}`;
    if (Number.isFinite(ctx.tombstoneHorizonMs)) {
      writeFileAtomic(horizonPath, `${ctx.tombstoneHorizonMs}\n`);
    } else {
      removeIfPresent(horizonPath);
    }
    writeFileAtomic(
      `${this.#dir}/${CLEANER_CHECKPOINT_FILE}`,
      `${this.#cleanedEndOffset}\n`,
    );
    result.readBytes = throttle.readBytes;
    result.writtenBytes = throttle.writtenBytes;
    result.durationMs = Date.now() - startedMs;
    return result;
  }

  /** Runs of consecutive segments that fit in one segment when cleaned. */
  #groupsOf(segments: Segment[]): Segment[][] {
    const groups: Segment[][] = [];
    let group: Segment[] = [];
    let bytes = 0;
    for (const segment of segments) {
      const first = group[0];
      if (
        first !== undefined &&
        (bytes + segment.sizeBytes > this.#options.segmentBytes ||
          segment.nextOffset - first.baseOffset > MAX_RELATIVE_OFFSET)
      ) {
        groups.push(group);
        group = [];
        bytes = 0;
      }
      group.push(segment);
      bytes += segment.sizeBytes;
    }
    if (group.length > 0) groups.push(group);
    return groups;
  }

  /**
   * Feeds the segment's batches to `each` chunk by chunk, yielding between
   * chunks; false when the segment left the log meanwhile (retention, a
   * truncation), which ends the cleaning.
   */
  async #scanSegment(
    segment: Segment,
    throttle: Throttle,
    each: (chunk: Uint8Array) => void,
  ): Promise<boolean> {
    let offset = segment.baseOffset;
    while (offset < segment.nextOffset) {
      if (this.#closed || !this.#segments.includes(segment)) return false;
      const chunk = segment.read(offset, {
        maxBytes: CLEAN_CHUNK_BYTES,
        maxOffset: segment.nextOffset,
      });
      each(chunk);
      forEachBatch(chunk, (pos) => {
        const header = readBatchHeader(chunk, pos);
        offset = header.baseOffset + BigInt(header.lastOffsetDelta) + 1n;
      });
      throttle.read(chunk.length);
      await throttle.pause();
    }
    return !this.#closed && this.#segments.includes(segment);
  }

  /**
   * Writes the cleaned copy of `group` and swaps it in; null when the
   * group's segments left the log meanwhile (nothing is swapped then).
   */
  async #writeCleaned(
    group: Segment[],
    throttle: Throttle,
    ctx: Parameters<typeof cleanBatch>[3],
  ): Promise<{ sizeBytes: number } | null> {
    const first = group[0]!;
    const last = group.at(-1)!;
    const path = `${this.#dir}/${segmentFileName(first.baseOffset, "log")}`;
    const cleanedPath = `${path}.cleaned`;
    const file = Deno.openSync(cleanedPath, {
      write: true,
      create: true,
      truncate: true,
    });
    let sizeBytes = 0;
    let alive = true;
    try {
      for (const segment of group) {
        alive = await this.#scanSegment(segment, throttle, (chunk) => {
          forEachBatch(chunk, (pos, size) => {
            const kept = cleanBatch(chunk, pos, size, ctx);
            if (kept === null) return;
            writeAllSync(file, kept);
            sizeBytes += kept.length;
            throttle.write(kept.length);
          });
        });
        if (!alive) break;
      }
      if (alive) file.syncDataSync();
    } finally {
      file.close();
    }
    if (!alive) {
      // Gone with its directory if the topic was deleted meanwhile.
      removeIfPresent(cleanedPath);
      return null;
    }
    // From here on no await: the log cannot change under the swap.
    const swapPath = `${path}.${last.nextOffset}.swap`;
    Deno.renameSync(cleanedPath, swapPath);
    syncDirectory(this.#dir);
    installSwap(this.#dir, {
      baseOffset: first.baseOffset,
      endOffset: last.nextOffset,
      empty: sizeBytes === 0,
    });
    const at = this.#segments.indexOf(first);
    for (const segment of group) {
      segment.close();
      this.#unsynced.delete(segment);
    }
    const replacement: Segment[] = [];
    if (sizeBytes > 0) {
      const { segment } = Segment.open(this.#dir, first.baseOffset, {
        indexIntervalBytes: this.#options.indexIntervalBytes,
        nowMs: this.#options.clock(),
      });
      // Synced above; this writes its index files at the next sync.
      this.#unsynced.add(segment);
      replacement.push(segment);
    }
    this.#segments.splice(at, group.length, ...replacement);
    return { sizeBytes };
  }

  /**
   * Moves logStartOffset up to `offset` (DeleteRecords, snapshots); the
   * segments below it go at the next enforceRetention(). Persisted so that
   * deleted records stay deleted across a restart.
   */
  deleteRecordsBefore(offset: bigint): void {
    this.#checkOpen();
    const end = this.logEndOffset;
    if (offset > end) {
      throw new OffsetOutOfRangeError(offset, this.#logStartOffset, end);
    }
    if (offset <= this.#logStartOffset) return;
    this.#logStartOffset = offset;
    writeLogStartOffset(this.#dir, offset);
  }

  /**
   * Drops every offset >= `offset`; a batch holding `offset` goes whole, so
   * the end may land below it. At or below the first segment the log is
   * emptied and restarts at `offset`.
   */
  truncateTo(offset: bigint): void {
    this.#checkOpen();
    if (offset >= this.logEndOffset) return;
    // Newest first, so a crash in between still leaves a prefix.
    while (this.#segments.length > 1 && this.#active.baseOffset >= offset) {
      const dropped = this.#segments.pop()!;
      this.#unsynced.delete(dropped);
      dropped.delete();
    }
    const active = this.#active;
    if (active.baseOffset > offset) {
      active.delete();
      this.#unsynced.delete(active);
      this.#segments = [Segment.create(this.#dir, offset, this.#options)];
    } else {
      active.truncateTo(offset);
      this.#unsynced.add(active);
    }
    this.#directoryChanges++;
    const end = this.logEndOffset;
    if (this.#durableEndOffset > end) this.#durableEndOffset = end;
    for (const target of this.#syncTargets) {
      if (target.end > end) target.end = end;
    }
    if (this.#cleanedEndOffset > end) {
      this.#cleanedEndOffset = end;
      writeFileAtomic(`${this.#dir}/${CLEANER_CHECKPOINT_FILE}`, `${end}\n`);
    }
    const first = this.#segments[0]!.baseOffset;
    if (this.#logStartOffset > end || this.#logStartOffset < first) {
      // The start follows the end down, and must not reappear higher at open.
      this.#logStartOffset = end;
      writeLogStartOffset(this.#dir, end);
    }
  }

  /**
   * Empties the log and restarts it at `offset`, past its end: a replica
   * told that the log it must copy now starts beyond everything it holds
   * keeps none of it, as no offset may be missing inside a log.
   */
  restartAt(offset: bigint): void {
    this.#checkOpen();
    assert(offset > this.logEndOffset, "restartAt only moves past the end", {
      dir: this.#dir,
      offset,
      logEndOffset: this.logEndOffset,
    });
    // Newest first, so a crash in between still leaves a prefix.
    for (const dropped of this.#segments.reverse()) {
      this.#unsynced.delete(dropped);
      dropped.delete();
    }
    this.#segments = [Segment.create(this.#dir, offset, this.#options)];
    this.#directoryChanges++;
    this.#logStartOffset = offset;
    writeLogStartOffset(this.#dir, offset);
    this.#cleanedEndOffset = offset;
  }

  /** Syncs, writes the active segment's index files and closes every file. */
  close(): void {
    if (this.#closed) return;
    this.sync();
    this.#active.writeIndexFiles();
    for (const segment of this.#segments) segment.close();
    this.#closed = true;
  }

  #checkOpen(): void {
    assert(!this.#closed, "Partition log used after close", {
      dir: this.#dir,
    });
  }
}

/** Base offsets of the `.log` files in `dir`, ascending; strays removed. */
function listSegments(dir: string): bigint[] {
  // A cleaning's leftovers first: a .cleaned file was never committed, a
  // .swap file was and is finished now.
  for (const entry of [...Deno.readDirSync(dir)]) {
    if (entry.name.endsWith(".cleaned")) {
      Deno.removeSync(`${dir}/${entry.name}`);
      continue;
    }
    const swap = /^(\d{20})\.log\.(\d+)\.swap$/.exec(entry.name);
    if (swap === null) continue;
    console.warn(`Finishing the cleaner's swap of ${dir}/${entry.name}`);
    installSwap(dir, {
      baseOffset: BigInt(swap[1]!),
      endOffset: BigInt(swap[2]!),
      empty: Deno.statSync(`${dir}/${entry.name}`).size === 0,
    });
  }
  const bases: bigint[] = [];
  const indexed: { name: string; base: string }[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const match = /^(\d{20})\.(log|index|timeindex)$/.exec(entry.name);
    if (match === null) {
      if (entry.name.endsWith(".tmp")) Deno.removeSync(`${dir}/${entry.name}`);
      continue;
    }
    if (match[2] === "log") bases.push(BigInt(match[1]!));
    else indexed.push({ name: entry.name, base: match[1]! });
  }
  const logs = new Set(bases.map((b) => b.toString().padStart(20, "0")));
  for (const { name, base } of indexed) {
    if (!logs.has(base)) Deno.removeSync(`${dir}/${name}`);
  }
  return bases.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function removeSegmentFiles(dir: string, baseOffset: bigint): void {
  removeFiles(dir, baseOffset, ["log", "index", "timeindex"]);
}

function removeIndexFiles(dir: string, baseOffset: bigint): void {
  removeFiles(dir, baseOffset, ["index", "timeindex"]);
}

function removeFiles(
  dir: string,
  baseOffset: bigint,
  kinds: readonly SegmentFileKind[],
): void {
  for (const kind of kinds) {
    removeIfPresent(`${dir}/${segmentFileName(baseOffset, kind)}`);
  }
}

function removeIfPresent(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

function readOffsetFile(dir: string, name: string): bigint | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${dir}/${name}`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  if (!/^\d+\n?$/.test(text)) {
    console.warn(`Ignoring ${dir}/${name}: not an offset`);
    return null;
  }
  return BigInt(text.trim());
}

// Written to a temporary file, synced and renamed, so a crash leaves the old
// or the new value, never a torn one.
function writeLogStartOffset(dir: string, offset: bigint): void {
  writeFileAtomic(`${dir}/${LOG_START_FILE}`, `${offset}\n`);
}

async function syncDirectoryAsync(dir: string): Promise<void> {
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}

/**
 * Completes a cleaning's swap (also at open, after a crash): the `.swap`
 * file is whole and synced, so the segments it replaces, [baseOffset,
 * endOffset), go, and it becomes the segment at baseOffset. Renaming it over
 * the old first segment is atomic, and a crash before that rename leaves
 * the swap file to finish the job at the next open: old or new, never both.
 */
function installSwap(
  dir: string,
  swap: { baseOffset: bigint; endOffset: bigint; empty: boolean },
): void {
  const swapPath = `${dir}/${
    segmentFileName(swap.baseOffset, "log")
  }.${swap.endOffset}.swap`;
  // Newest first, so an interrupted install still leaves a prefix.
  const replaced = listSegmentBases(dir).filter((base) =>
    base >= swap.baseOffset && base < swap.endOffset
  ).reverse();
  for (const base of replaced) {
    if (base === swap.baseOffset && !swap.empty) {
      removeIndexFiles(dir, base);
    } else {
      removeSegmentFiles(dir, base);
    }
  }
  if (swap.empty) Deno.removeSync(swapPath);
  else {Deno.renameSync(
      swapPath,
      `${dir}/${segmentFileName(swap.baseOffset, "log")}`,
    );}
  syncDirectory(dir);
}

function listSegmentBases(dir: string): bigint[] {
  const bases: bigint[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const match = /^(\d{20})\.log$/.exec(entry.name);
    if (match !== null) bases.push(BigInt(match[1]!));
  }
  return bases.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Sleeps to keep the cleaner's I/O under its rate, and yields always. */
class Throttle {
  readBytes = 0;
  writtenBytes = 0;
  readonly #startMs = Date.now();
  readonly #bytesPerSec: number;
  readonly #pauseMs: number;

  constructor(options: CleanOptions) {
    this.#bytesPerSec = options.ioBytesPerSec;
    this.#pauseMs = options.chunkPauseMs ?? 0;
  }

  read(bytes: number): void {
    this.readBytes += bytes;
  }

  write(bytes: number): void {
    this.writtenBytes += bytes;
  }

  pause(): Promise<void> {
    const dueMs = ((this.readBytes + this.writtenBytes) / this.#bytesPerSec) *
      1000;
    const aheadMs = Math.max(0, dueMs - (Date.now() - this.#startMs));
    return new Promise((resolve) =>
      setTimeout(resolve, aheadMs + this.#pauseMs)
    );
  }
}
