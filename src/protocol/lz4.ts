/**
 * LZ4 frame format, as Kafka's lz4 codec carries it: magic, a descriptor
 * guarded by an xxHash32 byte, size-prefixed blocks (high bit = stored
 * uncompressed), an end mark and optional checksums. The decoder accepts
 * linked or independent blocks of any standard maximum size and checks every
 * length and offset before use; the encoder writes independent 64 KiB blocks.
 */
import {
  CompressionError,
  MAX_DECOMPRESSED_BYTES,
} from "./compression_error.ts";
import { copyMatch, readI32LE } from "./lz_util.ts";
import { xxhash32 } from "./xxhash32.ts";

const FRAME_MAGIC = 0x184d2204;
/** Skippable frames carry magic 0x184D2A50..5F and are ignored. */
const SKIPPABLE_MAGIC = 0x184d2a50;
const FLG_VERSION = 0x40;
const FLG_BLOCK_INDEPENDENT = 0x20;
const FLG_BLOCK_CHECKSUM = 0x10;
const FLG_CONTENT_SIZE = 0x08;
const FLG_CONTENT_CHECKSUM = 0x04;
const FLG_RESERVED = 0x02;
const FLG_DICT_ID = 0x01;
const BD_RESERVED = 0x8f;
const BLOCK_UNCOMPRESSED = 0x80000000;

const MIN_MATCH = 4;
/** Block-format end rules: the last 5 bytes are literals... */
const LAST_LITERALS = 5;
/** ...and the last match starts at least 12 bytes before the end. */
const MF_LIMIT = 12;
/** One compressed byte yields at most this much output (255 per length byte). */
const MAX_EXPANSION = 255;

const ENCODE_BLOCK_BYTES = 64 * 1024;
const ENCODE_BD_64K = 4 << 4;
const HASH_BITS = 16;

function fail(what: string): never {
  throw new CompressionError(`Cannot decompress lz4: ${what}`);
}

/** A growable output buffer that never exceeds MAX_DECOMPRESSED_BYTES. */
class Output {
  buf = new Uint8Array(0);
  pos = 0;

  reserve(extraBytes: number): void {
    const need = this.pos + extraBytes;
    if (need <= this.buf.length) return;
    if (need > MAX_DECOMPRESSED_BYTES) {
      fail(`output would exceed ${MAX_DECOMPRESSED_BYTES} bytes`);
    }
    const next = new Uint8Array(
      Math.min(Math.max(need, this.buf.length * 2), MAX_DECOMPRESSED_BYTES),
    );
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
}

/**
 * Decodes one LZ4 block src[ip, end) into out at out.pos, writing at most
 * `limit` bytes. Matches may reach back to `windowStart` (the block start for
 * independent blocks, the frame start for linked ones).
 */
function decodeBlock(
  src: Uint8Array,
  out: Output,
  bounds: { ip: number; end: number; limit: number; windowStart: number },
): void {
  const { end, windowStart } = bounds;
  const dst = out.buf;
  const opLimit = out.pos + bounds.limit;
  let ip = bounds.ip;
  let op = out.pos;
  for (;;) {
    if (ip >= end) fail("block ends inside a sequence");
    const token = src[ip++]!;
    let litLen = token >>> 4;
    if (litLen === 15) {
      let b: number;
      do {
        if (ip >= end) fail("literal length is truncated");
        b = src[ip++]!;
        litLen += b;
      } while (b === 255);
    }
    if (litLen > end - ip) fail(`literal of ${litLen} bytes is truncated`);
    if (litLen > opLimit - op) fail("block exceeds its maximum size");
    if (litLen < 16) {
      for (let k = 0; k < litLen; k++) dst[op + k] = src[ip + k]!;
    } else {
      dst.set(src.subarray(ip, ip + litLen), op);
    }
    ip += litLen;
    op += litLen;
    if (ip === end) break;
    if (end - ip < 2) fail("match offset is truncated");
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op - windowStart) {
      fail(`match offset ${offset} reaches before the window`);
    }
    let len = token & 15;
    if (len === 15) {
      let b: number;
      do {
        if (ip >= end) fail("match length is truncated");
        b = src[ip++]!;
        len += b;
      } while (b === 255);
    }
    len += MIN_MATCH;
    if (len > opLimit - op) fail("block exceeds its maximum size");
    copyMatch(dst, op, { offset, len });
    op += len;
  }
  out.pos = op;
}

