/**
 * Kafka's per-partition log: a directory of segments named by base offset.
 * Appends are synchronous writes of whole record sets to the active segment;
 * durability is a separate `sync()` or `syncAsync()`, called when the owner
 * decides (a Raft state machine syncs in the background as data piles up,
 * and before each snapshot: until then its WAL holds the data). The state
 * machine drives the log directly: it appends committed batches, truncates
 * on conflicts and advances the start on snapshots.
 */
import { type BatchHeader, stampBatch } from "../protocol/mod.ts";
import { assert } from "../util/mod.ts";
import { syncDirectory, writeFileAtomic } from "./atomic_file.ts";
import { MAX_RELATIVE_OFFSET, Segment, segmentFileName } from "./segment.ts";

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
};

/** Positions in a segment are u32 on disk and int32 in Kafka's configs. */
const SEGMENT_BYTES_MAX = 0x7fff_ffff;
const LOG_START_FILE = "log-start-offset";
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
  // Invariant: never empty; ascending and contiguous (each segment's
  // nextOffset is the next one's baseOffset); the last one is active.
  #segments: Segment[];
  // Invariant: segments[0].baseOffset <= logStartOffset <= logEndOffset.
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
    // Nothing may follow a cut or a gap: the log stays one unbroken prefix.
    let ended = false;
    for (const baseOffset of listSegments(dir)) {
      const previous = segments.at(-1);
      if (previous !== undefined && previous.nextOffset !== baseOffset) {
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
          `it follows a gap or a truncated segment`,
      );
      removeSegmentFiles(dir, baseOffset);
    }
    const checkpoint = readLogStartOffset(dir);
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
    options: { leaderEpoch?: number } = {},
  ): { baseOffset: bigint; lastOffset: bigint } {
    this.#checkOpen();
    assert(headers.length > 0, "Append needs at least one batch");
    const baseOffset = this.logEndOffset;
    const { leaderEpoch } = options;
    let offset = baseOffset;
    let position = 0;
    for (const header of headers) {
      stampBatch(records, position, {
        baseOffset: offset,
        partitionLeaderEpoch: leaderEpoch ?? header.partitionLeaderEpoch,
      });
      offset += BigInt(header.lastOffsetDelta) + 1n;
      position += header.sizeBytes;
    }
    assert(position === records.length, "Headers must cover the record set", {
      position,
      recordsBytes: records.length,
    });
    const lastOffset = offset - 1n;
    const nowMs = this.#options.clock();
    this.#maybeRoll({ sizeBytes: records.length, lastOffset, nowMs });
    const active = this.#active;
    active.append(records, headers, { baseOffset, nowMs });
    this.#unsynced.add(active);
    return { baseOffset, lastOffset };
  }

  #maybeRoll(
    next: { sizeBytes: number; lastOffset: bigint; nowMs: number },
  ): void {
    const active = this.#active;
    if (active.sizeBytes === 0) return;
    const rollStartMs = active.rollStartMs;
    if (
      active.sizeBytes + next.sizeBytes > this.#options.segmentBytes ||
      next.lastOffset - active.baseOffset > MAX_RELATIVE_OFFSET ||
      (rollStartMs !== null &&
        next.nowMs - rollStartMs >= this.#options.segmentMs)
    ) {
      this.#roll();
    }
  }

  #roll(): void {
    const sealed = this.#active;
    assert(sealed.sizeBytes > 0, "Only a non-empty segment is rolled");
    // A sealed segment's index files are written once its data is durable:
    // now if it already is, else by the sync() that makes it so.
    if (!sealed.hasUnsyncedWrites) sealed.writeIndexFiles();
    this.#segments.push(
      Segment.create(this.#dir, sealed.nextOffset, this.#options),
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
    return this.#segmentFor(offset).read(offset, {
      maxBytes: options.maxBytes,
      maxOffset: limit,
    });
  }

  #segmentFor(offset: bigint): Segment {
    let lo = 0;
    let hi = this.#segments.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#segments[mid]!.baseOffset <= offset) lo = mid + 1;
      else hi = mid;
    }
    assert(lo > 0, "Offset below the first segment", { offset });
    return this.#segments[lo - 1]!;
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
  for (const kind of ["log", "index", "timeindex"] as const) {
    try {
      Deno.removeSync(`${dir}/${segmentFileName(baseOffset, kind)}`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}

function readLogStartOffset(dir: string): bigint | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${dir}/${LOG_START_FILE}`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  if (!/^\d+\n?$/.test(text)) {
    console.warn(`Ignoring ${dir}/${LOG_START_FILE}: not an offset`);
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
