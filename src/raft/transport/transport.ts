import type { NodeId } from "../core/mod.ts";
import type { Envelope } from "./codec.ts";

export interface Address {
  hostname: string;
  port: number;
}

/** Called with every batch of messages that arrived from one peer host. */
export type InboundHandler = (from: NodeId, envelopes: Envelope[]) => void;

/**
 * Moves messages of all groups between hosts. Delivery is best effort:
 * messages to a peer that cannot be reached are dropped, and Raft retries.
 */
export interface Transport {
  /** Starts accepting connections; inbound batches go to `handler`. */
  start(handler: InboundHandler): Promise<void>;
  /** Replaces the address book (peers not listed are disconnected). */
  setPeers(peers: ReadonlyMap<NodeId, Address>): void;
  /**
   * Queues `env` for `to` until the next flush(). Returns false when it was
   * dropped at once (peer unknown, not connected, or its queue full).
   */
  send(to: NodeId, env: Envelope): boolean;
  /**
   * Sends what was queued since the last flush, one frame per peer; pings
   * peers idle since pingIntervalMs and retries connections whose backoff
   * has passed. `nowMs` is a monotonic clock (performance.now()).
   */
  flush(nowMs: number): void;
  /** When anything was last heard from `peer` (monotonic ms), -Infinity if never. */
  lastHeardMs(peer: NodeId): number;
  close(): Promise<void>;
}

/** Minimal logging seam shared by the transport and host. */
export interface TransportLogger {
  warn(message: string): void;
}
