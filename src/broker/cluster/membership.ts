/**
 * The controller group's membership as one broker takes part in it: a first
 * start either founds the group or joins one that already formed, the
 * controller's leader admits the brokers that join later, and the address
 * book of the other brokers' Raft transports is kept for the host to dial.
 */
import type { Address, RaftHost } from "../../raft/mod.ts";
import type { ControllerState } from "../controller/mod.ts";
import { type Clock, sleep } from "../../util/mod.ts";
import {
  type Rpc,
  RPC_CONTROLLER_VOTERS,
  RPC_JOIN,
  RPC_TIMEOUT_MS,
} from "./rpc.ts";

/** The Raft group of the cluster metadata; partition groups count from 1. */
export const CONTROLLER_GROUP = 0;
/** More voters only slow the controller down; Kafka's KRaft uses 3 or 5. */
export const MAX_CONTROLLER_VOTERS = 5;
/** How long a first start asks the other brokers whether a cluster exists. */
const PROBE_TIMEOUT_MS = 2_000;

/** The answer to a join request. */
interface Admission {
  ok: boolean;
  /** The controller's leader as the asked broker knows it; 0 if none. */
  leaderHint: number;
  message: string;
}

export interface MembershipOptions {
  nodeId: number;
  host: Pick<
    RaftHost,
    "leaderOf" | "membership" | "changeMembership" | "setPeers"
  >;
  /** Read for the Raft addresses that brokers registered with. */
  controller: Pick<ControllerState, "brokers">;
  /** Serves the join and voters requests; sends this broker's own. */
  rpc: Rpc;
  /** Raft addresses of the other brokers, as discovery first lists them. */
  peers: ReadonlyMap<number, Address>;
  /** Where other brokers reach this broker's Raft transport. */
  advertisedRaft: Address;
  clock: Clock;
  /** Aborted when the node stops: the join retries end. */
  signal: AbortSignal;
  log(message: string): void;
}

export class Membership {
  readonly #opts: MembershipOptions;
  #discovered: ReadonlyMap<number, Address>;
  /**
   * Raft addresses that brokers not yet known to discovery or the
   * controller sent with their join requests: a broker added to a static
   * cluster is in no other list until it has registered.
   */
  readonly #introduced = new Map<number, Address>();
  /** The address book last given to the host, to skip identical updates. */
  #peersKey = "";

  constructor(opts: MembershipOptions) {
    this.#opts = opts;
    this.#discovered = opts.peers;
    opts.rpc.handle(RPC_JOIN, async (from, body) => {
      this.#introduce(from, body);
      const answer = await this.#admit(from);
      return new TextEncoder().encode(JSON.stringify(answer));
    });
    opts.rpc.handle(RPC_CONTROLLER_VOTERS, (from, body) => {
      this.#introduce(from, body);
      const voters = opts.host.membership(CONTROLLER_GROUP)?.voters ?? [];
      return Promise.resolve(new TextEncoder().encode(JSON.stringify(voters)));
    });
  }

