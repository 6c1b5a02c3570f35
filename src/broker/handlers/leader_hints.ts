/**
 * KIP-951 leader hints: a Produce (v10+) or Fetch (v16+) partition answered
 * NOT_LEADER_OR_FOLLOWER names the leader this broker knows of, and the
 * response carries that leader's address on the client's listener, so the
 * client retries there at once instead of waiting for a Metadata refresh.
 * Older versions drop both fields when the codec writes them.
 */
import type { Leading } from "../ports.ts";
import type { BrokerContext } from "./context.ts";

const NO_LEADER = { leaderId: -1, leaderEpoch: -1 };

export class LeaderHints {
  readonly #leaders = new Set<number>();

  /** The currentLeader field for a partition that `leading` refused. */
  currentLeader(
    leading: Leading,
  ): { leaderId: number; leaderEpoch: number } {
    if (leading.ok || leading.leader === undefined) return NO_LEADER;
    this.#leaders.add(leading.leader.leaderId);
    return leading.leader;
  }

  /** The addresses of every leader named, for the response's nodeEndpoints. */
  nodeEndpoints(
    ctx: BrokerContext,
    listener: string,
  ): { nodeId: number; host: string; port: number; rack: null }[] {
    if (this.#leaders.size === 0) return [];
    return ctx.cluster.brokers(listener)
      .filter((b) => this.#leaders.has(b.nodeId))
      .map((b) => ({
        nodeId: b.nodeId,
        host: b.host,
        port: b.port,
        rack: null,
      }));
  }
}
