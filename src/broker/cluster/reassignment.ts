/**
 * Partition reassignment as each partition leader carries it out: one Raft
 * membership change at a time toward the controller's target replicas, and
 * the replica side of the check that a learner's partition log is
 * complete before it may vote.
 */
import type { RaftHost } from "../../raft/mod.ts";
import {
  type Command,
  type CommandResult,
  type ControllerState,
  isMoving,
  type PartitionAssignment,
  targetOf,
} from "../controller/mod.ts";
import type { HostedGroups } from "./hosting.ts";
import { CONTROLLER_GROUP } from "./membership.ts";
import { type Rpc, RPC_REPLICA_COMPLETE, RPC_TIMEOUT_MS } from "./rpc.ts";

/** How often a partition leader takes the next step of a reassignment. */
export const REASSIGN_STEP_MS = 200;
/**
 * A learner this close to the leader's last index is promoted: the rest
 * arrives within a round trip, and waiting for an exact match could last
 * forever under a steady produce load.
 */
const CATCH_UP_LAG_ENTRIES_MAX = 64;

export interface ReassignmentOptions {
  nodeId: number;
  host: Pick<RaftHost, "changeMembership" | "membership" | "replication">;
  controller: Pick<ControllerState, "partitionByGroup">;
  groups: HostedGroups;
  /** Serves whether this replica's log is complete; asks a learner's. */
  rpc: Rpc;
  /** Has the controller apply a command (the move's completion). */
  propose(
    command: Command,
    opts: { timeoutMs: number },
  ): Promise<CommandResult>;
  log(message: string): void;
}

export class Reassignment {
  readonly #opts: ReassignmentOptions;
  /** Groups whose reassignment step is in flight: one at a time each. */
  readonly #stepping = new Set<number>();

  constructor(opts: ReassignmentOptions) {
    this.#opts = opts;
    opts.rpc.handle(RPC_REPLICA_COMPLETE, (_from, body) => {
      const groupId = new DataView(body.buffer, body.byteOffset).getUint32(0);
      const sm = opts.groups.hosted.get(groupId);
      return Promise.resolve(
        Uint8Array.of(sm !== undefined && sm.gapEnd === null ? 1 : 0),
      );
    });
  }

  /**
   * On each partition leader: takes the next step of every reassignment
   * of a group it leads. Each step is derived from the group's Raft
   * configuration and the controller's target alone, so a leader elected
   * halfway through a move (after a crash) resumes it where it stands.
   */
  drive(): void {
    for (const groupId of this.#opts.groups.leaderTerms.keys()) {
      if (groupId === CONTROLLER_GROUP || this.#stepping.has(groupId)) {
        continue;
      }
      const known = this.#opts.controller.partitionByGroup(groupId);
      if (known === undefined || !isMoving(known.assignment)) continue;
      this.#stepping.add(groupId);
      this.#step(groupId, known.assignment)
        .catch((err) => {
          // Leadership moved or a change is still pending: next round.
          this.#opts.log(`reassignment of group ${groupId} waits: ${err}`);
        })
        .finally(() => this.#stepping.delete(groupId));
    }
  }

  /**
   * One membership change toward the target, in an order that never loses
   * a quorum of caught-up voters: add each new replica as a learner,
   * promote it once caught up, move leadership off a replica being
   * removed, remove the old replicas, then tell the controller.
   */
  async #step(groupId: number, a: PartitionAssignment): Promise<void> {
    const { host, log } = this.#opts;
    const conf = host.membership(groupId);
    if (conf === undefined) return;
    const target = targetOf(a);
    const members = [...conf.voters, ...conf.learners];
    const where = `group ${groupId} (moving to [${target.join(", ")}])`;
    const absent = target.find((r) => !members.includes(r));
    if (absent !== undefined) {
      await host.changeMembership(groupId, {
        type: "addLearner",
        nodeId: absent,
      });
      log(`${where}: added broker ${absent} as a learner`);
      return;
    }
    const learner = target.find((r) => conf.learners.includes(r));
    if (learner !== undefined) {
      if (!(await this.caughtUp(groupId, learner))) return;
      await host.changeMembership(groupId, {
        type: "addVoter",
        nodeId: learner,
      });
      log(`${where}: promoted broker ${learner} to voter`);
      return;
    }
    const leaving = members.find((r) => !target.includes(r));
    if (leaving === this.#opts.nodeId) {
      const matches = host.replication(groupId)?.matchIndexes;
      const successor = [...target].sort((x, y) =>
        (matches?.get(y) ?? 0) - (matches?.get(x) ?? 0)
      )[0];
      if (successor !== undefined) {
        log(`${where}: handing leadership to broker ${successor}`);
        this.#opts.groups.transferLeader(groupId, successor);
      }
      return;
    }
    if (leaving !== undefined) {
      await host.changeMembership(groupId, {
        type: "removeVoter",
        nodeId: leaving,
      });
      log(`${where}: removed broker ${leaving}`);
      return;
    }
    const result = await this.#opts.propose({
      type: "completeReassignment",
      groupId,
      replicas: [...target],
    }, { timeoutMs: RPC_TIMEOUT_MS });
    log(
      `${where}: ${
        result.ok ? "complete" : `completion refused: ${result.message}`
      }`,
    );
  }

  /**
   * A learner may vote once its Raft log is near the leader's and its
   * partition log holds everything a snapshot named (no open gap).
   */
  async caughtUp(groupId: number, nodeId: number): Promise<boolean> {
    const status = this.#opts.host.replication(groupId);
    const match = status?.matchIndexes.get(nodeId);
    if (
      status === undefined || match === undefined ||
      status.lastIndex - match > CATCH_UP_LAG_ENTRIES_MAX
    ) return false;
    const body = new Uint8Array(4);
    new DataView(body.buffer).setUint32(0, groupId);
    const answer = await this.#opts.rpc.request(
      nodeId,
      RPC_REPLICA_COMPLETE,
      body,
      { timeoutMs: RPC_TIMEOUT_MS },
    );
    return answer[0] === 1;
  }
}
