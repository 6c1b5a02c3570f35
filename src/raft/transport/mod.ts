/**
 * Carries Raft messages of all groups between hosts, and small application
 * messages beside them: a binary codec in length-prefixed frames (Raft
 * messages tagged with the group id, app messages with none),
 * `TcpTransport` (one outbound connection per peer node, reconnect with
 * backoff, bounded send queue, chunked snapshots) and `MemoryTransport` for
 * in-process tests.
 * The seam is the `Transport` interface; the host owns the loop that calls
 * send() and flush(). Imports the raft core types and the WAL's binary
 * encoding only.
 */
export {
  APP_MESSAGE_BYTES_MAX,
  type AppMessage,
  checkAppMessageSize,
  type Envelope,
  type Frame,
  FRAME_BYTES_MAX,
  FrameDecoder,
  FrameKind,
  HostMessageType,
  readAppPayload,
  readEnvelope,
  readMessagesPayload,
  SNAP_CHUNK_BYTES,
  SnapshotAssembler,
  writeAppFrame,
  writeEnvelope,
  writeMessagesFrame,
  writeSnapshotFrames,
} from "./codec.ts";
export { MemoryNetwork, MemoryTransport } from "./memory_transport.ts";
export { TcpTransport, type TcpTransportOptions } from "./tcp_transport.ts";
export { PeerCredentials, type PeerTlsFiles } from "./peer_proof.ts";
export type {
  Address,
  InboundHandlers,
  Transport,
  TransportLogger,
} from "./transport.ts";
