/**
 * Raw snappy block format (no stream framing): a varint uncompressed
 * length, then elements tagged literal or copy. The decoder trusts nothing:
 * every length and offset is checked before use.
 */
import {
  CompressionError,
  MAX_DECOMPRESSED_BYTES,
} from "./compression_error.ts";
import { copyMatch, readI32LE } from "./lz_util.ts";

const TAG_LITERAL = 0;
const TAG_COPY1 = 1;
const TAG_COPY2 = 2;

/** The longest copy one 2-byte-offset element can express. */
const MAX_COPY2_LEN = 64;
/** The most output one input byte can yield: a 3-byte element copying 64. */
const MAX_EXPANSION = Math.ceil(MAX_COPY2_LEN / 3);

/** The encoder matches within blocks of this size, as the reference does. */
const BLOCK_BYTES = 64 * 1024;
const HASH_BITS = 14;
const MIN_MATCH = 4;

function fail(what: string): never {
  throw new CompressionError(`Cannot decompress snappy: ${what}`);
}

/** Reads the varint preamble: [uncompressed length, bytes it took]. */
function readPreamble(src: Uint8Array): [number, number] {
  let value = 0;
  for (let i = 0; i < 5; i++) {
    if (i >= src.length) fail("length preamble is truncated");
    const b = src[i]!;
    value += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return [value, i + 1];
  }
  return fail("length preamble is longer than 5 bytes");
}

/** Decompresses one raw snappy block. Throws CompressionError on bad input. */
export function snappyDecompress(src: Uint8Array): Uint8Array {
  const [length, preambleBytes] = readPreamble(src);
  const bodyBytes = src.length - preambleBytes;
  if (length > bodyBytes * MAX_EXPANSION || length > MAX_DECOMPRESSED_BYTES) {
    fail(`declared length ${length} is impossible for ${src.length} bytes`);
  }
  const out = new Uint8Array(length);
  const end = src.length;
  let ip = preambleBytes;
  let op = 0;
  while (ip < end) {
    const tag = src[ip++]!;
    const kind = tag & 3;
    if (kind === TAG_LITERAL) {
      let len = tag >>> 2;
      if (len >= 60) {
        const extra = len - 59;
        if (ip + extra > end) fail("literal length is truncated");
        len = 0;
        for (let k = extra - 1; k >= 0; k--) len = len * 256 + src[ip + k]!;
        ip += extra;
      }
      len += 1;
      if (len > end - ip) fail(`literal of ${len} bytes is truncated`);
      if (len > length - op) fail("literal runs past the declared length");
      if (len < 16) {
        for (let k = 0; k < len; k++) out[op + k] = src[ip + k]!;
      } else {
        out.set(src.subarray(ip, ip + len), op);
      }
      ip += len;
      op += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === TAG_COPY1) {
      if (ip >= end) fail("copy offset is truncated");
      len = 4 + ((tag >>> 2) & 7);
      offset = ((tag >>> 5) << 8) | src[ip++]!;
    } else if (kind === TAG_COPY2) {
      if (ip + 2 > end) fail("copy offset is truncated");
      len = (tag >>> 2) + 1;
      offset = src[ip]! | (src[ip + 1]! << 8);
      ip += 2;
    } else {
      if (ip + 4 > end) fail("copy offset is truncated");
      len = (tag >>> 2) + 1;
      offset = readI32LE(src, ip) >>> 0;
      ip += 4;
    }
    if (offset === 0 || offset > op) {
      fail(`copy offset ${offset} is outside the ${op} bytes written`);
    }
    if (len > length - op) fail("copy runs past the declared length");
    copyMatch(out, op, { offset, len });
    op += len;
  }
  if (op !== length) fail(`produced ${op} bytes but declared ${length}`);
  return out;
}

/** Appends snappy elements to a buffer sized for the worst case. */
class SnappyWriter {
  readonly #dst: Uint8Array;
  #op = 0;

  constructor(capacityBytes: number) {
    this.#dst = new Uint8Array(capacityBytes);
  }

