/**
 * Raft's own binary encoding of entries, hard states and snapshots, shared by
 * the WAL records and the transport frames so that both agree on one layout.
 * Indices and terms are numbers (≤ 2^53) stored as unsigned 64-bit integers.
 */
import type {
  ConfState,
  Entry,
  EntryTypeValue,
  HardState,
  Snapshot,
  SnapshotMeta,
} from "../core/mod.ts";
import { crc32c, crc32cCombine, takeCrc32c } from "../../util/mod.ts";

/** Malformed bytes: a length or count runs past the end, or a value is out of range. */
export class DecodeError extends RangeError {
  override name = "DecodeError";
  readonly position: number;
  constructor(message: string, position: number) {
    super(`${message}: at byte ${position}`);
    this.position = position;
  }
}

const TWO_32 = 2 ** 32;

/** An append-only buffer that grows by doubling; reused across encodes by reset(). */
export class ByteWriter {
  #buf: Uint8Array;
  #view: DataView;
  #length = 0;

  constructor(initialBytes = 4096) {
    this.#buf = new Uint8Array(initialBytes);
    this.#view = new DataView(this.#buf.buffer);
  }

  get length(): number {
    return this.#length;
  }

  reset(): void {
    this.#length = 0;
  }

  /** A view of the bytes written so far; valid until the next write or reset. */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.#length);
  }

  #reserve(bytes: number): number {
    const at = this.#length;
    const need = at + bytes;
    if (need > this.#buf.length) {
      let size = this.#buf.length * 2;
      while (size < need) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.#buf.subarray(0, at));
      this.#buf = next;
      this.#view = new DataView(next.buffer);
    }
    this.#length = need;
    return at;
  }

  u8(value: number): void {
    const at = this.#reserve(1);
    this.#buf[at] = value;
  }

  u32(value: number): void {
    // Reserve first: growing replaces #view.
    const at = this.#reserve(4);
    this.#view.setUint32(at, value);
  }

  /** Overwrites a u32 written earlier (length prefixes, CRCs). */
  u32At(position: number, value: number): void {
    this.#view.setUint32(position, value);
  }

  u64(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(
        `Cannot encode u64: ${value} is not a safe non-negative integer`,
      );
    }
    const at = this.#reserve(8);
    this.#view.setUint32(at, Math.floor(value / TWO_32));
    this.#view.setUint32(at + 4, value >>> 0);
  }

  bytes(value: Uint8Array): void {
    this.u32(value.length);
    this.raw(value);
  }

  raw(value: Uint8Array): void {
    const at = this.#reserve(value.length);
    this.#buf.set(value, at);
  }
}

/** A bounds-checked cursor over bytes; every read past the end throws DecodeError. */
export class ByteReader {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  readonly #shareBytes: boolean;
  #position = 0;

  /**
   * `shareBytes`: bytes() returns views instead of copies, for a buffer
   * owned by the decoded values alone (a received frame). The WAL reads
   * whole segment files and copies, so that entries do not pin them.
   */
  constructor(buf: Uint8Array, options: { shareBytes?: boolean } = {}) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#shareBytes = options.shareBytes ?? false;
  }

  get position(): number {
    return this.#position;
  }

  get remaining(): number {
    return this.#buf.length - this.#position;
  }

  #take(bytes: number, what: string): number {
    if (bytes > this.remaining) {
      throw new DecodeError(
        `Cannot read ${what}: need ${bytes} bytes, ${this.remaining} left`,
        this.#position,
      );
    }
    const at = this.#position;
    this.#position += bytes;
    return at;
  }

  u8(what = "u8"): number {
    return this.#buf[this.#take(1, what)]!;
  }

  u32(what = "u32"): number {
    return this.#view.getUint32(this.#take(4, what));
  }

  u64(what = "u64"): number {
    const at = this.#take(8, what);
    const value = this.#view.getUint32(at) * TWO_32 +
      this.#view.getUint32(at + 4);
    if (!Number.isSafeInteger(value)) {
      throw new DecodeError(`Cannot read ${what}: ${value} exceeds 2^53`, at);
    }
    return value;
  }

  /** A length-prefixed byte string: a copy that outlives the source buffer, unless shareBytes. */
  bytes(what = "bytes"): Uint8Array {
    const length = this.u32(`${what} length`);
    const bytes = this.raw(length, what);
    return this.#shareBytes ? bytes : bytes.slice();
  }

  /** A view (no copy) of the next `length` bytes. */
  raw(length: number, what = "bytes"): Uint8Array {
    const at = this.#take(length, what);
    return this.#buf.subarray(at, at + length);
  }
}