function need(src: Uint8Array, ip: number, bytes: number, what: string): void {
  if (src.length - ip < bytes) fail(`${what} is truncated`);
}

/** Decodes one frame starting at ip (after its magic); returns the next ip. */
function decodeFrame(src: Uint8Array, ip: number, out: Output): number {
  need(src, ip, 3, "frame descriptor");
  const flg = src[ip]!;
  const bd = src[ip + 1]!;
  if ((flg & 0xc0) !== FLG_VERSION) fail(`frame version in FLG ${flg}`);
  if (flg & FLG_RESERVED || bd & BD_RESERVED) {
    fail(`reserved descriptor bits are set (FLG ${flg}, BD ${bd})`);
  }
  if (flg & FLG_DICT_ID) fail("frames needing a dictionary are unsupported");
  const sizeCode = bd >>> 4;
  if (sizeCode < 4) fail(`block max size code ${sizeCode} is not 4..7`);
  const blockMaxBytes = 1 << (2 * sizeCode + 8);
  const descriptorBytes = flg & FLG_CONTENT_SIZE ? 10 : 2;
  need(src, ip, descriptorBytes + 1, "frame descriptor");
  const hc = (xxhash32(src.subarray(ip, ip + descriptorBytes)) >>> 8) & 0xff;
  if (hc !== src[ip + descriptorBytes]) {
    fail(`header checksum ${src[ip + descriptorBytes]} should be ${hc}`);
  }
  ip += descriptorBytes + 1;
  const checksumBytes = flg & FLG_BLOCK_CHECKSUM ? 4 : 0;
  const frameStart = out.pos;
  for (;;) {
    need(src, ip, 4, "block size");
    const word = readI32LE(src, ip) >>> 0;
    ip += 4;
    if (word === 0) break;
    const size = (word & ~BLOCK_UNCOMPRESSED) >>> 0;
    if (size > blockMaxBytes) {
      fail(`block of ${size} bytes exceeds the ${blockMaxBytes} maximum`);
    }
    need(src, ip, size + checksumBytes, `block of ${size} bytes`);
    const data = src.subarray(ip, ip + size);
    if (checksumBytes && xxhash32(data) !== readI32LE(src, ip + size) >>> 0) {
      fail("block checksum mismatch");
    }
    if (word & BLOCK_UNCOMPRESSED) {
      out.reserve(size);
      out.buf.set(data, out.pos);
      out.pos += size;
    } else {
      const limit = Math.min(blockMaxBytes, size * MAX_EXPANSION);
      out.reserve(limit);
      decodeBlock(src, out, {
        ip,
        end: ip + size,
        limit,
        windowStart: flg & FLG_BLOCK_INDEPENDENT ? out.pos : frameStart,
      });
    }
    ip += size + checksumBytes;
  }
  if (flg & FLG_CONTENT_CHECKSUM) {
    need(src, ip, 4, "content checksum");
    const content = out.buf.subarray(frameStart, out.pos);
    if (xxhash32(content) !== readI32LE(src, ip) >>> 0) {
      fail("content checksum mismatch");
    }
    ip += 4;
  }
  return ip;
}

/**
 * Decompresses one or more concatenated LZ4 frames (skippable frames are
 * ignored). Throws CompressionError on any malformed input.
 */
export function lz4Decompress(src: Uint8Array): Uint8Array {
  const out = new Output();
  let ip = 0;
  if (src.length === 0) fail("input is empty");
  while (ip < src.length) {
    need(src, ip, 4, "frame magic");
    const magic = readI32LE(src, ip) >>> 0;
    ip += 4;
    if (magic === FRAME_MAGIC) {
      ip = decodeFrame(src, ip, out);
    } else if ((magic & 0xfffffff0) >>> 0 === SKIPPABLE_MAGIC) {
      need(src, ip, 4, "skippable frame size");
      const size = readI32LE(src, ip) >>> 0;
      need(src, ip + 4, size, "skippable frame");
      ip += 4 + size;
    } else {
      fail(`bad frame magic 0x${magic.toString(16)}`);
    }
  }
  return out.buf.slice(0, out.pos);
}

