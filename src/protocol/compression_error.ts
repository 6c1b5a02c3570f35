/** A codec raftq cannot apply, or input its codec rejects. */
export class CompressionError extends Error {
  override name = "CompressionError";
}

/**
 * Upper bound on what one decompression may produce. Decoders check it
 * before allocating, so a few hostile bytes cannot claim gigabytes; Kafka
 * batches are far smaller (message.max.bytes defaults to 1 MiB).
 */
export const MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024;