  get #nodeId(): number {
    return this.#opts.nodeId;
  }

  /** Replaces the Raft addresses of the other brokers (from discovery). */
  setPeers(peers: ReadonlyMap<number, Address>): void {
    this.#discovered = peers;
    this.updatePeers();
  }

  /**
   * Discovery's addresses, completed by those the controller state recorded
   * when brokers registered: after a restart the state comes back from the
   * WAL, so brokers are reachable even while discovery is down.
   */
  updatePeers(): void {
    const peers = new Map<number, Address>(this.#introduced);
    for (const b of this.#opts.controller.brokers()) {
      if (b.nodeId === this.#nodeId || b.raftPort === 0) continue;
      peers.set(b.nodeId, { hostname: b.raftHost, port: b.raftPort });
    }
    for (const [id, address] of this.#discovered) peers.set(id, address);
    const key = JSON.stringify([...peers].sort((a, b) => a[0] - b[0]));
    if (key === this.#peersKey) return;
    this.#peersKey = key;
    this.#opts.host.setPeers(peers);
  }

  /** This broker's Raft address, sent with the requests of a first start. */
  #introduction(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify(this.#opts.advertisedRaft));
  }

  /** Remembers the Raft address a broker sent, so it can be answered. */
  #introduce(nodeId: number, body: Uint8Array): void {
    let address: Address;
    try {
      address = JSON.parse(new TextDecoder().decode(body));
    } catch {
      return;
    }
    if (
      typeof address?.hostname !== "string" ||
      !Number.isInteger(address.port) || address.port < 1 ||
      address.port > 65535
    ) {
      return;
    }
    const known = this.#introduced.get(nodeId);
    if (known?.hostname === address.hostname && known.port === address.port) {
      return;
    }
    this.#introduced.set(nodeId, {
      hostname: address.hostname,
      port: address.port,
    });
    this.updatePeers();
  }

  /**
   * On the controller's leader: adds a broker that joined after the cluster
   * was founded, as a voter while there are fewer than five, else as a
   * learner that follows the metadata without voting.
   */
  async #admit(nodeId: number): Promise<Admission> {
    const host = this.#opts.host;
    const leader = host.leaderOf(CONTROLLER_GROUP);
    if (leader !== this.#nodeId) {
      return { ok: false, leaderHint: leader, message: "not the controller" };
    }
    const status = host.membership(CONTROLLER_GROUP);
    if (status?.voters.includes(nodeId) || status?.learners.includes(nodeId)) {
      return { ok: true, leaderHint: leader, message: "already a member" };
    }
    const asVoter = (status?.voters.length ?? 0) < MAX_CONTROLLER_VOTERS;
    try {
      await host.changeMembership(CONTROLLER_GROUP, {
        type: asVoter ? "addVoter" : "addLearner",
        nodeId,
      });
      this.#opts.log(
        `broker ${nodeId} joined the controller group as a ${
          asVoter ? "voter" : "learner"
        }`,
      );
      return { ok: true, leaderHint: leader, message: "added" };
    } catch (err) {
      return { ok: false, leaderHint: 0, message: `${err}` };
    }
  }

  /**
   * On a first start, the controller's voters as a running broker knows
   * them, if any does: a broker started after the cluster formed (say, with
   * static peers that now list it too) joins that cluster instead of
   * founding one of its own with a voter list the others never agreed to.
   * A founder that starts late finds itself among the voters and takes its
   * place. Undefined when no broker answers with a formed group.
   */
  async formedVoters(): Promise<
    { voters: number[]; join: boolean } | undefined
  > {
    const { clock, rpc } = this.#opts;
    const deadline = clock.nowMs() + PROBE_TIMEOUT_MS;
    const ask = async (id: number): Promise<number[]> => {
      // Connections to the peers are still being opened at first.
      for (;;) {
        try {
          return JSON.parse(
            new TextDecoder().decode(
              await rpc.request(
                id,
                RPC_CONTROLLER_VOTERS,
                this.#introduction(),
                // Short: a reply is lost while the peer's first connection
                // back to a broker it has just heard of is being opened.
                {
                  timeoutMs: Math.max(
                    1,
                    Math.min(200, deadline - clock.nowMs()),
                  ),
                },
              ),
            ),
          );
        } catch (err) {
          if (clock.nowMs() >= deadline) throw err;
          await sleep(clock, 50);
        }
      }
    };
    const answers = await Promise.allSettled(
      [...this.#discovered.keys()].filter((id) => id !== this.#nodeId).map(
        ask,
      ),
    );
    for (const a of answers) {
      if (a.status !== "fulfilled" || a.value.length === 0) continue;
      const voters = a.value;
      if (!voters.includes(this.#nodeId)) {
        this.#opts.log(
          `the cluster already formed with controller voters [${voters}]: joining it`,
        );
      }
      return { voters, join: !voters.includes(this.#nodeId) };
    }
    return undefined;
  }

  /** Asks the founders (or the leader they name) to add this broker. */
  async requestJoin(founders: number[]): Promise<void> {
    const { clock, rpc, signal } = this.#opts;
    let targets = [...founders];
    while (!signal.aborted) {
      for (const target of targets) {
        try {
          const answer = JSON.parse(
            new TextDecoder().decode(
              await rpc.request(target, RPC_JOIN, this.#introduction(), {
                timeoutMs: RPC_TIMEOUT_MS,
              }),
            ),
          ) as Admission;
          if (answer.ok) return;
          if (answer.leaderHint > 0) targets = [answer.leaderHint, ...founders];
        } catch {
          // Unreachable or slow: try the next one.
        }
      }
      await sleep(clock, 500);
    }
  }
}
