/**
 * The write-ahead log shared by every Raft group of a host. Records of all
 * groups interleave in one sequence of segment files so that one fdatasync
 * covers the writes of every group in a loop turn (group commit).
 *
 * Record: u32 body length, u32 CRC-32C of the segment's sequence number
 * (u64) followed by the body, body = u8 kind, u32 group id, payload.
 * Segments are `wal-<seq>.log`; each new segment opens with a checkpoint
 * (every live group's hard state and latest snapshot) so that older segments
 * only matter for their entries and can be deleted, oldest first, once those
 * entries are all at or below their group's compaction point. Deleting only
 * a prefix keeps replay equivalent: a deleted record can only have affected
 * indices that are compacted anyway.
 *
 * A deleted segment's file is kept as a spare (`wal-<seq>.spare`, at most
 * SPARES_MAX) and renamed to be a later segment, which overwrites it from
 * the start: writing into blocks the file already owns spares each
 * fdatasync the journal commit of an appending write, and the page cache
 * already holds its pages. The sequence number in every record's CRC makes
 * the old records after the new segment's end fail their check. A segment
 * written before the number was in the CRC replays too (its first record
 * tells), and is deleted, never reused.
 */
import { assert, crc32c, crc32cCombine, writeAllSync } from "../../util/mod.ts";
import type { Entry, HardState, Snapshot } from "../core/mod.ts";
import {
  ByteReader,
  ByteWriter,
  DecodeError,
  entriesBodyCrc32c,
  readEntries,
  readHardState,
  readSnapshot,
  writeEntries,
  writeHardState,
  writeSnapshot,
} from "./binary.ts";

const RecordKind = {
  Entries: 1,
  HardState: 2,
  /** A snapshot received from a leader: replaces the group's whole log. */
  Snapshot: 3,
  /** A local snapshot: entries up to its index are no longer needed. */
  Compaction: 4,
  /** The group was removed from this host: forget everything before. */
  RemoveGroup: 5,
} as const;

const HEADER_BYTES = 8;
/** A record body's kind byte and group id, before its payload. */
const RECORD_HEAD_BYTES = 1 + 4;
/** A record larger than this is treated as garbage, not trusted as a length. */
const RECORD_BYTES_MAX = 256 * 1024 * 1024;
const SEGMENT_PATTERN = /^wal-(\d{16})\.log$/;
const SPARE_PATTERN = /^wal-(\d{16})\.spare$/;
/** Deleted segment files kept for reuse. */
const SPARES_MAX = 2;

/** Damage that is not a torn tail: a bad record before the last segment's end. */
export class WalCorruptionError extends Error {
  override name = "WalCorruptionError";
}

/** What replay rebuilt for one group. `entries` follow the snapshot (or start at 1) without gaps. */
export interface RecoveredGroup {
  hardState: HardState;
  snapshot: Snapshot | null;
  entries: Entry[];
}

export interface WalOptions {
  /** Roll to a new segment once the current one reaches this size. Default 64 MiB. */
  segmentBytes?: number;
}

/** The part of a Raft Ready that must be durable before its messages are sent. */
export interface PersistableReady {
  hardState: HardState | null;
  entries: Entry[];
  snapshot: Snapshot | null;
}

interface GroupState {
  hardState: HardState | null;
  snapshot: Snapshot | null;
  /** Entries at or below this index are covered by a snapshot. */
  compactIndex: number;
}

interface Segment {
  seq: number;
  path: string;
  /** Its records' CRCs cover seq: only then may its file be reused. */
  seqInCrc: boolean;
  /** Highest entry index written per group: decides when the segment may go. */
  maxIndexByGroup: Map<number, number>;
}

function segmentName(seq: number): string {
  return `wal-${String(seq).padStart(16, "0")}.log`;
}

function spareName(seq: number): string {
  return `wal-${String(seq).padStart(16, "0")}.spare`;
}

/** The CRC-32C of a segment's sequence number, which each record's CRC starts from. */
function seqCrc32c(seq: number): number {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(seq));
  return crc32c(bytes);
}

