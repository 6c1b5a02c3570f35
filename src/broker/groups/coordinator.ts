/**
 * The group coordinator: Kafka's classic group protocol (JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup) and committed offsets, for the groups
 * whose id hashes to an `__consumer_offsets` partition this broker leads.
 *
 * This file routes: a request goes to its group (group.ts) and offsets
 * (offsets_store.ts) once the partition its group id hashes to is owned
 * and loaded, and is answered NOT_COORDINATOR or as loading otherwise.
 * Durable state lives in that partition's log: an offset commit is answered
 * once its record is durable, and a group's metadata is written when a
 * generation becomes stable or the group empties. A partition's state is
 * rebuilt by replaying its log before the coordinator answers for it.
 */
import {
  CONSUMER_PROTOCOL_TYPE,
  type DescribeGroupsResponseGroupsInput,
  type JoinGroupRequest,
  type JoinGroupResponseInput,
  type LeaveGroupResponseMembersInput,
  type ListGroupsResponseGroupsInput,
  type OffsetDeleteResponsePartitionsInput,
  type SyncGroupRequest,
  type SyncGroupResponseInput,
} from "../../protocol/mod.ts";
import {
  type ClientInfo,
  Group,
  type GroupOptions,
  joinError,
  type MemberRequest,
  sessionTimeoutError,
  syncError,
  type Timers,
} from "./group.ts";
import { GroupError } from "./group_error.ts";
import {
  type LogTransaction,
  type OffsetsLog,
  OffsetsLogError,
} from "./offsets_log.ts";
import type { TxnResult } from "../transactions/txn_metadata.ts";
import {
  type CommitAnswer,
  commitError,
  type CommitTopics,
  type OffsetAnswer,
  type OffsetEntry,
  OffsetsStore,
} from "./offsets_store.ts";

export type { ClientInfo, Timers } from "./group.ts";
export { GroupError } from "./group_error.ts";
export type { OffsetAnswer } from "./offsets_store.ts";

export const realTimers: Timers = {
  now: () => Date.now(),
  set: (fn, delayMs) => setTimeout(fn, delayMs) as unknown as number,
  clear: (id) => clearTimeout(id),
};

export interface CoordinatorOptions {
  log: OffsetsLog;
  timers: Timers;
  /** Kafka's group.initial.rebalance.delay.ms. */
  initialRebalanceDelayMs: number;
  /** How long committed offsets of an empty group are kept. */
  offsetsRetentionMs: number;
  /** Whether a topic partition exists, for OffsetCommit. */
  partitionExists(topic: string, partition: number): boolean;
  /** The id of the topic of that name now, if it exists. */
  topicId(topic: string): string | undefined;
  /**
   * Whether this broker coordinates the groups of an offsets partition
   * (leads it). Absent: always (unit tests).
   */
  owns?(partition: number): boolean;
}

/** Java's String.hashCode, so groups land on the partitions Kafka picks. */
export function javaStringHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) {
    h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  }
  return h;
}

export function partitionForGroup(groupId: string, count: number): number {
  return (javaStringHash(groupId) & 0x7fffffff) % count;
}

export interface CommitRequest extends MemberRequest {
  groupId: string;
  topics: CommitTopics;
}

export class GroupCoordinator {
  readonly #opts: CoordinatorOptions;
  readonly #offsets: OffsetsStore;
  readonly #groups = new Map<string, Group>();
  /** Partitions whose state is rebuilt and may be answered for. */
  readonly #loaded = new Set<number>();

