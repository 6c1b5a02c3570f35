/**
 * One segment of a partition log: a `.log` file of whole magic-v2 batches
 * starting at `baseOffset`, with its offset and time indexes held in memory.
 *
 * Index files: `.index` and `.timeindex` are written whole, and only once the
 * segment's data is durable (when a sealed segment is synced, and at close).
 * So an index file that parses describes a synced prefix of the log, and open
 * needs to check only the batches after its last entry. Anything that does not
 * parse, or whose last entry does not land on the right batch, is rebuilt from
 * the log itself. Writing them on every append would cost a write per
 * indexIntervalBytes and still prove nothing after a crash.
 */
import {
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD,
  batchCrcOk,
  completeBatchSize,
  Off,
} from "../protocol/mod.ts";
import { assert, writeAllSync } from "../util/mod.ts";
import {
  OFFSET_INDEX_FORMAT,
  SparseIndex,
  TIME_INDEX_FORMAT,
} from "./sparse_index.ts";

/** Offsets within a segment are stored as u32 relative to its base. */
export const MAX_RELATIVE_OFFSET = 0xffff_ffff;
const EMPTY = new Uint8Array(0);
/** Bytes of a batch header up to and including lastOffsetDelta. */
const LOCATE_HEADER_BYTES = Off.lastOffsetDelta + 4;
const RECOVERY_CHUNK_BYTES = 1 << 20;

export type SegmentFileKind = "log" | "index" | "timeindex";

export function segmentFileName(
  baseOffset: bigint,
  kind: SegmentFileKind,
): string {
  return `${baseOffset.toString().padStart(20, "0")}.${kind}`;
}

export interface SegmentOptions {
  indexIntervalBytes: number;
  nowMs: number;
}

/** A batch as appended: its offsets already stamped. */
export interface StampedBatch {
  baseOffset: bigint;
  lastOffsetDelta: number;
  maxTimestamp: bigint;
  sizeBytes: number;
}

/** What a segment learns from one batch to index it. */
interface BatchFacts {
  position: number;
  baseOffset: bigint;
  lastOffset: bigint;
  maxTimestampMs: number;
  sizeBytes: number;
}

export class Segment {
  readonly baseOffset: bigint;
  readonly #dir: string;
  readonly #file: Deno.FsFile;
  readonly #indexIntervalBytes: number;
  #offsetIndex = new SparseIndex();
  // Keys: a batch's maxTimestamp, appended only when it beats every earlier
  // batch, so the first key >= t marks the first batch reaching t.
  #timeIndex = new SparseIndex();
  #sizeBytes = 0;
  #nextOffset: bigint;
  #bytesSinceIndex = 0;
  // Changes to the file (writes, cuts) made and covered by a finished sync.
  // Counters rather than a flag, so that a sync running in the background
  // never marks as synced a write that came after it started.
  #changes = 0;
  #syncedChanges = 0;
  // When the first batch arrived, for rolling by age; null while empty.
  #rollStartMs: number | null = null;

  private constructor(
    dir: string,
    baseOffset: bigint,
    file: Deno.FsFile,
    indexIntervalBytes: number,
  ) {
    this.#dir = dir;
    this.baseOffset = baseOffset;
    this.#file = file;
    this.#indexIntervalBytes = indexIntervalBytes;
    this.#nextOffset = baseOffset;
  }

  /** Creates an empty segment file (replacing a leftover one of that name). */
  static create(
    dir: string,
    baseOffset: bigint,
    options: Pick<SegmentOptions, "indexIntervalBytes">,
  ): Segment {
    const path = `${dir}/${segmentFileName(baseOffset, "log")}`;
    // O_APPEND: writes always land at the end, whatever reads did to the cursor.
    const file = Deno.openSync(path, {
      read: true,
      append: true,
      create: true,
    });
    file.truncateSync(0);
    const segment = new Segment(
      dir,
      baseOffset,
      file,
      options.indexIntervalBytes,
    );
    segment.#removeIndexFiles();
    return segment;
  }

