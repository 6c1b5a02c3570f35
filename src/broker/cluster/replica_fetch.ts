/**
 * Copies log data from another replica with a plain Kafka Fetch to its
 * client port: how a replica fills the offsets that a leader's snapshot
 * named but the replica's own log lacks (the leader had compacted the Raft
 * entries that carried them).
 */
import {
  ApiKey,
  decodeResponse,
  encodeRequest,
  ErrorCode,
  FrameDecoder,
} from "../../protocol/mod.ts";

const FETCH_VERSION = 12;
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export class ReplicaFetchError extends Error {
  override name = "ReplicaFetchError";
}

/** Reads up to `maxBytes` of whole batches from `offset` on one broker. */
export async function fetchFromReplica(
  address: { host: string; port: number },
  request: {
    topic: string;
    partition: number;
    offset: bigint;
    maxBytes: number;
    replicaId: number;
  },
): Promise<Uint8Array> {
  const conn = await Deno.connect({
    hostname: address.host,
    port: address.port,
  });
  try {
    const frame = encodeRequest(ApiKey.Fetch, FETCH_VERSION, {
      correlationId: 1,
      clientId: `raftq-replica-${request.replicaId}`,
    }, {
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: request.maxBytes,
      topics: [{
        topic: request.topic,
        partitions: [{
          partition: request.partition,
          fetchOffset: request.offset,
          partitionMaxBytes: request.maxBytes,
        }],
      }],
    });
    let written = 0;
    while (written < frame.length) {
      written += await conn.write(frame.subarray(written));
    }
    const frames = new FrameDecoder({ maxFrameBytes: MAX_RESPONSE_BYTES });
    for (;;) {
      const reply = frames.next();
      if (reply !== null) {
        const { body } = decodeResponse(ApiKey.Fetch, FETCH_VERSION, reply);
        const p = body.responses[0]?.partitions[0];
        if (p === undefined || p.errorCode !== ErrorCode.NONE) {
          throw new ReplicaFetchError(
            `Fetch of ${request.topic}-${request.partition} at ${request.offset} from broker ${address.host}:${address.port} failed with error ${p?.errorCode}`,
          );
        }
        return p.records ?? new Uint8Array(0);
      }
      const n = await conn.read(frames.writable(64 * 1024));
      if (n === null) {
        throw new ReplicaFetchError(
          `Broker ${address.host}:${address.port} closed the connection during a fetch`,
        );
      }
      frames.commit(n);
    }
  } finally {
    conn.close();
  }
}
