/**
 * Record-batch compression codecs: the one place that imports compression
 * packages. Batches carry the codec in their attributes (record_batch.ts).
 */
import { gunzipSync, gzipSync } from "node:zlib";
import { Buffer } from "node:buffer";
import snappy from "snappy";
import lz4 from "lz4-napi";
import { decompress as zstdDecompress } from "fzstd";
import { Compression, type CompressionCode } from "./record_batch.ts";

/** A codec raftq cannot apply, or input its codec rejects. */
export class CompressionError extends Error {
  override name = "CompressionError";
}

/** Java's snappy-java stream framing: magic, version, compatible version. */
const XERIAL_MAGIC = [0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00];
const XERIAL_HEADER_BYTES = 16;

function isXerial(data: Uint8Array): boolean {
  return data.length >= XERIAL_HEADER_BYTES &&
    XERIAL_MAGIC.every((b, i) => data[i] === b);
}

/** Chunks of int32 length + raw snappy block follow the xerial header. */
function xerialUncompress(data: Uint8Array): Uint8Array {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const parts: Uint8Array[] = [];
  let pos = XERIAL_HEADER_BYTES;
  while (pos < data.length) {
    if (data.length - pos < 4) {
      throw new CompressionError("Xerial snappy chunk header is truncated");
    }
    const n = view.getInt32(pos);
    pos += 4;
    if (n < 0 || n > data.length - pos) {
      throw new CompressionError(
        `Xerial snappy chunk of ${n} bytes is truncated`,
      );
    }
    parts.push(snappyRaw(data.subarray(pos, pos + n)));
    pos += n;
  }
  return concat(parts);
}

function snappyRaw(data: Uint8Array): Uint8Array {
  return plain(snappy.uncompressSync(data, { asBuffer: true }) as Uint8Array);
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** Node Buffers as plain Uint8Array views, so callers see one type. */
function plain(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function codecName(codec: number): string {
  return Object.entries(Compression).find(([, c]) => c === codec)?.[0] ??
    `unknown codec ${codec}`;
}

/** Compresses a batch's records section. zstd has no encoder here. */
export function compress(codec: CompressionCode, data: Uint8Array): Uint8Array {
  switch (codec) {
    case Compression.none:
      return data;
    case Compression.gzip:
      return plain(gzipSync(data));
    case Compression.snappy:
      return plain(snappy.compressSync(
        Buffer.from(data.buffer, data.byteOffset, data.byteLength),
      ));
    case Compression.lz4:
      return plain(lz4.compressFrameSync(
        Buffer.from(data.buffer, data.byteOffset, data.byteLength),
      ));
    case Compression.zstd:
      throw new CompressionError(
        "Cannot compress with zstd: only zstd decompression is available",
      );
  }
}

/**
 * Decompresses a batch's records section. Snappy may be raw (librdkafka)
 * or xerial-framed (Java clients).
 */
export function decompress(codec: number, data: Uint8Array): Uint8Array {
  try {
    switch (codec) {
      case Compression.none:
        return data;
      case Compression.gzip:
        return plain(gunzipSync(data));
      case Compression.snappy:
        return isXerial(data) ? xerialUncompress(data) : snappyRaw(data);
      case Compression.lz4:
        return plain(lz4.decompressFrameSync(
          Buffer.from(data.buffer, data.byteOffset, data.byteLength),
        ));
      case Compression.zstd:
        return zstdDecompress(data);
    }
  } catch (e) {
    if (e instanceof CompressionError) throw e;
    throw new CompressionError(
      `Cannot decompress ${data.length} bytes of ${codecName(codec)}: ${
        (e as Error).message
      }`,
      { cause: e },
    );
  }
  throw new CompressionError(
    `Cannot decompress: ${codecName(codec)} is not a codec`,
  );
}