export class Wal {
  readonly #dir: string;
  readonly #segmentBytes: number;
  readonly #groups = new Map<number, GroupState>();
  readonly #segments: Segment[];
  readonly #pending = new ByteWriter(1 << 16);
  /** Background fdatasyncs in progress: the file must not roll under them. */
  #syncing = 0;
  /** Entry index ranges buffered since the last sync, folded into the segment on sync. */
  readonly #pendingMax = new Map<number, number>();
  /** Paths of spare segment files, reused newest first. */
  readonly #spares: string[];
  #file: Deno.FsFile;
  #fileBytes: number;
  /** The active file's size when it was reused: its old records lie beyond #fileBytes. */
  #fileReusedBytes = 0;
  /** seqCrc32c of the active segment. */
  #seqCrc: number;
  /**
   * Whether what is buffered must reach the disk before the caller goes on.
   * A HardState that moves only the commit index need not: a crash that
   * loses it loses nothing, since commitment is learned again from the log
   * (etcd raft's MustSync). Syncing it anyway cost a one-voter group a
   * second fdatasync per write, its commit trailing its append by a turn.
   */
  #mustSync = false;
  #closed = false;

  private constructor(
    dir: string,
    segmentBytes: number,
    segments: Segment[],
    spares: string[],
    file: Deno.FsFile,
    fileBytes: number,
  ) {
    this.#dir = dir;
    this.#segmentBytes = segmentBytes;
    this.#segments = segments;
    this.#spares = spares;
    this.#file = file;
    this.#fileBytes = fileBytes;
    this.#seqCrc = seqCrc32c(segments[segments.length - 1]!.seq);
  }

