/**
 * Raft for raftq: the pure consensus core, the write-ahead log shared by all
 * groups of a node, the transport (one connection per peer) and the
 * multi-group host that ties them together. The broker imports this module
 * only. Imports nothing of raftq beyond src/util.
 */
export * from "./core/mod.ts";
export {
  type GroupStats,
  type LeaderChange,
  type LogStatus,
  type ProposeResult,
  RaftHost,
  type RaftHostLogger,
  type RaftHostOptions,
  type ReplicationStatus,
  type StartGroupOptions,
  type StateMachine,
} from "./host/mod.ts";
export {
  type Address,
  MemoryNetwork,
  MemoryTransport,
  PeerCredentials,
  type PeerTlsFiles,
  TcpTransport,
  type Transport,
} from "./transport/mod.ts";
export { Wal, WalCorruptionError, WalStorage } from "./wal/mod.ts";
