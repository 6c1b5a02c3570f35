/**
 * The Raft host of one node: runs every group the node belongs to on one
 * loop, one WAL and one transport (see RaftHost). The broker implements
 * StateMachine per group and listens to leadership changes. Imports the
 * raft core, wal and transport; nothing above raft.
 */
export {
  type ProposeResult,
  RaftHost,
  type RaftHostLogger,
  type RaftHostOptions,
  type StartGroupOptions,
} from "./raft_host.ts";
export type { LeaderChange, StateMachine } from "./state_machine.ts";