  constructor(opts: CoordinatorOptions) {
    this.#opts = opts;
    this.#offsets = new OffsetsStore({
      log: opts.log,
      partitionFor: (groupId) => this.partitionFor(groupId),
      now: () => opts.timers.now(),
      offsetsRetentionMs: opts.offsetsRetentionMs,
      partitionExists: opts.partitionExists,
    });
  }

  partitionFor(groupId: string): number {
    return partitionForGroup(groupId, this.#opts.log.partitionCount);
  }

  isLoaded(groupId: string): boolean {
    return this.#loaded.has(this.partitionFor(groupId));
  }

  /**
   * Null when this broker can answer for the group now, else the error:
   * NOT_COORDINATOR if another broker coordinates it (clients look again),
   * `loading` while its partition is being read back.
   */
  #unavailable(groupId: string, loading: number): number | null {
    const partition = this.partitionFor(groupId);
    if (this.#opts.owns !== undefined && !this.#opts.owns(partition)) {
      return GroupError.NOT_COORDINATOR;
    }
    return this.#loaded.has(partition) ? null : loading;
  }

  /** The group a member's request names, or the error code to answer. */
  #groupFor(groupId: string): Group | number {
    const away = this.#unavailable(
      groupId,
      GroupError.COORDINATOR_NOT_AVAILABLE,
    );
    if (away !== null) return away;
    return this.#groups.get(groupId) ?? GroupError.UNKNOWN_MEMBER_ID;
  }

  #groupOptions(groupId: string): GroupOptions {
    return {
      id: groupId,
      timers: this.#opts.timers,
      initialRebalanceDelayMs: this.#opts.initialRebalanceDelayMs,
      persist: (stored) => this.#offsets.writeGroup(groupId, stored),
      topicId: this.#opts.topicId,
    };
  }

  /**
   * Forgets one partition's groups and offsets (this broker stopped leading
   * it); their members are told to find the new coordinator.
   */
  unload(partition: number): void {
    this.#loaded.delete(partition);
    for (const [groupId, group] of this.#groups) {
      if (this.partitionFor(groupId) !== partition) continue;
      group.close(GroupError.NOT_COORDINATOR);
      this.#groups.delete(groupId);
    }
    this.#offsets.unload(partition);
  }

  /**
   * Rebuilds one partition's groups and offsets from its log. Until this
   * ran, requests for its groups are answered as loading.
   */
  load(partition: number): void {
    for (const [groupId, stored] of this.#offsets.load(partition)) {
      this.#groups.set(
        groupId,
        Group.restore(this.#groupOptions(groupId), stored),
      );
    }
    this.#loaded.add(partition);
  }

  // ---- membership -------------------------------------------------------

  join(
    req: JoinGroupRequest,
    client: ClientInfo,
  ): Promise<JoinGroupResponseInput> {
    const fail = (errorCode: number) =>
      Promise.resolve(joinError(errorCode, req.memberId));
    if (req.groupId === "") return fail(GroupError.INVALID_GROUP_ID);
    // Not LOAD_IN_PROGRESS: kafkajs would not retry the join on it.
    const away = this.#unavailable(
      req.groupId,
      GroupError.COORDINATOR_NOT_AVAILABLE,
    );
    if (away !== null) return fail(away);
    const invalid = sessionTimeoutError(req.sessionTimeoutMs);
    if (invalid !== GroupError.NONE) return fail(invalid);
    let group = this.#groups.get(req.groupId);
    if (group === undefined) {
      if (req.memberId !== "") return fail(GroupError.UNKNOWN_MEMBER_ID);
      group = new Group(this.#groupOptions(req.groupId));
      this.#groups.set(req.groupId, group);
    }
    return group.join(req, client);
  }

  sync(req: SyncGroupRequest): Promise<SyncGroupResponseInput> {
    const group = this.#groupFor(req.groupId);
    if (typeof group === "number") return Promise.resolve(syncError(group));
    return group.sync(req);
  }

  heartbeat(req: MemberRequest & { groupId: string }): number {
    const group = this.#groupFor(req.groupId);
    return typeof group === "number" ? group : group.heartbeat(req);
  }

  /**
   * Removes members (LeaveGroup). A static member may be named by its
   * instance id alone. Answers a code per member.
   */
  leave(
    groupId: string,
    members: readonly { memberId: string; groupInstanceId: string | null }[],
  ): { errorCode: number; members: LeaveGroupResponseMembersInput[] } {
    const away = this.#unavailable(
      groupId,
      GroupError.COORDINATOR_NOT_AVAILABLE,
    );
    if (away !== null) return { errorCode: away, members: [] };
    const group = this.#groups.get(groupId);
    return {
      errorCode: GroupError.NONE,
      members: group?.leave(members) ??
        members.map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          errorCode: GroupError.UNKNOWN_MEMBER_ID,
        })),
    };
  }

  // ---- offsets ----------------------------------------------------------

  /** Commits offsets; answers each partition once its record is durable. */
  async commit(req: CommitRequest): Promise<CommitAnswer> {
    const fail = (errorCode: number) => commitError(req.topics, errorCode);
    const away = this.#unavailable(
      req.groupId,
      GroupError.COORDINATOR_LOAD_IN_PROGRESS,
    );
    if (away !== null) return fail(away);
    if (req.groupId === "") return fail(GroupError.INVALID_GROUP_ID);
    const group = this.#groups.get(req.groupId);
    if (req.generationId < 0 && req.memberId === "") {
      // Offsets committed outside group management (admin tools, assign()).
      if (group !== undefined && group.state !== "Empty") {
        return fail(GroupError.UNKNOWN_MEMBER_ID);
      }
    } else {
      const admitted = group?.admitCommit(req) ?? GroupError.UNKNOWN_MEMBER_ID;
      if (admitted !== GroupError.NONE) return fail(admitted);
      const stale = req.topics.filter((t) =>
        !group!.sameTopicSinceJoin(t.name)
      );
      if (stale.length > 0) {
        const committed = await this.#offsets.commit(
          req.groupId,
          req.topics.filter((t) => !stale.includes(t)),
        );
        const refused = commitError(
          stale,
          GroupError.UNKNOWN_TOPIC_OR_PARTITION,
        );
        return req.topics.map((t) =>
          [...committed, ...refused].find((a) => a.name === t.name)!
        );
      }
    }
    return await this.#offsets.commit(req.groupId, req.topics);
  }

  /**
   * TxnOffsetCommit: offsets that take effect when the producer's
   * transaction commits (endTransaction). A producer that names no member
   * and generation (before v3) commits for the group whatever its state,
   * as Kafka lets it: its consumer is in the group, not the producer.
   */
  async commitInTransaction(
    req: CommitRequest,
    txn: LogTransaction,
  ): Promise<CommitAnswer> {
    const fail = (errorCode: number) => commitError(req.topics, errorCode);
    const away = this.#unavailable(
      req.groupId,
      GroupError.COORDINATOR_LOAD_IN_PROGRESS,
    );
    if (away !== null) return fail(away);
    if (req.groupId === "") return fail(GroupError.INVALID_GROUP_ID);
    if (req.memberId !== "" || req.generationId >= 0) {
      const admitted = this.#groups.get(req.groupId)?.admitCommit(req) ??
        GroupError.UNKNOWN_MEMBER_ID;
      if (admitted !== GroupError.NONE) return fail(admitted);
    }
    return await this.#offsets.commit(req.groupId, req.topics, txn);
  }

  /**
   * A transaction's marker is durable in an offsets partition this broker
   * leads: the offsets the producer committed in it there apply, or go.
   */
  endTransaction(
    partition: number,
    marker: { producerId: bigint; result: TxnResult },
  ): void {
    if (this.#loaded.has(partition)) {
      this.#offsets.endTransaction(partition, marker);
    }
  }

  /**
   * Committed offsets of a group: of the named topics' partitions, or of
   * every partition it committed when `topics` is null. -1 where none.
   */
  fetchOffsets(
    groupId: string,
    topics: readonly { name: string; partitionIndexes: number[] }[] | null,
    opts: { requireStable?: boolean } = {},
  ): {
    errorCode: number;
    topics: { name: string; partitions: OffsetAnswer[] }[];
  } {
    const away = this.#unavailable(
      groupId,
      GroupError.COORDINATOR_LOAD_IN_PROGRESS,
    );
    if (away !== null) return { errorCode: away, topics: [] };
    return {
      errorCode: GroupError.NONE,
      topics: this.#offsets.fetch(groupId, topics, opts),
    };
  }

  // ---- administration -----------------------------------------------------

  describe(groupId: string): DescribeGroupsResponseGroupsInput {
    const base = {
      groupId,
      protocolType: "",
      protocolData: "",
      members: [],
    };
    const away = this.#unavailable(
      groupId,
      GroupError.COORDINATOR_LOAD_IN_PROGRESS,
    );
    if (away !== null) {
      return {
        ...base,
        errorCode: away,
        groupState: "",
      };
    }
    const group = this.#groups.get(groupId);
    if (group === undefined) {
      return { ...base, errorCode: GroupError.NONE, groupState: "Dead" };
    }
    return group.describe();
  }

  /** Every known group, with groups that only have committed offsets. */
  list(statesFilter: readonly string[]): ListGroupsResponseGroupsInput[] {
    const ids = new Set([...this.#groups.keys(), ...this.#offsets.groupIds()]);
    const out: ListGroupsResponseGroupsInput[] = [];
    for (const id of [...ids].sort()) {
      if (!this.isLoaded(id)) continue;
      const group = this.#groups.get(id);
      const state = group?.state ?? "Empty";
      if (state === "Dead") continue;
      if (
        statesFilter.length > 0 &&
        !statesFilter.some((s) => s.toLowerCase() === state.toLowerCase())
      ) continue;
      out.push({
        groupId: id,
        protocolType: group?.protocolType ?? "",
        groupState: state,
        groupType: "classic",
      });
    }
    return out;
  }

  /** Deletes an empty group and its offsets (DeleteGroups). */
  async deleteGroup(groupId: string): Promise<number> {
    const away = this.#unavailable(
      groupId,
      GroupError.COORDINATOR_LOAD_IN_PROGRESS,
    );
    if (away !== null) return away;
    const group = this.#groups.get(groupId);
    if (group === undefined && !this.#offsets.has(groupId)) {
      return GroupError.GROUP_ID_NOT_FOUND;
    }
    if (group !== undefined && group.state !== "Empty") {
      return GroupError.NON_EMPTY_GROUP;
    }
    group?.becomeDead();
    await this.#offsets.deleteGroup(groupId);
    this.#groups.delete(groupId);
    return GroupError.NONE;
  }

  /**
   * Deletes a group's committed offsets of the named partitions
   * (OffsetDelete, KIP-496), answering once the tombstones are durable.
   * While a consumer group has members, the topics they subscribe to keep
   * their offsets (GROUP_SUBSCRIBED_TO_TOPIC): the members would go on
   * committing them. A live group of another protocol must empty first.
   */
  async deleteOffsets(
    groupId: string,
    topics: readonly {
      name: string;
      partitions: readonly { partitionIndex: number }[];
    }[],
  ): Promise<{
    errorCode: number;
    topics: {
      name: string;
      partitions: OffsetDeleteResponsePartitionsInput[];
    }[];
  }> {
    const fail = (errorCode: number) => ({ errorCode, topics: [] });
    if (groupId === "") return fail(GroupError.INVALID_GROUP_ID);
    const away = this.#unavailable(
      groupId,
      GroupError.COORDINATOR_LOAD_IN_PROGRESS,
    );
    if (away !== null) return fail(away);
    const group = this.#groups.get(groupId);
    if (
      group?.state === "Dead" ||
      (group === undefined && !this.#offsets.has(groupId))
    ) {
      return fail(GroupError.GROUP_ID_NOT_FOUND);
    }
    const live = group !== undefined && group.state !== "Empty";
    if (live && group.protocolType !== CONSUMER_PROTOCOL_TYPE) {
      return fail(GroupError.NON_EMPTY_GROUP);
    }
    const subscribed = live ? group.subscribedTopics() : new Set<string>();
    const doomed = new Set<string>();
    const answer = topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map(({ partitionIndex }) => {
        let errorCode: number = GroupError.NONE;
        if (!this.#opts.partitionExists(t.name, partitionIndex)) {
          errorCode = GroupError.UNKNOWN_TOPIC_OR_PARTITION;
        } else if (subscribed.has(t.name)) {
          errorCode = GroupError.GROUP_SUBSCRIBED_TO_TOPIC;
        } else {
          doomed.add(`${t.name}\u0000${partitionIndex}`);
        }
        return { partitionIndex, errorCode };
      }),
    }));
    try {
      await this.#offsets.remove((e) =>
        e.groupId === groupId && doomed.has(`${e.topic}\u0000${e.partition}`)
      );
    } catch (err) {
      if (!(err instanceof OffsetsLogError)) throw err;
      return fail(GroupError.COORDINATOR_NOT_AVAILABLE);
    }
    return { errorCode: GroupError.NONE, topics: answer };
  }

  /**
   * Drops committed offsets matching `drop` (of deleted topics, or expired)
   * by writing tombstones; the in-memory state follows once durable.
   */
  removeOffsets(drop: (entry: OffsetEntry) => boolean): Promise<number> {
    return this.#offsets.remove((e) => this.isLoaded(e.groupId) && drop(e));
  }

  /**
   * A topic was deleted (or re-created under a new id): its offsets go, and
   * the groups subscribed to it rebalance, so that their next assignment
   * is made for the topics as they are now.
   */
  topicDeleted(topic: string): Promise<number> {
    for (const [groupId, group] of this.#groups) {
      if (this.isLoaded(groupId) && group.subscribedTopics().has(topic)) {
        group.rebalance();
      }
    }
    return this.removeOffsets((e) => e.topic === topic);
  }

  /**
   * Expires offsets older than the retention of groups without members
   * (Kafka's offsets.retention.minutes applies to empty groups only).
   */
  expireOffsets(): Promise<number> {
    return this.#offsets.expire((groupId) =>
      this.isLoaded(groupId) &&
      (this.#groups.get(groupId)?.state ?? "Empty") === "Empty"
    );
  }

  /** Stops every timer (broker shutdown). */
  close(): void {
    for (const group of this.#groups.values()) {
      group.close(GroupError.COORDINATOR_NOT_AVAILABLE);
    }
  }
}