  varint(value: number): void {
    let v = value;
    while (v >= 128) {
      this.#dst[this.#op++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.#dst[this.#op++] = v;
  }

  literal(bytes: Uint8Array): void {
    const n = bytes.length - 1;
    if (n < 60) {
      this.#dst[this.#op++] = (n << 2) | TAG_LITERAL;
    } else {
      const extra = n < 0x100 ? 1 : n < 0x10000 ? 2 : n < 0x1000000 ? 3 : 4;
      this.#dst[this.#op++] = ((59 + extra) << 2) | TAG_LITERAL;
      for (let k = 0, v = n; k < extra; k++, v >>>= 8) {
        this.#dst[this.#op++] = v & 0xff;
      }
    }
    this.#dst.set(bytes, this.#op);
    this.#op += bytes.length;
  }

  /** A match of `len` >= 4 at `offset` < 64 KiB, split into elements. */
  copy(offset: number, len: number): void {
    let left = len;
    // Split so the tail never falls below the 4-byte minimum.
    while (left >= MAX_COPY2_LEN + MIN_MATCH) {
      this.#copy2(offset, MAX_COPY2_LEN);
      left -= MAX_COPY2_LEN;
    }
    if (left > MAX_COPY2_LEN) {
      this.#copy2(offset, MAX_COPY2_LEN - MIN_MATCH);
      left -= MAX_COPY2_LEN - MIN_MATCH;
    }
    if (left < 12 && offset < 2048) {
      this.#dst[this.#op++] = TAG_COPY1 | ((left - 4) << 2) |
        ((offset >>> 8) << 5);
      this.#dst[this.#op++] = offset & 0xff;
    } else {
      this.#copy2(offset, left);
    }
  }

  #copy2(offset: number, len: number): void {
    this.#dst[this.#op++] = TAG_COPY2 | ((len - 1) << 2);
    this.#dst[this.#op++] = offset & 0xff;
    this.#dst[this.#op++] = offset >>> 8;
  }

  bytes(): Uint8Array {
    return this.#dst.slice(0, this.#op);
  }
}

function hash(u32: number): number {
  return Math.imul(u32, 0x1e35a7bd) >>> (32 - HASH_BITS);
}

/**
 * Greedy matcher over one block: the table maps a 4-byte hash to the last
 * position seen, and only candidates inside the block count.
 */
function compressBlock(
  block: Uint8Array,
  w: SnappyWriter,
  table: Int32Array,
): void {
  const end = block.length;
  table.fill(-1);
  let literalStart = 0;
  let i = 0;
  const lastMatchStart = end - MIN_MATCH;
  let misses = 0;
  while (i <= lastMatchStart) {
    const cur = readI32LE(block, i);
    const h = hash(cur);
    const cand = table[h]!;
    table[h] = i;
    if (cand < 0 || readI32LE(block, cand) !== cur) {
      // Step faster through data that does not compress.
      i += 1 + (misses++ >>> 5);
      continue;
    }
    misses = 0;
    let len = MIN_MATCH;
    while (i + len < end && block[cand + len] === block[i + len]) len++;
    if (literalStart < i) w.literal(block.subarray(literalStart, i));
    w.copy(i - cand, len);
    i += len;
    literalStart = i;
    if (i - 1 <= lastMatchStart) table[hash(readI32LE(block, i - 1))] = i - 1;
  }
  if (literalStart < end) w.literal(block.subarray(literalStart, end));
}

/** Compresses into one raw snappy block that any snappy decoder accepts. */
export function snappyCompress(src: Uint8Array): Uint8Array {
  const n = src.length;
  // The reference's worst-case bound: literal tags add at most n/6.
  const w = new SnappyWriter(32 + n + Math.ceil(n / 6));
  w.varint(n);
  const table = new Int32Array(1 << HASH_BITS);
  for (let start = 0; start < n; start += BLOCK_BYTES) {
    compressBlock(src.subarray(start, start + BLOCK_BYTES), w, table);
  }
  return w.bytes();
}