/** Appends LZ4 sequences to a buffer sized for the block's worst case. */
class BlockWriter {
  readonly dst = new Uint8Array(
    ENCODE_BLOCK_BYTES + Math.ceil(ENCODE_BLOCK_BYTES / 255) + 16,
  );
  pos = 0;

  #length(n: number): void {
    let left = n;
    while (left >= 255) {
      this.dst[this.pos++] = 255;
      left -= 255;
    }
    this.dst[this.pos++] = left;
  }

  /** One sequence: literals, then (unless last) a match of len >= 4. */
  sequence(literals: Uint8Array, match?: { offset: number; len: number }) {
    const lit = literals.length;
    const ml = match ? match.len - MIN_MATCH : 0;
    this.dst[this.pos++] = (Math.min(lit, 15) << 4) | Math.min(ml, 15);
    if (lit >= 15) this.#length(lit - 15);
    this.dst.set(literals, this.pos);
    this.pos += lit;
    if (!match) return;
    this.dst[this.pos++] = match.offset & 0xff;
    this.dst[this.pos++] = match.offset >>> 8;
    if (ml >= 15) this.#length(ml - 15);
  }
}

function hash(u32: number): number {
  return Math.imul(u32, 0x9e3779b1) >>> (32 - HASH_BITS);
}

/**
 * Greedy LZ4 block encoder. `table` holds absolute positions in `src`, so
 * entries from earlier blocks fall below `start` and are ignored without
 * clearing the table.
 */
function compressBlock(
  src: Uint8Array,
  w: BlockWriter,
  options: { start: number; end: number; table: Int32Array },
): void {
  const { start, end, table } = options;
  w.pos = 0;
  let literalStart = start;
  const matchStartMax = end - MF_LIMIT;
  const matchEndMax = end - LAST_LITERALS;
  let i = start;
  let misses = 0;
  while (i <= matchStartMax) {
    const cur = readI32LE(src, i);
    const h = hash(cur);
    const cand = table[h]!;
    table[h] = i;
    if (cand < start || readI32LE(src, cand) !== cur) {
      // Step faster through data that does not compress.
      i += 1 + (misses++ >>> 5);
      continue;
    }
    misses = 0;
    let len = MIN_MATCH;
    while (i + len < matchEndMax && src[cand + len] === src[i + len]) len++;
    w.sequence(src.subarray(literalStart, i), { offset: i - cand, len });
    i += len;
    literalStart = i;
    if (i - 2 <= matchStartMax) table[hash(readI32LE(src, i - 2))] = i - 2;
  }
  w.sequence(src.subarray(literalStart, end));
}

/**
 * Compresses into one LZ4 frame: independent 64 KiB blocks, no checksums
 * beyond the header's (Kafka batches carry their own CRC).
 */
export function lz4Compress(src: Uint8Array): Uint8Array {
  const n = src.length;
  const blocks = Math.ceil(n / ENCODE_BLOCK_BYTES);
  const dst = new Uint8Array(7 + blocks * 4 + n + 4);
  const view = new DataView(dst.buffer);
  view.setUint32(0, FRAME_MAGIC, true);
  dst[4] = FLG_VERSION | FLG_BLOCK_INDEPENDENT;
  dst[5] = ENCODE_BD_64K;
  dst[6] = (xxhash32(dst.subarray(4, 6)) >>> 8) & 0xff;
  let op = 7;
  const w = new BlockWriter();
  const table = new Int32Array(1 << HASH_BITS).fill(-1);
  for (let start = 0; start < n; start += ENCODE_BLOCK_BYTES) {
    const end = Math.min(start + ENCODE_BLOCK_BYTES, n);
    compressBlock(src, w, { start, end, table });
    if (w.pos < end - start) {
      view.setUint32(op, w.pos, true);
      dst.set(w.dst.subarray(0, w.pos), op + 4);
      op += 4 + w.pos;
    } else {
      view.setUint32(op, (end - start) | BLOCK_UNCOMPRESSED, true);
      dst.set(src.subarray(start, end), op + 4);
      op += 4 + end - start;
    }
  }
  view.setUint32(op, 0, true);
  return dst.slice(0, op + 4);
}
