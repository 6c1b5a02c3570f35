/**
 * The Raft host of one node: runs every group the node belongs to on one
 * loop, one WAL and one transport (see RaftHost). The broker implements
 * StateMachine per group, listens to leadership changes, and exchanges small
 * application messages with other hosts by node id (sendApp, onAppMessage)
 * over the same connections. Imports the raft core, wal and transport;
 * nothing above raft.
 */
export {
  type GroupStats,
  type LogStatus,
  type ProposeResult,
  RaftHost,
  type RaftHostLogger,
  type RaftHostOptions,
  type ReplicationStatus,
  type StartGroupOptions,
} from "./raft_host.ts";
export type { LeaderChange, StateMachine } from "./state_machine.ts";
