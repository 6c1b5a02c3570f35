/**
 * How the transaction coordinator gets a marker (marker_batch.ts) into a
 * partition led anywhere in the cluster.
 * A marker is appended through the partition's Raft group like a produce,
 * so every replica holds it at the same offset; a partition led by another
 * broker gets it through that broker, over the brokers' RPC (where Kafka
 * sends WriteTxnMarkers).
 */
import {
  decodeBatches,
  ErrorCode,
  Reader,
  Writer,
} from "../../protocol/mod.ts";
import {
  RPC_TIMEOUT_MS,
  RPC_WRITE_TXN_MARKER,
  type RpcHandler,
} from "../cluster/rpc.ts";
import type { Leading, WriteOutcome } from "../ports.ts";
import { appendErrorCode, type Partition } from "../partitions.ts";
import type { TxnResult } from "./txn_metadata.ts";
import { markerOf } from "./marker_batch.ts";

/** Where the coordinator sends markers; answers a Kafka error code. */
export interface MarkerWriter {
  write(
    topic: string,
    partition: number,
    marker: Uint8Array,
  ): Promise<number>;
}

export type MarkerHook = (
  topic: string,
  partition: number,
  marker: { producerId: bigint; result: TxnResult },
) => void;

/** The partitions this broker leads, as the handlers' ClusterView has them. */
export interface MarkerCluster {
  leading(topic: string, index: number): Leading;
  write(p: Partition, records: Uint8Array): Promise<WriteOutcome>;
}

/** The brokers' RPC, as the cluster node offers it. */
export interface MarkerChannel {
  serveRpc(method: number, handler: RpcHandler): void;
  requestRpc(
    to: number,
    method: number,
    body: Uint8Array,
    opts: { timeoutMs: number },
  ): Promise<Uint8Array>;
}

/**
 * Writes markers to the partitions this broker leads, and asks the leader
 * of any other partition to write them. It serves the same request for
 * the coordinators on other brokers.
 */
export class ClusterMarkerWriter implements MarkerWriter {
  readonly #cluster: MarkerCluster;
  readonly #channel: MarkerChannel;
  readonly #onWritten: MarkerHook;

  /**
   * `onWritten` hears of each marker this broker wrote into a partition it
   * leads, once durable (the group coordinator completes transactional
   * offset commits on it).
   */
  constructor(
    cluster: MarkerCluster,
    channel: MarkerChannel,
    opts: { onWritten?: MarkerHook } = {},
  ) {
    this.#cluster = cluster;
    this.#channel = channel;
    this.#onWritten = opts.onWritten ?? (() => {});
    channel.serveRpc(RPC_WRITE_TXN_MARKER, (_from, body) => {
      const r = new Reader(body);
      const topic = r.text(r.int16Length());
      const partition = r.int32();
      return this.#writeLocal(topic, partition, r.view(r.remaining).slice())
        .then((errorCode) => {
          const w = new Writer(2);
          w.int16(errorCode);
          return w.finish();
        });
    });
  }

  async write(
    topic: string,
    partition: number,
    marker: Uint8Array,
  ): Promise<number> {
    const leading = this.#cluster.leading(topic, partition);
    if (leading.ok || leading.leader === undefined) {
      return await this.#writeLocal(topic, partition, marker);
    }
    const w = new Writer(8 + topic.length * 3 + marker.length);
    w.int16String(topic);
    w.int32(partition);
    w.bytes(marker);
    try {
      const answer = await this.#channel.requestRpc(
        leading.leader.leaderId,
        RPC_WRITE_TXN_MARKER,
        w.finish(),
        { timeoutMs: RPC_TIMEOUT_MS },
      );
      return new Reader(answer).int16();
    } catch {
      // Unreachable or silent: the coordinator retries the marker.
      return ErrorCode.REQUEST_TIMED_OUT;
    }
  }

  async #writeLocal(
    topic: string,
    partition: number,
    marker: Uint8Array,
  ): Promise<number> {
    const leading = this.#cluster.leading(topic, partition);
    if (!leading.ok) return leading.errorCode;
    const outcome = await this.#cluster.write(leading.partition, marker);
    if (outcome.ok) {
      const [batch] = decodeBatches(marker);
      const written = batch === undefined ? null : markerOf(batch);
      if (written !== null) this.#onWritten(topic, partition, written);
      return ErrorCode.NONE;
    }
    return "errorCode" in outcome
      ? outcome.errorCode
      : appendErrorCode(outcome.error);
  }
}
