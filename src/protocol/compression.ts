/**
 * Record-batch compression codecs: the one place that picks a codec.
 * Batches carry the codec in their attributes (record_batch.ts). Snappy and
 * LZ4 are our own TypeScript (snappy.ts, lz4.ts) so raftq needs no native
 * modules; gzip and zstd are node:zlib, which Deno implements natively.
 */
import {
  constants,
  gunzipSync,
  gzipSync,
  zstdCompressSync,
  zstdDecompressSync,
} from "node:zlib";
import { concatBytes } from "../util/mod.ts";
import { CompressionError } from "./compression_error.ts";
import { lz4Compress, lz4Decompress } from "./lz4.ts";
import { Compression, type CompressionCode } from "./record_batch.ts";
import { snappyCompress, snappyDecompress } from "./snappy.ts";

export { CompressionError };

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
    parts.push(snappyDecompress(data.subarray(pos, pos + n)));
    pos += n;
  }
  return concatBytes(parts);
}

/** Node Buffers as plain Uint8Array views, so callers see one type. */
function plain(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function codecName(codec: number): string {
  return Object.entries(Compression).find(([, c]) => c === codec)?.[0] ??
    `unknown codec ${codec}`;
}

/**
 * Compresses a batch's records section. `level` (gzip 1-9, zstd -131072-22)
 * is the codec's default when absent; snappy and lz4 have one level here.
 */
export function compress(
  codec: CompressionCode,
  data: Uint8Array,
  level?: number,
): Uint8Array {
  switch (codec) {
    case Compression.none:
      return data;
    case Compression.gzip:
      return plain(gzipSync(data, level === undefined ? {} : { level }));
    case Compression.snappy:
      return snappyCompress(data);
    case Compression.lz4:
      return lz4Compress(data);
    case Compression.zstd:
      return plain(zstdCompressSync(
        data,
        level === undefined
          ? {}
          : { params: { [constants.ZSTD_c_compressionLevel]: level } },
      ));
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
        return isXerial(data) ? xerialUncompress(data) : snappyDecompress(data);
      case Compression.lz4:
        return lz4Decompress(data);
      case Compression.zstd:
        return plain(zstdDecompressSync(data));
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