  /**
   * Opens an existing segment and checks it: batches after the last trusted
   * index entry must be whole, pass their CRC and continue the offsets. The
   * file is cut at the first one that does not. `truncated` tells the log that
   * no later segment can follow.
   */
  static open(
    dir: string,
    baseOffset: bigint,
    options: SegmentOptions,
  ): { segment: Segment; truncated: boolean } {
    const path = `${dir}/${segmentFileName(baseOffset, "log")}`;
    const file = Deno.openSync(path, { read: true, append: true });
    const segment = new Segment(
      dir,
      baseOffset,
      file,
      options.indexIntervalBytes,
    );
    const truncated = segment.#recover(file.statSync().size);
    if (segment.#timeIndex.count > 0) {
      // The arrival time is gone after a restart; the first batch's timestamp
      // is the best stand-in, never later than now.
      segment.#rollStartMs = Math.min(
        segment.#timeIndex.keyAt(0),
        options.nowMs,
      );
    }
    return { segment, truncated };
  }

  get sizeBytes(): number {
    return this.#sizeBytes;
  }

  /** The offset after this segment's last batch. */
  get nextOffset(): bigint {
    return this.#nextOffset;
  }

  get rollStartMs(): number | null {
    return this.#rollStartMs;
  }

  get hasUnsyncedWrites(): boolean {
    return this.#changes !== this.#syncedChanges;
  }

  /** The batch with the greatest maxTimestamp (the first such), or null. */
  largestTimestamp(): { offset: bigint; timestamp: bigint } | null {
    const n = this.#timeIndex.count;
    return n === 0 ? null : this.#timeEntry(n - 1);
  }

  /** The first batch whose maxTimestamp is >= `timestampMs`, or null. */
  offsetForTimestamp(
    timestampMs: number,
  ): { offset: bigint; timestamp: bigint } | null {
    const i = this.#timeIndex.ceil(timestampMs);
    return i < 0 ? null : this.#timeEntry(i);
  }

  #timeEntry(i: number): { offset: bigint; timestamp: bigint } {
    return {
      offset: this.baseOffset + BigInt(this.#timeIndex.valueAt(i)),
      timestamp: BigInt(this.#timeIndex.keyAt(i)),
    };
  }

  /**
   * Appends stamped batches (`records` holds them back to back, `batches`
   * describes each) with one write. On a failed write the file is cut back,
   * so the segment never holds half a record set.
   */
  append(
    records: Uint8Array,
    batches: ReadonlyArray<StampedBatch>,
    options: { nowMs: number },
  ): void {
    // Above the end is allowed: a copy of a compacted log has gaps.
    const first = batches[0]?.baseOffset ?? this.#nextOffset;
    assert(
      first >= this.#nextOffset,
      "Append must continue the segment's offsets",
      { baseOffset: first, nextOffset: this.#nextOffset },
    );
    const start = this.#sizeBytes;
    try {
      writeAllSync(this.#file, records);
    } catch (error) {
      this.#file.truncateSync(start);
      throw error;
    }
    this.#changes++;
    this.#rollStartMs ??= options.nowMs;
    let position = start;
    for (const batch of batches) {
      this.#noteBatch({
        position,
        baseOffset: batch.baseOffset,
        lastOffset: batch.baseOffset + BigInt(batch.lastOffsetDelta),
        maxTimestampMs: Number(batch.maxTimestamp),
        sizeBytes: batch.sizeBytes,
      });
      position += batch.sizeBytes;
    }
    assert(position === this.#sizeBytes, "Batch sizes must cover the write", {
      position,
      sizeBytes: this.#sizeBytes,
    });
  }

  // The one place indexes grow: appends and recovery both replay through it,
  // so a recovered segment indexes exactly as the original appends did.
  #noteBatch(batch: BatchFacts): void {
    const relative = Number(batch.baseOffset - this.baseOffset);
    if (this.#bytesSinceIndex >= this.#indexIntervalBytes) {
      this.#offsetIndex.append(relative, batch.position);
      this.#bytesSinceIndex = 0;
    }
    this.#bytesSinceIndex += batch.sizeBytes;
    const timeCount = this.#timeIndex.count;
    if (
      timeCount === 0 ||
      batch.maxTimestampMs > this.#timeIndex.keyAt(timeCount - 1)
    ) {
      this.#timeIndex.append(batch.maxTimestampMs, relative);
    }
    this.#sizeBytes = batch.position + batch.sizeBytes;
    this.#nextOffset = batch.lastOffset + 1n;
  }

  /**
   * Whole batches from the one holding `offset`, up to `maxBytes` but at least
   * that first batch (KIP-74), and only batches that end below `maxOffset`.
   */
  read(
    offset: bigint,
    options: { maxBytes: number; maxOffset: bigint },
  ): Uint8Array {
    const first = this.#locate(offset);
    if (first.lastOffset >= options.maxOffset) return EMPTY;
    const wanted = Math.min(
      Math.max(options.maxBytes, first.sizeBytes),
      this.#sizeBytes - first.position,
    );
    const bytes = readAt(this.#file, first.position, wanted);
    // The high watermark usually equals the end, so offsets are only
    // compared when it falls inside this segment.
    const checkOffsets = options.maxOffset < this.#nextOffset;
    let end = first.sizeBytes;
    const view = new DataView(bytes.buffer);
    while (end < bytes.length) {
      const size = completeBatchSize(bytes, end);
      if (size === 0) break;
      if (checkOffsets) {
        const last = view.getBigInt64(end + Off.baseOffset) +
          BigInt(view.getInt32(end + Off.lastOffsetDelta));
        if (last >= options.maxOffset) break;
      }
      end += size;
    }
    return bytes.subarray(0, end);
  }

  /** Where the batch holding `offset` starts, its size and its offsets. */
  #locate(offset: bigint): {
    position: number;
    sizeBytes: number;
    baseOffset: bigint;
    lastOffset: bigint;
  } {
    assert(
      offset >= this.baseOffset && offset < this.#nextOffset,
      "Offset must lie in the segment",
      { offset, baseOffset: this.baseOffset, nextOffset: this.#nextOffset },
    );
    const entry = this.#offsetIndex.floor(Number(offset - this.baseOffset));
    let position = entry < 0 ? 0 : this.#offsetIndex.valueAt(entry);
    let chunk = EMPTY;
    let chunkPosition = position;
    // Bounded: every step moves to the next batch, and the offset is inside.
    for (;;) {
      assert(position < this.#sizeBytes, "Offset not found in its segment", {
        offset,
        baseOffset: this.baseOffset,
      });
      let at = position - chunkPosition;
      if (chunk.length - at < LOCATE_HEADER_BYTES) {
        chunk = readAt(
          this.#file,
          position,
          Math.min(
            this.#indexIntervalBytes + BATCH_HEADER_BYTES,
            this.#sizeBytes - position,
          ),
        );
        chunkPosition = position;
        at = 0;
      }
      const view = new DataView(chunk.buffer, chunk.byteOffset);
      const sizeBytes = view.getInt32(at + Off.batchLength) +
        BATCH_LOG_OVERHEAD;
      const baseOffset = view.getBigInt64(at + Off.baseOffset);
      const lastOffset = baseOffset +
        BigInt(view.getInt32(at + Off.lastOffsetDelta));
      if (lastOffset >= offset) {
        return { position, sizeBytes, baseOffset, lastOffset };
      }
      position += sizeBytes;
    }
  }

  /** fdatasyncs unsynced writes; false when there were none. */
  sync(): boolean {
    if (!this.hasUnsyncedWrites) return false;
    const changes = this.#changes;
    this.#file.syncDataSync();
    this.#markSynced(changes);
    return true;
  }

  /**
   * fdatasyncs off the event loop the writes made before the call; writes
   * made while it runs stay unsynced.
   */
  async syncAsync(): Promise<void> {
    if (!this.hasUnsyncedWrites) return;
    const changes = this.#changes;
    await this.#file.syncData();
    this.#markSynced(changes);
  }

  #markSynced(changes: number): void {
    if (changes > this.#syncedChanges) this.#syncedChanges = changes;
  }

  /** Writes both index files whole; call only when the data is synced. */
  writeIndexFiles(): void {
    assert(!this.hasUnsyncedWrites, "Index files describe synced data only", {
      baseOffset: this.baseOffset,
    });
    Deno.writeFileSync(
      this.#path("index"),
      this.#offsetIndex.encode(OFFSET_INDEX_FORMAT),
    );
    Deno.writeFileSync(
      this.#path("timeindex"),
      this.#timeIndex.encode(TIME_INDEX_FORMAT),
    );
  }

  /**
   * Drops every batch whose last offset is >= `offset` (a batch holding it is
   * dropped whole). Returns the new next offset.
   */
  truncateTo(offset: bigint): bigint {
    if (offset >= this.#nextOffset) return this.#nextOffset;
    const cut = offset <= this.baseOffset
      ? { position: 0, baseOffset: this.baseOffset }
      : this.#locate(offset);
    // In a gap left by compaction the batch found starts above `offset`.
    this.#cut(cut.position, cut.baseOffset < offset ? cut.baseOffset : offset);
    return this.#nextOffset;
  }

  // Cuts the file at `position`, where the batch at `baseOffset` began.
  #cut(position: number, baseOffset: bigint): void {
    this.#file.truncateSync(position);
    this.#changes++;
    const relative = Number(baseOffset - this.baseOffset);
    this.#offsetIndex.truncate(this.#offsetIndex.floor(relative - 1) + 1);
    let t = this.#timeIndex.count;
    while (t > 0 && this.#timeIndex.valueAt(t - 1) >= relative) t--;
    this.#timeIndex.truncate(t);
    const lastEntry = this.#offsetIndex.count - 1;
    this.#bytesSinceIndex = position -
      (lastEntry < 0 ? 0 : this.#offsetIndex.valueAt(lastEntry));
    this.#sizeBytes = position;
    this.#nextOffset = baseOffset;
    if (position === 0) this.#rollStartMs = null;
    this.#removeIndexFiles();
  }

  close(): void {
    this.#file.close();
  }

  /** Closes the segment and removes its files. */
  delete(): void {
    this.#file.close();
    Deno.removeSync(this.#path("log"));
    this.#removeIndexFiles();
  }

  #path(kind: SegmentFileKind): string {
    return `${this.#dir}/${segmentFileName(this.baseOffset, kind)}`;
  }

  #removeIndexFiles(): void {
    for (const kind of ["index", "timeindex"] as const) {
      try {
        Deno.removeSync(this.#path(kind));
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
  }

  /** Returns true when the file had to be cut. */
  #recover(fileBytes: number): boolean {
    const start = this.#loadIndexFiles(fileBytes);
    if (start !== null) {
      const end = this.#scan(start, fileBytes);
      // A bad batch right at the last index entry means the index itself is
      // not to be trusted: start over from the top of the segment.
      if (end.position > start.position || end.position === fileBytes) {
        return this.#cutTorn(end, fileBytes);
      }
      this.#offsetIndex = new SparseIndex();
      this.#timeIndex = new SparseIndex();
    }
    this.#removeIndexFiles();
    // Without index files nothing shows the data was ever synced.
    this.#changes++;
    this.#bytesSinceIndex = 0;
    const end = this.#scan(
      { position: 0, baseOffset: this.baseOffset },
      fileBytes,
    );
    return this.#cutTorn(end, fileBytes);
  }

  #cutTorn(
    end: { position: number; baseOffset: bigint; problem: string },
    fileBytes: number,
  ): boolean {
    if (end.position === fileBytes) return false;
    console.warn(
      `Truncating ${this.#path("log")} at position ${end.position} ` +
        `(file size ${fileBytes}): ${end.problem}`,
    );
    this.#cut(end.position, end.baseOffset);
    return true;
  }

  /**
   * Loads the index files when both parse and fit the file; returns where the
   * check of the remaining batches starts, or null to rebuild from scratch.
   */
  #loadIndexFiles(
    fileBytes: number,
  ): { position: number; baseOffset: bigint } | null {
    let offsetIndex: SparseIndex | null;
    let timeIndex: SparseIndex | null;
    try {
      offsetIndex = SparseIndex.decode(
        Deno.readFileSync(this.#path("index")),
        OFFSET_INDEX_FORMAT,
      );
      timeIndex = SparseIndex.decode(
        Deno.readFileSync(this.#path("timeindex")),
        TIME_INDEX_FORMAT,
      );
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
    if (offsetIndex === null || timeIndex === null) return null;
    const n = offsetIndex.count;
    const relative = n === 0 ? 0 : offsetIndex.keyAt(n - 1);
    const position = n === 0 ? 0 : offsetIndex.valueAt(n - 1);
    if (position >= fileBytes && n > 0) return null;
    for (let i = 1; i < n; i++) {
      if (offsetIndex.valueAt(i) <= offsetIndex.valueAt(i - 1)) return null;
    }
    // Time entries from the restart point on are rebuilt by the scan.
    let t = timeIndex.count;
    while (t > 0 && timeIndex.valueAt(t - 1) >= relative) t--;
    timeIndex.truncate(t);
    this.#offsetIndex = offsetIndex;
    this.#timeIndex = timeIndex;
    this.#bytesSinceIndex = 0;
    // An entry is added with the count reset, so replaying its batch next
    // must not add it again: pretend the interval was just reached.
    if (n > 0) {
      offsetIndex.truncate(n - 1);
      this.#bytesSinceIndex = this.#indexIntervalBytes;
    }
    return { position, baseOffset: this.baseOffset + BigInt(relative) };
  }

  /**
   * Walks batches from `start`, indexing each good one; returns where the
   * first bad one starts (or the file size) and what was wrong.
   */
  #scan(
    start: { position: number; baseOffset: bigint },
    fileBytes: number,
  ): { position: number; baseOffset: bigint; problem: string } {
    let position = start.position;
    let expected = start.baseOffset;
    let chunk = EMPTY;
    let chunkPosition = position;
    const stop = (problem: string) => ({
      position,
      baseOffset: expected,
      problem,
    });
    while (position < fileBytes) {
      let at = position - chunkPosition;
      if (chunk.length - at < BATCH_HEADER_BYTES) {
        chunk = readAt(
          this.#file,
          position,
          Math.min(RECOVERY_CHUNK_BYTES, fileBytes - position),
        );
        chunkPosition = position;
        at = 0;
      }
      if (chunk.length - at < BATCH_HEADER_BYTES) {
        return stop("torn batch header");
      }
      let view = new DataView(chunk.buffer, chunk.byteOffset);
      const sizeBytes = view.getInt32(at + Off.batchLength) +
        BATCH_LOG_OVERHEAD;
      if (sizeBytes < BATCH_HEADER_BYTES) return stop("bad batch length");
      if (position + sizeBytes > fileBytes) return stop("torn batch");
      if (at + sizeBytes > chunk.length) {
        chunk = readAt(this.#file, position, sizeBytes);
        chunkPosition = position;
        at = 0;
        view = new DataView(chunk.buffer, chunk.byteOffset);
      }
      if (chunk[at + Off.magic] !== 2) return stop("bad magic");
      if (!batchCrcOk(chunk, at, sizeBytes)) return stop("bad CRC-32C");
      const baseOffset = view.getBigInt64(at + Off.baseOffset);
      // Compaction leaves gaps between batches, never a step back.
      if (baseOffset < expected) {
        return stop(`base offset ${baseOffset} below ${expected}`);
      }
      const delta = view.getInt32(at + Off.lastOffsetDelta);
      const lastOffset = baseOffset + BigInt(delta);
      if (delta < 0 || lastOffset - this.baseOffset > MAX_RELATIVE_OFFSET) {
        return stop(`bad last offset delta ${delta}`);
      }
      this.#noteBatch({
        position,
        baseOffset,
        lastOffset,
        maxTimestampMs: Number(view.getBigInt64(at + Off.maxTimestamp)),
        sizeBytes,
      });
      position += sizeBytes;
      expected = lastOffset + 1n;
    }
    return stop("none");
  }
}

function readAt(file: Deno.FsFile, position: number, length: number) {
  const bytes = new Uint8Array(length);
  file.seekSync(position, Deno.SeekMode.Start);
  let got = 0;
  while (got < length) {
    const n = file.readSync(bytes.subarray(got));
    assert(n !== null && n > 0, "Segment file ended early", {
      position,
      length,
      got,
    });
    got += n;
  }
  return bytes;
}
