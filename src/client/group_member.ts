/**
 * One member of a consumer group (Kafka's classic group protocol): it joins,
 * and as the leader assigns partitions with the range assignor; it keeps
 * its membership with heartbeats and rejoins when the coordinator starts a
 * rebalance or has forgotten it; it commits offsets for its generation and
 * leaves. Fetching is the caller's: it reads `generation()` for the
 * partitions it owns and stops when that generation's `revoked` aborts.
 */
import { ApiKey, ErrorCode } from "../protocol/mod.ts";
import type { KafkaClient, PartitionOffset } from "./client.ts";
import {
  CONSUMER_PROTOCOL_TYPE,
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
  RANGE_ASSIGNOR,
  rangeAssign,
  type TopicPartitions,
} from "./consumer_protocol.ts";
import { KafkaError, throwIfError } from "./errors.ts";

export interface GroupMemberOptions {
  groupId: string;
  topics: string[];
  /** The coordinator drops a member silent for this long [10 s]. */
  sessionTimeoutMs?: number;
  /** How long the coordinator waits for members to rejoin [15 s]. */
  rebalanceTimeoutMs?: number;
  /** [1 s]; well under the session timeout, and how soon a rebalance is seen. */
  heartbeatIntervalMs?: number;
}

/** One generation of the group, as this member sees it. */
export interface Generation {
  generationId: number;
  memberId: string;
  assignment: TopicPartitions[];
  /** Aborts when the generation ends: a rebalance began or the member left. */
  revoked: AbortSignal;
}

/** Answers meaning "this generation is over: join again". */
const REJOIN_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.REBALANCE_IN_PROGRESS,
  ErrorCode.ILLEGAL_GENERATION,
  ErrorCode.UNKNOWN_MEMBER_ID,
]);
// Each pass either completes the join or learns something that lets the
// next one do so (a member id, a new generation); a group rebalancing
// this often without settling is a failure worth reporting.
const JOIN_ATTEMPTS_MAX = 20;

export class GroupMember {
  readonly #client: KafkaClient;
  readonly #groupId: string;
  readonly #topics: string[];
  readonly #sessionTimeoutMs: number;
  readonly #rebalanceTimeoutMs: number;
  readonly #heartbeatIntervalMs: number;
  #memberId = "";
  /** The generation being followed; null while (re)joining. */
  #active: (Generation & { revoke: AbortController }) | null = null;
  /** The active generation, or the join that will give the next one. */
  #next: Promise<Generation>;
  readonly #stop = new AbortController();
  readonly #heartbeats: Promise<void>;

  private constructor(client: KafkaClient, opts: GroupMemberOptions) {
    this.#client = client;
    this.#groupId = opts.groupId;
    this.#topics = [...opts.topics];
    this.#sessionTimeoutMs = opts.sessionTimeoutMs ?? 10_000;
    this.#rebalanceTimeoutMs = opts.rebalanceTimeoutMs ?? 15_000;
    this.#heartbeatIntervalMs = opts.heartbeatIntervalMs ?? 1_000;
    this.#next = this.#joinAndSync();
    this.#heartbeats = this.#heartbeatLoop();
  }

  /** Joins the group and waits for the first assignment. */
  static async join(
    client: KafkaClient,
    opts: GroupMemberOptions,
  ): Promise<GroupMember> {
    const member = new GroupMember(client, opts);
    try {
      await member.#next;
    } catch (error) {
      member.#stop.abort();
      await member.#heartbeats;
      throw error;
    }
    return member;
  }

  get memberId(): string {
    return this.#memberId;
  }

  /**
   * The current generation, or during a rebalance the next one once it is
   * complete. Rejects if the member could not stay in the group.
   */
  generation(): Promise<Generation> {
    return this.#next;
  }