/** index, term, type and data length. */
const ENTRY_HEADER_BYTES = 8 + 8 + 1 + 4;
const ENTRIES_COUNT_BYTES = 4;

export function writeEntry(w: ByteWriter, e: Entry): void {
  w.u64(e.index);
  w.u64(e.term);
  w.u8(e.type);
  w.bytes(e.data);
}

export function readEntry(r: ByteReader): Entry {
  const index = r.u64("entry index");
  const term = r.u64("entry term");
  const type = r.u8("entry type");
  if (type !== 0 && type !== 1) {
    throw new DecodeError(`Invalid entry type ${type}`, r.position - 1);
  }
  const data = r.bytes("entry data");
  return { index, term, type: type as EntryTypeValue, data };
}

/** The length of writeEntries' encoding of `entries`. */
export function entriesBytes(entries: readonly Entry[]): number {
  let n = ENTRIES_COUNT_BYTES;
  for (const e of entries) n += ENTRY_HEADER_BYTES + e.data.length;
  return n;
}

export function writeEntries(w: ByteWriter, entries: readonly Entry[]): void {
  w.u32(entries.length);
  for (const e of entries) writeEntry(w, e);
}

/**
 * CRC-32C of `body`, whose bytes from `entriesAt` on are writeEntries'
 * encoding of `entries`: the data of an entry whose CRC a caller noted
 * (noteCrc32c) is combined in, not read.
 */
export function entriesBodyCrc32c(
  body: Uint8Array,
  entriesAt: number,
  entries: readonly Entry[],
): number {
  let crc = 0;
  let readFrom = 0;
  let pos = entriesAt + ENTRIES_COUNT_BYTES;
  for (const e of entries) {
    const dataAt = pos + ENTRY_HEADER_BYTES;
    const known = takeCrc32c(e.data);
    if (known !== undefined) {
      crc = crc32c(body.subarray(readFrom, dataAt), crc);
      crc = crc32cCombine(crc, known, e.data.length);
      readFrom = dataAt + e.data.length;
    }
    pos = dataAt + e.data.length;
  }
  return crc32c(body.subarray(readFrom), crc);
}

export function readEntries(r: ByteReader): Entry[] {
  const count = r.u32("entry count");
  // Refuse counts the buffer cannot hold before allocating.
  if (count * ENTRY_HEADER_BYTES > r.remaining) {
    throw new DecodeError(
      `Entry count ${count} exceeds the bytes left`,
      r.position,
    );
  }
  const entries: Entry[] = new Array(count);
  for (let i = 0; i < count; i++) entries[i] = readEntry(r);
  return entries;
}

export function writeHardState(w: ByteWriter, hs: HardState): void {
  w.u64(hs.term);
  w.u64(hs.vote);
  w.u64(hs.commit);
}

export function readHardState(r: ByteReader): HardState {
  return {
    term: r.u64("hard state term"),
    vote: r.u64("hard state vote"),
    commit: r.u64("hard state commit"),
  };
}

function writeIds(w: ByteWriter, ids: readonly number[]): void {
  w.u32(ids.length);
  for (const id of ids) w.u64(id);
}

function readIds(r: ByteReader, what: string): number[] {
  const count = r.u32(`${what} count`);
  if (count * 8 > r.remaining) {
    throw new DecodeError(
      `${what} count ${count} exceeds the bytes left`,
      r.position,
    );
  }
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(r.u64(what));
  return ids;
}

export function writeConfState(w: ByteWriter, cs: ConfState): void {
  writeIds(w, cs.voters);
  writeIds(w, cs.learners);
}

export function readConfState(r: ByteReader): ConfState {
  return { voters: readIds(r, "voter"), learners: readIds(r, "learner") };
}

export function writeSnapshotMeta(w: ByteWriter, meta: SnapshotMeta): void {
  w.u64(meta.index);
  w.u64(meta.term);
  writeConfState(w, meta.confState);
}

export function readSnapshotMeta(r: ByteReader): SnapshotMeta {
  return {
    index: r.u64("snapshot index"),
    term: r.u64("snapshot term"),
    confState: readConfState(r),
  };
}

export function writeSnapshot(w: ByteWriter, s: Snapshot): void {
  writeSnapshotMeta(w, s.meta);
  w.bytes(s.data);
}

export function readSnapshot(r: ByteReader): Snapshot {
  const meta = readSnapshotMeta(r);
  return { meta, data: r.bytes("snapshot data") };
}
