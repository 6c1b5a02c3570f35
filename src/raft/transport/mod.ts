/**
 * Carries Raft messages of all groups between hosts: a binary codec in
 * length-prefixed frames tagged with the group id, `TcpTransport` (one
 * outbound connection per peer node, reconnect with backoff, bounded send
 * queue, chunked snapshots) and `MemoryTransport` for in-process tests.
 * The seam is the `Transport` interface; the host owns the loop that calls
 * send() and flush(). Imports the raft core types and the WAL's binary
 * encoding only.
 */
export {
  type Envelope,
  type Frame,
  FRAME_BYTES_MAX,
  FrameDecoder,
  FrameKind,
  HostMessageType,
  readEnvelope,
  readMessagesPayload,
  SNAP_CHUNK_BYTES,
  SnapshotAssembler,
  writeEnvelope,
  writeMessagesFrame,
  writeSnapshotFrames,
} from "./codec.ts";
export { MemoryNetwork, MemoryTransport } from "./memory_transport.ts";
export { TcpTransport, type TcpTransportOptions } from "./tcp_transport.ts";
export type {
  Address,
  InboundHandler,
  Transport,
  TransportLogger,
} from "./transport.ts";
