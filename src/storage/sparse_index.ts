/**
 * An in-memory sorted table of (key, value) pairs, used for both of a
 * segment's indexes: the offset index (relative offset → file position) and the
 * time index (max timestamp → relative offset). Keys only ever grow, so a
 * binary search answers both "last entry at or below" and "first entry at or
 * above". Numbers in Float64Arrays hold u32 offsets and positions and ms
 * timestamps (< 2^53) exactly, which lets one class serve both indexes.
 */
import { assert } from "../util/mod.ts";

/** How one index lays out its entries on disk (Kafka's file formats). */
export interface IndexFormat {
  readonly entryBytes: number;
  write(view: DataView, pos: number, key: number, value: number): void;
  read(view: DataView, pos: number): [key: number, value: number];
}

/** `.index`: relativeOffset u32 + position u32. */
export const OFFSET_INDEX_FORMAT: IndexFormat = {
  entryBytes: 8,
  write(view, pos, key, value) {
    view.setUint32(pos, key);
    view.setUint32(pos + 4, value);
  },
  read(view, pos) {
    return [view.getUint32(pos), view.getUint32(pos + 4)];
  },
};

/** `.timeindex`: timestamp i64 + relativeOffset u32. */
export const TIME_INDEX_FORMAT: IndexFormat = {
  entryBytes: 12,
  write(view, pos, key, value) {
    view.setBigInt64(pos, BigInt(key));
    view.setUint32(pos + 8, value);
  },
  read(view, pos) {
    return [Number(view.getBigInt64(pos)), view.getUint32(pos + 8)];
  },
};

const INITIAL_CAPACITY = 64;

export class SparseIndex {
  #keys = new Float64Array(INITIAL_CAPACITY);
  #values = new Float64Array(INITIAL_CAPACITY);
  // Invariant: #keys[0..#count) strictly increasing.
  #count = 0;

  get count(): number {
    return this.#count;
  }

  append(key: number, value: number): void {
    assert(
      this.#count === 0 || key > this.#keys[this.#count - 1]!,
      "Index keys must strictly increase",
      { key, last: this.#keys[this.#count - 1] },
    );
    if (this.#count === this.#keys.length) {
      this.#keys = grow(this.#keys);
      this.#values = grow(this.#values);
    }
    this.#keys[this.#count] = key;
    this.#values[this.#count] = value;
    this.#count++;
  }

  keyAt(i: number): number {
    assert(i >= 0 && i < this.#count, "Index entry out of range", { i });
    return this.#keys[i]!;
  }

  valueAt(i: number): number {
    assert(i >= 0 && i < this.#count, "Index entry out of range", { i });
    return this.#values[i]!;
  }

  /** Index of the last entry whose key is <= `key`, or -1. */
  floor(key: number): number {
    let lo = 0;
    let hi = this.#count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#keys[mid]! <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** Index of the first entry whose key is >= `key`, or -1. */
  ceil(key: number): number {
    const i = this.floor(key);
    if (i >= 0 && this.#keys[i] === key) return i;
    return i + 1 < this.#count ? i + 1 : -1;
  }

  /** Drops every entry at index `i` and after. */
  truncate(i: number): void {
    assert(i >= 0 && i <= this.#count, "Index truncation out of range", { i });
    this.#count = i;
  }

  encode(format: IndexFormat): Uint8Array {
    const bytes = new Uint8Array(this.#count * format.entryBytes);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < this.#count; i++) {
      format.write(
        view,
        i * format.entryBytes,
        this.#keys[i]!,
        this.#values[i]!,
      );
    }
    return bytes;
  }

  /**
   * Parses an index file; null when its size or key order shows it is not a
   * whole index (a torn or stale write), so the caller rebuilds from the log.
   */
  static decode(bytes: Uint8Array, format: IndexFormat): SparseIndex | null {
    if (bytes.length % format.entryBytes !== 0) return null;
    const index = new SparseIndex();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    for (let pos = 0; pos < bytes.length; pos += format.entryBytes) {
      const [key, value] = format.read(view, pos);
      if (index.#count > 0 && key <= index.#keys[index.#count - 1]!) {
        return null;
      }
      index.append(key, value);
    }
    return index;
  }
}

function grow(array: Float64Array): Float64Array<ArrayBuffer> {
  const bigger = new Float64Array(array.length * 2);
  bigger.set(array);
  return bigger;
}