  /**
   * Commits offsets in the current generation. Answers false, committing
   * nothing, when the generation has ended (the partitions may belong to
   * another member now); the member is then rejoining.
   */
  async commit(offsets: readonly PartitionOffset[]): Promise<boolean> {
    const generation = this.#active;
    if (generation === null || generation.revoked.aborted) return false;
    try {
      await this.#client.commitOffsets(this.#groupId, offsets, {
        generationId: generation.generationId,
        memberId: generation.memberId,
      });
      return true;
    } catch (error) {
      if (!(error instanceof KafkaError) || !REJOIN_ERRORS.has(error.code)) {
        throw error;
      }
      this.#rejoin(generation, error.code);
      return false;
    }
  }

  /** Stops heartbeats and leaves the group, so the others rebalance at once. */
  async leave(): Promise<void> {
    this.#stop.abort();
    this.#active?.revoke.abort();
    this.#active = null;
    await this.#heartbeats;
    if (this.#memberId === "") return;
    const response = await this.#client.coordinatorRequest(
      this.#groupId,
      ApiKey.LeaveGroup,
      {
        groupId: this.#groupId,
        memberId: this.#memberId,
        members: [{ memberId: this.#memberId }],
      },
      { errorCode: (r) => r.errorCode },
    );
    // Forgotten already (session expired): nothing left to leave.
    const code = response.errorCode || (response.members[0]?.errorCode ?? 0);
    if (code !== ErrorCode.UNKNOWN_MEMBER_ID) {
      throwIfError(code, `leaving group "${this.#groupId}"`);
    }
  }

  async #joinAndSync(): Promise<Generation> {
    for (let attempt = 0; attempt < JOIN_ATTEMPTS_MAX; attempt++) {
      if (this.#stop.signal.aborted) break;
      const join = await this.#client.coordinatorRequest(
        this.#groupId,
        ApiKey.JoinGroup,
        {
          groupId: this.#groupId,
          sessionTimeoutMs: this.#sessionTimeoutMs,
          rebalanceTimeoutMs: this.#rebalanceTimeoutMs,
          memberId: this.#memberId,
          protocolType: CONSUMER_PROTOCOL_TYPE,
          protocols: [{
            name: RANGE_ASSIGNOR,
            metadata: encodeSubscription(this.#topics),
          }],
        },
        {
          errorCode: (r) => r.errorCode,
          extraTimeoutMs: this.#rebalanceTimeoutMs,
        },
      );
      // KIP-394: a first join from v4 on is answered with the member id to
      // join with; the retry with it is the real join.
      if (join.errorCode === ErrorCode.MEMBER_ID_REQUIRED) {
        this.#memberId = join.memberId;
        continue;
      }
      if (join.errorCode === ErrorCode.UNKNOWN_MEMBER_ID) {
        this.#memberId = "";
        continue;
      }
      throwIfError(join.errorCode, `joining group "${this.#groupId}"`);
      this.#memberId = join.memberId;
      const assignments = join.leader === join.memberId
        ? await this.#assign(join.members)
        : [];
      const sync = await this.#client.coordinatorRequest(
        this.#groupId,
        ApiKey.SyncGroup,
        {
          groupId: this.#groupId,
          generationId: join.generationId,
          memberId: join.memberId,
          protocolType: CONSUMER_PROTOCOL_TYPE,
          protocolName: RANGE_ASSIGNOR,
          assignments,
        },
        {
          errorCode: (r) => r.errorCode,
          extraTimeoutMs: this.#rebalanceTimeoutMs,
        },
      );
      if (REJOIN_ERRORS.has(sync.errorCode)) {
        if (sync.errorCode === ErrorCode.UNKNOWN_MEMBER_ID) this.#memberId = "";
        continue;
      }
      throwIfError(sync.errorCode, `syncing group "${this.#groupId}"`);
      const revoke = new AbortController();
      const generation = {
        generationId: join.generationId,
        memberId: join.memberId,
        assignment: decodeAssignment(sync.assignment),
        revoked: revoke.signal,
      };
      if (this.#stop.signal.aborted) {
        revoke.abort();
      } else {
        this.#active = { ...generation, revoke };
      }
      return generation;
    }
    throw new KafkaError(
      ErrorCode.REBALANCE_IN_PROGRESS,
      this.#stop.signal.aborted
        ? `left group "${this.#groupId}" while joining`
        : `group "${this.#groupId}" did not settle in ${JOIN_ATTEMPTS_MAX} joins`,
    );
  }

  /** The leader's part: range-assign the members' subscribed topics. */
  async #assign(
    members: readonly { memberId: string; metadata: Uint8Array }[],
  ): Promise<{ memberId: string; assignment: Uint8Array }[]> {
    const subscriptions = new Map(
      members.map((m) => [m.memberId, decodeSubscription(m.metadata)]),
    );
    const topics = [...new Set([...subscriptions.values()].flat())];
    const counts = new Map(
      await Promise.all(
        topics.map(async (t) =>
          [t, await this.#client.partitionCount(t)] as const
        ),
      ),
    );
    const plan = rangeAssign(subscriptions, counts);
    return [...plan].map(([memberId, assignment]) => ({
      memberId,
      assignment: encodeAssignment(assignment),
    }));
  }

  /** Ends `generation` and starts the join of the next, once per generation. */
  #rejoin(generation: Generation, code: number): void {
    if (this.#active?.generationId !== generation.generationId) return;
    if (this.#stop.signal.aborted) return;
    this.#active.revoke.abort();
    this.#active = null;
    if (code === ErrorCode.UNKNOWN_MEMBER_ID) this.#memberId = "";
    this.#next = this.#joinAndSync();
    // The failure is reported to whoever awaits generation(); this only
    // keeps an unawaited rejection from ending the process.
    this.#next.catch(() => {});
  }

  async #heartbeatLoop(): Promise<void> {
    const stop = this.#stop.signal;
    while (!stop.aborted) {
      await pause(this.#heartbeatIntervalMs, stop);
      const generation = this.#active;
      if (stop.aborted || generation === null) continue;
      try {
        const response = await this.#client.coordinatorRequest(
          this.#groupId,
          ApiKey.Heartbeat,
          {
            groupId: this.#groupId,
            generationId: generation.generationId,
            memberId: generation.memberId,
          },
          { errorCode: (r) => r.errorCode },
        );
        if (REJOIN_ERRORS.has(response.errorCode)) {
          this.#rejoin(generation, response.errorCode);
        } else {
          throwIfError(response.errorCode, `heartbeat to "${this.#groupId}"`);
        }
      } catch (error) {
        if (stop.aborted) return;
        // The member cannot stay in the group: end the generation and let
        // generation() report why.
        generation.revoke.abort();
        this.#active = null;
        this.#next = Promise.reject(error);
        this.#next.catch(() => {});
        return;
      }
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