  /**
   * Opens (creating if needed) the WAL in `dir` and replays it. A torn or
   * corrupt tail of the last segment is truncated; damage elsewhere throws
   * WalCorruptionError.
   */
  static open(
    dir: string,
    options: WalOptions = {},
  ): { wal: Wal; groups: Map<number, RecoveredGroup> } {
    const segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
    if (!(segmentBytes >= 4096)) {
      throw new RangeError(
        `Invalid WAL segmentBytes ${segmentBytes}: must be at least 4096`,
      );
    }
    Deno.mkdirSync(dir, { recursive: true });
    const seqs: number[] = [];
    const spares: string[] = [];
    for (const e of Deno.readDirSync(dir)) {
      if (!e.isFile) continue;
      const m = SEGMENT_PATTERN.exec(e.name);
      if (m) seqs.push(Number(m[1]));
      if (SPARE_PATTERN.test(e.name)) spares.push(`${dir}/${e.name}`);
    }
    seqs.sort((a, b) => a - b);

    const replay = new Replay();
    const segments: Segment[] = [];
    let lastBytes = 0;
    for (const [i, seq] of seqs.entries()) {
      const path = `${dir}/${segmentName(seq)}`;
      const segment: Segment = {
        seq,
        path,
        seqInCrc: true,
        maxIndexByGroup: new Map(),
      };
      const data = Deno.readFileSync(path);
      const goodBytes = replay.segment(data, segment);
      if (goodBytes < data.length) {
        if (i !== seqs.length - 1) {
          throw new WalCorruptionError(
            `Corrupt WAL record in ${path} at byte ${goodBytes}: not the last segment, so not a torn tail`,
          );
        }
        Deno.truncateSync(path, goodBytes);
      }
      lastBytes = goodBytes;
      segments.push(segment);
    }
    if (segments.length === 0) {
      segments.push({
        seq: 1,
        path: `${dir}/${segmentName(1)}`,
        seqInCrc: true,
        maxIndexByGroup: new Map(),
      });
    }
    const last = segments[segments.length - 1]!;
    const file = Deno.openSync(last.path, {
      write: true,
      create: true,
      append: true,
    });
    if (seqs.length === 0) syncDir(dir);
    const wal = new Wal(dir, segmentBytes, segments, spares, file, lastBytes);
    const groups = replay.result();
    for (const [groupId, g] of groups) {
      wal.#groups.set(groupId, {
        hardState: g.hardState,
        snapshot: g.snapshot,
        compactIndex: g.snapshot?.meta.index ?? 0,
      });
    }
    // Records with the sequence number in their CRC cannot follow older ones in one file.
    if (!last.seqInCrc) wal.#roll();
    return { wal, groups };
  }

  /** Paths of the live segment files, oldest first. */
  segmentPaths(): string[] {
    return this.#segments.map((s) => s.path);
  }

  #group(groupId: number): GroupState {
    let g = this.#groups.get(groupId);
    if (g === undefined) {
      g = { hardState: null, snapshot: null, compactIndex: 0 };
      this.#groups.set(groupId, g);
    }
    return g;
  }

  #record(
    kind: number,
    groupId: number,
    payload: (w: ByteWriter) => void,
    crcOf: (body: Uint8Array) => number = crc32c,
  ): void {
    assert(!this.#closed, "WAL used after close");
    const w = this.#pending;
    const start = w.length;
    w.u32(0);
    w.u32(0);
    const bodyStart = w.length;
    w.u8(kind);
    w.u32(groupId);
    payload(w);
    const body = w.view().subarray(bodyStart);
    w.u32At(start, body.length);
    w.u32At(start + 4, crc32cCombine(this.#seqCrc, crcOf(body), body.length));
    if (kind !== RecordKind.HardState) this.#mustSync = true;
  }

  /** Buffers what a Ready asks to persist; durable only after the next sync(). */
  appendReady(groupId: number, rd: PersistableReady): void {
    const g = this.#group(groupId);
    if (rd.snapshot !== null) {
      const snap = rd.snapshot;
      this.#record(RecordKind.Snapshot, groupId, (w) => writeSnapshot(w, snap));
      g.snapshot = snap;
      g.compactIndex = Math.max(g.compactIndex, snap.meta.index);
    }
    if (rd.entries.length > 0) {
      const entries = rd.entries;
      this.#record(
        RecordKind.Entries,
        groupId,
        (w) => writeEntries(w, entries),
        (body) => entriesBodyCrc32c(body, RECORD_HEAD_BYTES, entries),
      );
      const lastIndex = entries[entries.length - 1]!.index;
      this.#pendingMax.set(
        groupId,
        Math.max(this.#pendingMax.get(groupId) ?? 0, lastIndex),
      );
    }
    if (rd.hardState !== null) {
      const hs = rd.hardState;
      const prev = g.hardState;
      this.#record(RecordKind.HardState, groupId, (w) => writeHardState(w, hs));
      if (prev === null || prev.term !== hs.term || prev.vote !== hs.vote) {
        this.#mustSync = true;
      }
      g.hardState = { ...hs };
    }
  }

  /**
   * Records a local snapshot: entries up to its index may be dropped from
   * segments. Call after the state machine produced `snapshot`.
   */
  compact(groupId: number, snapshot: Snapshot): void {
    const g = this.#group(groupId);
    assert(
      snapshot.meta.index >= g.compactIndex,
      "WAL compaction point moved backwards",
      { groupId, index: snapshot.meta.index, compactIndex: g.compactIndex },
    );
    this.#record(
      RecordKind.Compaction,
      groupId,
      (w) => writeSnapshot(w, snapshot),
    );
    g.snapshot = snapshot;
    g.compactIndex = snapshot.meta.index;
  }

  /** Forgets a group: replay will not bring it back. */
  removeGroup(groupId: number): void {
    this.#record(RecordKind.RemoveGroup, groupId, () => {});
    this.#groups.delete(groupId);
    this.#pendingMax.delete(groupId);
  }

  /**
   * Writes everything buffered and makes it durable with one fdatasync;
   * false when nothing was buffered. The fdatasync runs on the calling
   * thread, which answers a lone small write sooner than a handoff to
   * Deno's thread pool and back (syncInBackground) does.
   */
  sync(): boolean {
    if (!this.#writePending()) return false;
    this.#mustSync = false;
    this.#file.syncDataSync();
    this.#maybeRoll();
    return true;
  }

  /**
   * sync(), but only when something buffered must be durable: a
   * commit-only HardState waits in the buffer for the next record that
   * must. False when nothing was written or synced.
   */
  syncRequired(): boolean {
    return this.#mustSync && this.sync();
  }

  /**
   * Writes everything buffered and makes it durable with one fdatasync on
   * Deno's thread pool, so that the caller's loop goes on meanwhile
   * (buffering more, which the next sync covers). Concurrent fdatasyncs
   * of one file are safe: each covers what was written before it began.
   */
  async syncInBackground(): Promise<void> {
    this.#writePending();
    this.#mustSync = false;
    this.#syncing++;
    try {
      await this.#file.syncData();
    } finally {
      this.#syncing--;
    }
    // A roll writes a checkpoint of what is synced: nothing may wait in the buffer.
    if (this.#pending.length === 0) this.#maybeRoll();
  }

  /** Whether something buffered must be durable before the caller goes on. */
  get mustSync(): boolean {
    return this.#mustSync;
  }

  /** Bytes buffered for the next sync. */
  get pendingBytes(): number {
    return this.#pending.length;
  }

  /** Hands the buffered records to the OS; false when there were none. */
  #writePending(): boolean {
    if (this.#pending.length === 0) return false;
    writeAllSync(this.#file, this.#pending.view());
    this.#fileBytes += this.#pending.length;
    this.#pending.reset();
    const segment = this.#segments[this.#segments.length - 1]!;
    for (const [groupId, index] of this.#pendingMax) {
      const prev = segment.maxIndexByGroup.get(groupId) ?? 0;
      segment.maxIndexByGroup.set(groupId, Math.max(prev, index));
    }
    this.#pendingMax.clear();
    return true;
  }

  #maybeRoll(): void {
    if (this.#syncing === 0 && this.#fileBytes >= this.#segmentBytes) {
      this.#roll();
    }
  }

  /** Starts a new segment that opens with a checkpoint, then drops what it made obsolete. */
  #roll(): void {
    assert(this.#pending.length === 0, "WAL rolled with records buffered");
    if (this.#fileReusedBytes > this.#fileBytes) {
      // Replay takes a bad record before a later segment for damage.
      this.#file.truncateSync(this.#fileBytes);
      this.#file.syncDataSync();
    }
    const prev = this.#segments[this.#segments.length - 1]!;
    const seq = prev.seq + 1;
    const path = `${this.#dir}/${segmentName(seq)}`;
    this.#seqCrc = seqCrc32c(seq);
    for (const [groupId, g] of this.#groups) {
      if (g.snapshot !== null) {
        const snap = g.snapshot;
        this.#record(
          RecordKind.Compaction,
          groupId,
          (w) => writeSnapshot(w, snap),
        );
      }
      if (g.hardState !== null) {
        const hs = g.hardState;
        this.#record(
          RecordKind.HardState,
          groupId,
          (w) => writeHardState(w, hs),
        );
      }
    }
    const spare = this.#spares.pop();
    if (spare !== undefined) Deno.renameSync(spare, path);
    const file = spare === undefined
      ? Deno.openSync(path, { write: true, createNew: true, append: true })
      : Deno.openSync(path, { write: true });
    this.#fileReusedBytes = spare === undefined ? 0 : file.statSync().size;
    writeAllSync(file, this.#pending.view());
    file.syncDataSync();
    syncDir(this.#dir);
    this.#file.close();
    this.#file = file;
    this.#fileBytes = this.#pending.length;
    this.#pending.reset();
    this.#segments.push({
      seq,
      path,
      seqInCrc: true,
      maxIndexByGroup: new Map(),
    });
    this.#deleteObsolete();
  }

  /** Groups with entries in `segment` above their compaction point. */
  #pinning(segment: Segment): number[] {
    const groups: number[] = [];
    for (const [groupId, index] of segment.maxIndexByGroup) {
      const g = this.#groups.get(groupId);
      if (g !== undefined && index > g.compactIndex) groups.push(groupId);
    }
    return groups;
  }

  /**
   * The groups that keep the oldest segment on disk, once more than
   * `closedMax` segments are closed; none before. Compacting them lets the
   * next roll delete it.
   */
  groupsPinningOldest(closedMax: number): number[] {
    if (this.#segments.length - 1 <= closedMax) return [];
    return this.#pinning(this.#segments[0]!);
  }

  #deleteObsolete(): void {
    let deleted = 0;
    while (this.#segments.length > 1) {
      const oldest = this.#segments[0]!;
      if (this.#pinning(oldest).length > 0) break;
      if (oldest.seqInCrc && this.#spares.length < SPARES_MAX) {
        const spare = `${this.#dir}/${spareName(oldest.seq)}`;
        Deno.renameSync(oldest.path, spare);
        this.#spares.push(spare);
      } else {
        Deno.removeSync(oldest.path);
      }
      this.#segments.shift();
      deleted++;
    }
    if (deleted > 0) syncDir(this.#dir);
  }

  close(): void {
    if (this.#closed) return;
    this.sync();
    this.#closed = true;
    this.#file.close();
  }
}

/** Makes file creations and deletions in `dir` durable. */
function syncDir(dir: string): void {
  const d = Deno.openSync(dir, { read: true });
  try {
    d.syncSync();
  } finally {
    d.close();
  }
}

interface ReplayGroup {
  hardState: HardState;
  snapshot: Snapshot | null;
  entries: Entry[];
}

/** Folds records, in order, into per-group state. */
class Replay {
  readonly #groups = new Map<number, ReplayGroup>();

  #group(groupId: number): ReplayGroup {
    let g = this.#groups.get(groupId);
    if (g === undefined) {
      g = {
        hardState: { term: 0, vote: 0, commit: 0 },
        snapshot: null,
        entries: [],
      };
      this.#groups.set(groupId, g);
    }
    return g;
  }

  /**
   * Applies the records of one segment; returns the byte length of its
   * valid prefix. Sets segment.seqInCrc from its first record.
   */
  segment(data: Uint8Array, segment: Segment): number {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const seqCrc = seqCrc32c(segment.seq);
    let position = 0;
    while (position + HEADER_BYTES <= data.length) {
      const length = view.getUint32(position);
      const crc = view.getUint32(position + 4);
      const end = position + HEADER_BYTES + length;
      if (length < 5 || length > RECORD_BYTES_MAX || end > data.length) break;
      const body = data.subarray(position + HEADER_BYTES, end);
      const bodyCrc = crc32c(body);
      const seeded = crc32cCombine(seqCrc, bodyCrc, body.length);
      if (position === 0 && seeded !== crc && bodyCrc === crc) {
        segment.seqInCrc = false;
      }
      if ((segment.seqInCrc ? seeded : bodyCrc) !== crc) break;
      try {
        this.#apply(new ByteReader(body), segment);
      } catch (err) {
        // A record whose CRC matches but does not decode was written by a bug, not torn by a crash.
        if (err instanceof DecodeError) {
          throw new WalCorruptionError(
            `Undecodable WAL record in ${segment.path} at byte ${position}`,
            { cause: err },
          );
        }
        throw err;
      }
      position = end;
    }
    return position;
  }

  #apply(r: ByteReader, segment: Segment): void {
    const kind = r.u8("record kind");
    const groupId = r.u32("group id");
    switch (kind) {
      case RecordKind.Entries: {
        const entries = readEntries(r);
        if (entries.length === 0) return;
        const g = this.#group(groupId);
        const snapIndex = g.snapshot?.meta.index ?? 0;
        const fresh = entries.filter((e) => e.index > snapIndex);
        if (fresh.length === 0) return;
        const first = fresh[0]!.index;
        if (g.entries.length > 0) {
          const base = g.entries[0]!.index;
          const last = base + g.entries.length - 1;
          if (first > last + 1) {
            throw new WalCorruptionError(
              `WAL gap in group ${groupId}: entries end at ${last}, next record starts at ${first}`,
            );
          }
          // A later append at `first` supersedes everything from `first` on (a new leader truncated us).
          g.entries.length = Math.max(0, first - base);
        }
        for (const e of fresh) g.entries.push(e);
        const maxIndex = fresh[fresh.length - 1]!.index;
        segment.maxIndexByGroup.set(
          groupId,
          Math.max(segment.maxIndexByGroup.get(groupId) ?? 0, maxIndex),
        );
        return;
      }
      case RecordKind.HardState:
        this.#group(groupId).hardState = readHardState(r);
        return;
      case RecordKind.Snapshot: {
        const g = this.#group(groupId);
        g.snapshot = readSnapshot(r);
        g.entries = [];
        return;
      }
      case RecordKind.Compaction: {
        const g = this.#group(groupId);
        const snap = readSnapshot(r);
        if (g.snapshot !== null && g.snapshot.meta.index > snap.meta.index) {
          return;
        }
        g.snapshot = snap;
        const firstKept = g.entries.findIndex((e) => e.index > snap.meta.index);
        g.entries = firstKept < 0 ? [] : g.entries.slice(firstKept);
        return;
      }
      case RecordKind.RemoveGroup:
        this.#groups.delete(groupId);
        return;
      default:
        throw new DecodeError(`Unknown WAL record kind ${kind}`, 0);
    }
  }

  result(): Map<number, RecoveredGroup> {
    for (const [groupId, g] of this.#groups) {
      const expected = (g.snapshot?.meta.index ?? 0) + 1;
      const first = g.entries[0]?.index;
      if (first !== undefined && first !== expected) {
        throw new WalCorruptionError(
          `WAL of group ${groupId} starts at index ${first}, expected ${expected}`,
        );
      }
    }
    return this.#groups;
  }
}
