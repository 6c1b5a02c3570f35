import type { NodeId } from "../core/mod.ts";
import type { Envelope } from "./codec.ts";
import type { PeerCredentials } from "./peer_proof.ts";

export interface Address {
  hostname: string;
  port: number;
}

/**
 * Where a transport hands what arrived; `from` is the sending host's node
 * id. Handlers must not throw: a throw is taken for a malformed frame and
 * drops the connection it came from.
 */
export interface InboundHandlers {
  /** Every batch of Raft messages that arrived from one peer host. */
  messages(from: NodeId, envelopes: Envelope[]): void;
  /** One application message addressed to this node; `data` is the receiver's own copy. */
  app(from: NodeId, data: Uint8Array): void;
}

/**
 * Moves messages of all groups, and application messages, between hosts.
 * Delivery is best effort: messages to a peer that cannot be reached are
 * dropped, and Raft (or the application) retries.
 */
export interface Transport {
  /** Starts accepting connections; what arrives goes to `handlers`. */
  start(handlers: InboundHandlers): Promise<void>;
  /** Replaces the address book (peers not listed are disconnected). */
  setPeers(peers: ReadonlyMap<NodeId, Address>): void;
  /**
   * Queues `env` for `to` until the next flush(). Returns false when it was
   * dropped at once (peer unknown, not connected, or its queue full).
   */
  send(to: NodeId, env: Envelope): boolean;
  /**
   * Sends one application message to peer `to` at once, without waiting
   * for flush(); it is delivered asynchronously, never inside this call.
   * Returns false when it was dropped (peer unknown, not connected, or its
   * queue full); throws RangeError above APP_MESSAGE_BYTES_MAX.
   */
  sendApp(to: NodeId, data: Uint8Array): boolean;
  /**
   * Sends what was queued since the last flush, one frame per peer; pings
   * peers idle since pingIntervalMs and retries connections whose backoff
   * has passed. `nowMs` is a monotonic clock (performance.now()).
   */
  flush(nowMs: number): void;
  /** When anything was last heard from `peer` (monotonic ms), -Infinity if never. */
  lastHeardMs(peer: NodeId): number;
  /** New connections use `tls` (raft.tls renewed); open ones keep theirs. */
  reloadTls(tls: PeerCredentials): Promise<void>;
  close(): Promise<void>;
}

/** Minimal logging seam shared by the transport and host. */
export interface TransportLogger {
  warn(message: string): void;
}
