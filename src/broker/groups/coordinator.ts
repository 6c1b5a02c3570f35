/**
 * The group coordinator: Kafka's classic group protocol (JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup) and committed offsets, for the groups
 * whose id hashes to an `__consumer_offsets` partition this broker leads.
 *
 * Durable state lives in that partition's log: an offset commit is answered
 * once its record is durable, and a group's metadata is written when a
 * generation becomes stable or the group empties. A partition's state is
 * rebuilt by replaying its log (latest record per key wins) before the
 * coordinator answers for it. Membership timing (session expiry, rebalance
 * timeouts, the initial rebalance delay) runs on the injected Timers, so
 * tests drive the clock by hand.
 */
import type {
  DescribeGroupsResponseGroupsInput,
  JoinGroupRequest,
  JoinGroupResponseInput,
  LeaveGroupResponseMembersInput,
  ListGroupsResponseGroupsInput,
  SyncGroupRequest,
  SyncGroupResponseInput,
} from "../../protocol/mod.ts";
import { assert } from "../../util/mod.ts";
import type { OffsetsLog } from "./offsets_log.ts";
import {
  type CommittedOffset,
  decodeGroup,
  decodeKey,
  decodeOffset,
  encodeGroup,
  encodeKey,
  encodeOffset,
  keyId,
  type OffsetsKey,
  type StoredGroup,
} from "./offsets_records.ts";

/** Kafka error codes the coordinator answers with. */
export const GroupError = {
  NONE: 0,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  OFFSET_METADATA_TOO_LARGE: 12,
  COORDINATOR_LOAD_IN_PROGRESS: 14,
  COORDINATOR_NOT_AVAILABLE: 15,
  NOT_COORDINATOR: 16,
  ILLEGAL_GENERATION: 22,
  INCONSISTENT_GROUP_PROTOCOL: 23,
  INVALID_GROUP_ID: 24,
  UNKNOWN_MEMBER_ID: 25,
  INVALID_SESSION_TIMEOUT: 26,
  REBALANCE_IN_PROGRESS: 27,
  NON_EMPTY_GROUP: 68,
  GROUP_ID_NOT_FOUND: 69,
  MEMBER_ID_REQUIRED: 79,
  FENCED_INSTANCE_ID: 82,
} as const;

export type GroupStateName =
  | "Empty"
  | "PreparingRebalance"
  | "CompletingRebalance"
  | "Stable"
  | "Dead";

/** The clock and timers the coordinator runs on (a seam for tests). */
export interface Timers {
  now(): number;
  set(fn: () => void, delayMs: number): number;
  clear(id: number): void;
}

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
  /**
   * Whether this broker coordinates the groups of an offsets partition (in
   * a cluster: leads it). Absent: always, as a single broker does.
   */
  owns?(partition: number): boolean;
}

/** Kafka's group.min/max.session.timeout.ms defaults, min relaxed for tests. */
const SESSION_TIMEOUT_MIN_MS = 1_000;
const SESSION_TIMEOUT_MAX_MS = 1_800_000;
/** Kafka's offset.metadata.max.bytes. */
const OFFSET_METADATA_MAX_BYTES = 4096;
const EMPTY = new Uint8Array(0);

interface Protocol {
  readonly name: string;
  readonly metadata: Uint8Array;
}

type JoinAnswer = JoinGroupResponseInput;
type SyncAnswer = SyncGroupResponseInput;

interface Member {
  memberId: string;
  readonly groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: Protocol[];
  assignment: Uint8Array;
  joinWaiter: ((answer: JoinAnswer) => void) | null;
  syncWaiter: ((answer: SyncAnswer) => void) | null;
  sessionTimer: number | null;
}

/** What a JoinGroup request sets on its member. */
type MemberFields = Pick<
  Member,
  | "clientId"
  | "clientHost"
  | "sessionTimeoutMs"
  | "rebalanceTimeoutMs"
  | "protocolType"
  | "protocols"
>;

class Group {
  readonly id: string;
  readonly partition: number;
  state: GroupStateName = "Empty";
  generationId = 0;
  protocolType: string | null = null;
  protocolName: string | null = null;
  leaderId: string | null = null;
  readonly members = new Map<string, Member>();
  /** Member ids handed out with MEMBER_ID_REQUIRED, awaiting their rejoin. */
  readonly pending = new Map<string, number>();
  readonly staticMembers = new Map<string, string>();
  rebalanceTimer: number | null = null;
  initialDelayTimer: number | null = null;
  /** While the initial delay runs, a join does not complete. */
  joinNotBeforeMs = 0;

  constructor(id: string, partition: number) {
    this.id = id;
    this.partition = partition;
  }
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

function sameProtocols(a: readonly Protocol[], b: readonly Protocol[]) {
  return a.length === b.length &&
    a.every((p, i) =>
      p.name === b[i]!.name && p.metadata.length === b[i]!.metadata.length &&
      p.metadata.every((byte, j) => byte === b[i]!.metadata[j])
    );
}

export interface CommitRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  topics: {
    name: string;
    partitions: {
      partitionIndex: number;
      committedOffset: bigint;
      committedLeaderEpoch: number;
      committedMetadata: string | null;
    }[];
  }[];
}

export interface OffsetAnswer {
  partitionIndex: number;
  committedOffset: bigint;
  committedLeaderEpoch: number;
  metadata: string | null;
  errorCode: number;
}

export interface ClientInfo {
  clientId: string;
  clientHost: string;
  /** Request version: JoinGroup v4+ asks new members to rejoin with an id. */
  version: number;
}

export class GroupCoordinator {
  readonly #log: OffsetsLog;
  readonly #timers: Timers;
  readonly #opts: CoordinatorOptions;
  readonly #groups = new Map<string, Group>();
  /** group id → `topic\0partition` → committed offset. */
  readonly #offsets = new Map<string, Map<string, CommittedOffset>>();
  /** Partitions whose state is rebuilt and may be answered for. */
  readonly #loaded = new Set<number>();

  constructor(opts: CoordinatorOptions) {
    this.#log = opts.log;
    this.#timers = opts.timers;
    this.#opts = opts;
  }

  partitionFor(groupId: string): number {
    return partitionForGroup(groupId, this.#log.partitionCount);
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

  /**
   * Forgets one partition's groups and offsets (this broker stopped leading
   * it); their members are told to find the new coordinator.
   */
  unload(partition: number): void {
    this.#loaded.delete(partition);
    for (const [groupId, group] of this.#groups) {
      if (group.partition !== partition) continue;
      this.#clearRebalanceTimers(group);
      for (const t of group.pending.values()) this.#timers.clear(t);
      for (const m of group.members.values()) {
        if (m.sessionTimer !== null) this.#timers.clear(m.sessionTimer);
        this.#settle(m, GroupError.NOT_COORDINATOR);
      }
      this.#groups.delete(groupId);
    }
    for (const groupId of [...this.#offsets.keys()]) {
      if (this.partitionFor(groupId) === partition) {
        this.#offsets.delete(groupId);
      }
    }
  }

  /**
   * Rebuilds one partition's groups and offsets from its log. Until this
   * ran, requests for its groups are answered as loading.
   */
  load(partition: number): void {
    const latest = new Map<string, { key: OffsetsKey; value: Uint8Array }>();
    for (const record of this.#log.read(partition)) {
      if (record.key === null) continue;
      const key = decodeKey(record.key);
      if (record.value === null) latest.delete(keyId(key));
      else latest.set(keyId(key), { key, value: record.value });
    }
    for (const { key, value } of latest.values()) {
      if (key.kind === "offset") {
        this.#offsetsOf(key.groupId).set(
          `${key.topic}\u0000${key.partition}`,
          decodeOffset(value),
        );
      } else {
        this.#restoreGroup(key.groupId, decodeGroup(value));
      }
    }
    this.#loaded.add(partition);
  }

  #restoreGroup(groupId: string, stored: StoredGroup): void {
    const group = new Group(groupId, this.partitionFor(groupId));
    group.generationId = stored.generationId;
    group.protocolType = stored.protocolType;
    group.protocolName = stored.protocolName;
    group.leaderId = stored.leaderId;
    for (const m of stored.members) {
      const member: Member = {
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        sessionTimeoutMs: m.sessionTimeoutMs,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        protocolType: stored.protocolType,
        protocols: [{ name: stored.protocolName ?? "", metadata: m.metadata }],
        assignment: m.assignment,
        joinWaiter: null,
        syncWaiter: null,
        sessionTimer: null,
      };
      group.members.set(m.memberId, member);
      if (m.groupInstanceId !== null) {
        group.staticMembers.set(m.groupInstanceId, m.memberId);
      }
      this.#touch(group, member);
    }
    group.state = group.members.size > 0 ? "Stable" : "Empty";
    this.#groups.set(groupId, group);
  }

  #offsetsOf(groupId: string): Map<string, CommittedOffset> {
    let map = this.#offsets.get(groupId);
    if (map === undefined) {
      map = new Map();
      this.#offsets.set(groupId, map);
    }
    return map;
  }

  // ---- membership -------------------------------------------------------

  join(req: JoinGroupRequest, client: ClientInfo): Promise<JoinAnswer> {
    const fail = (errorCode: number, memberId = req.memberId) =>
      Promise.resolve(this.#joinError(errorCode, memberId));
    if (req.groupId === "") return fail(GroupError.INVALID_GROUP_ID);
    // Not LOAD_IN_PROGRESS: kafkajs would not retry the join on it.
    const away = this.#unavailable(
      req.groupId,
      GroupError.COORDINATOR_NOT_AVAILABLE,
    );
    if (away !== null) return fail(away);
    if (
      req.sessionTimeoutMs < SESSION_TIMEOUT_MIN_MS ||
      req.sessionTimeoutMs > SESSION_TIMEOUT_MAX_MS
    ) {
      return fail(GroupError.INVALID_SESSION_TIMEOUT);
    }
    let group = this.#groups.get(req.groupId);
    if (group === undefined) {
      if (req.memberId !== "") return fail(GroupError.UNKNOWN_MEMBER_ID);
      group = new Group(req.groupId, this.partitionFor(req.groupId));
      this.#groups.set(req.groupId, group);
    }
    if (group.state === "Dead") {
      return fail(GroupError.COORDINATOR_NOT_AVAILABLE);
    }
    const protocols = req.protocols.map((p) => ({
      name: p.name,
      metadata: p.metadata.slice(),
    }));
    if (!this.#supports(group, req.protocolType, protocols)) {
      return fail(GroupError.INCONSISTENT_GROUP_PROTOCOL);
    }
    const rebalanceTimeoutMs = req.rebalanceTimeoutMs > 0
      ? req.rebalanceTimeoutMs
      : req.sessionTimeoutMs;
    const fields: MemberFields = {
      clientId: client.clientId,
      clientHost: client.clientHost,
      sessionTimeoutMs: req.sessionTimeoutMs,
      rebalanceTimeoutMs,
      protocolType: req.protocolType,
      protocols,
    };

    if (req.memberId === "") {
      const memberId = `${client.clientId || "member"}-${crypto.randomUUID()}`;
      const instanceId = req.groupInstanceId;
      if (instanceId !== null && group.staticMembers.has(instanceId)) {
        return this.#rejoinStatic(group, {
          oldId: group.staticMembers.get(instanceId)!,
          newId: memberId,
          fields,
        });
      }
      if (instanceId === null && client.version >= 4) {
        group.pending.set(
          memberId,
          this.#timers.set(
            () => group.pending.delete(memberId),
            req.sessionTimeoutMs,
          ),
        );
        return fail(GroupError.MEMBER_ID_REQUIRED, memberId);
      }
      return this.#addAndRebalance(group, { memberId, instanceId, fields });
    }

    const pendingTimer = group.pending.get(req.memberId);
    if (pendingTimer !== undefined) {
      this.#timers.clear(pendingTimer);
      group.pending.delete(req.memberId);
      return this.#addAndRebalance(group, {
        memberId: req.memberId,
        instanceId: req.groupInstanceId,
        fields,
      });
    }
    const member = group.members.get(req.memberId);
    if (member === undefined) return fail(GroupError.UNKNOWN_MEMBER_ID);
    if (this.#fenced(group, member, req.groupInstanceId)) {
      return fail(GroupError.FENCED_INSTANCE_ID);
    }
    const changed = !sameProtocols(member.protocols, protocols);
    Object.assign(member, fields);
    switch (group.state) {
      case "PreparingRebalance":
        return this.#awaitJoin(group, member);
      case "CompletingRebalance":
        if (!changed) return Promise.resolve(this.#joinAnswer(group, member));
        return this.#rebalanceThenJoin(group, member);
      case "Stable":
        if (changed || member.memberId === group.leaderId) {
          return this.#rebalanceThenJoin(group, member);
        }
        return Promise.resolve(this.#joinAnswer(group, member));
      default:
        return fail(GroupError.UNKNOWN_MEMBER_ID);
    }
  }

  #joinError(errorCode: number, memberId: string): JoinAnswer {
    return {
      errorCode,
      generationId: -1,
      protocolType: null,
      protocolName: null,
      leader: "",
      memberId,
      members: [],
    };
  }

  /** True when the member's protocols fit what the group runs now. */
  #supports(group: Group, protocolType: string, protocols: Protocol[]) {
    if (protocols.length === 0 || protocolType === "") return false;
    if (group.members.size === 0) return true;
    if (protocolType !== group.protocolType) return false;
    const names = new Set(protocols.map((p) => p.name));
    return this.#candidates(group).some((c) => names.has(c));
  }

  /** Protocols every current member supports, in no particular order. */
  #candidates(group: Group): string[] {
    let common: string[] | null = null;
    for (const m of group.members.values()) {
      const names = new Set(m.protocols.map((p) => p.name));
      common = (common ?? [...names]).filter((n) => names.has(n));
    }
    return common ?? [];
  }

  #fenced(group: Group, member: Member, instanceId: string | null): boolean {
    return instanceId !== null &&
      group.staticMembers.get(instanceId) !== member.memberId;
  }

  #addAndRebalance(
    group: Group,
    spec: {
      memberId: string;
      instanceId: string | null;
      fields: MemberFields;
    },
  ): Promise<JoinAnswer> {
    const member: Member = {
      ...spec.fields,
      memberId: spec.memberId,
      groupInstanceId: spec.instanceId,
      assignment: EMPTY,
      joinWaiter: null,
      syncWaiter: null,
      sessionTimer: null,
    };
    group.members.set(member.memberId, member);
    if (spec.instanceId !== null) {
      group.staticMembers.set(spec.instanceId, member.memberId);
    }
    if (group.members.size === 1) group.protocolType = member.protocolType;
    return this.#rebalanceThenJoin(group, member);
  }

  /**
   * A static member restarted (KIP-345): it takes over its old entry under
   * a new member id; the old id is fenced. A stable group keeps its
   * assignment and is not rebalanced.
   */
  #rejoinStatic(
    group: Group,
    spec: {
      oldId: string;
      newId: string;
      fields: MemberFields;
    },
  ): Promise<JoinAnswer> {
    const old = group.members.get(spec.oldId);
    assert(old !== undefined, "A static member maps to a member", spec);
    this.#settle(old, GroupError.FENCED_INSTANCE_ID);
    const changed = !sameProtocols(old.protocols, spec.fields.protocols);
    group.members.delete(spec.oldId);
    const member: Member = { ...old, ...spec.fields, memberId: spec.newId };
    group.members.set(spec.newId, member);
    group.staticMembers.set(member.groupInstanceId!, spec.newId);
    if (group.leaderId === spec.oldId) group.leaderId = spec.newId;
    if (group.state === "Stable" && !changed) {
      this.#touch(group, member);
      return Promise.resolve(this.#joinAnswer(group, member));
    }
    return this.#rebalanceThenJoin(group, member);
  }

  #rebalanceThenJoin(group: Group, member: Member): Promise<JoinAnswer> {
    if (group.state !== "PreparingRebalance") this.#prepareRebalance(group);
    return this.#awaitJoin(group, member);
  }

  #awaitJoin(group: Group, member: Member): Promise<JoinAnswer> {
    // A second join from the same member replaces the first.
    member.joinWaiter?.(this.#joinError(
      GroupError.REBALANCE_IN_PROGRESS,
      member.memberId,
    ));
    const answer = new Promise<JoinAnswer>((resolve) => {
      member.joinWaiter = resolve;
    });
    this.#tryCompleteJoin(group);
    return answer;
  }

  #prepareRebalance(group: Group): void {
    if (group.state === "CompletingRebalance") {
      for (const m of group.members.values()) {
        m.assignment = EMPTY;
        this.#settleSync(m, GroupError.REBALANCE_IN_PROGRESS);
      }
    }
    const wasEmpty = group.state === "Empty";
    group.state = "PreparingRebalance";
    const rebalanceTimeoutMs = Math.max(
      ...[...group.members.values()].map((m) => m.rebalanceTimeoutMs),
    );
    this.#clearRebalanceTimers(group);
    group.rebalanceTimer = this.#timers.set(
      () => this.#completeJoin(group),
      rebalanceTimeoutMs,
    );
    const delayMs = wasEmpty ? this.#opts.initialRebalanceDelayMs : 0;
    group.joinNotBeforeMs = this.#timers.now() + delayMs;
    if (delayMs > 0) {
      group.initialDelayTimer = this.#timers.set(() => {
        group.initialDelayTimer = null;
        this.#tryCompleteJoin(group);
      }, delayMs);
    }
  }

  #clearRebalanceTimers(group: Group): void {
    if (group.rebalanceTimer !== null) this.#timers.clear(group.rebalanceTimer);
    if (group.initialDelayTimer !== null) {
      this.#timers.clear(group.initialDelayTimer);
    }
    group.rebalanceTimer = null;
    group.initialDelayTimer = null;
  }

  #tryCompleteJoin(group: Group): void {
    if (group.state !== "PreparingRebalance") return;
    if (this.#timers.now() < group.joinNotBeforeMs) return;
    if (group.pending.size > 0) return;
    for (const m of group.members.values()) {
      if (m.joinWaiter === null) return;
    }
    this.#completeJoin(group);
  }

  #completeJoin(group: Group): void {
    if (group.state !== "PreparingRebalance") return;
    this.#clearRebalanceTimers(group);
    // Dynamic members that did not rejoin in time are out; static ones
    // keep their place (KIP-345) until their session expires.
    for (const m of [...group.members.values()]) {
      if (m.joinWaiter === null && m.groupInstanceId === null) {
        this.#removeMember(group, m, GroupError.UNKNOWN_MEMBER_ID);
      }
    }
    group.generationId++;
    if (group.members.size === 0) {
      this.#becomeEmpty(group);
      return;
    }
    group.protocolName = this.#selectProtocol(group);
    if (group.leaderId === null || !group.members.has(group.leaderId)) {
      const joined = [...group.members.values()].find((m) =>
        m.joinWaiter !== null
      );
      group.leaderId = (joined ?? group.members.values().next().value!)
        .memberId;
    }
    group.state = "CompletingRebalance";
    for (const m of group.members.values()) {
      const waiter = m.joinWaiter;
      m.joinWaiter = null;
      this.#touch(group, m);
      waiter?.(this.#joinAnswer(group, m));
    }
  }

  /** The candidate protocol most members prefer (Kafka's vote). */
  #selectProtocol(group: Group): string {
    const candidates = new Set(this.#candidates(group));
    assert(candidates.size > 0, "Members share a protocol", {
      group: group.id,
    });
    const votes = new Map<string, number>();
    for (const m of group.members.values()) {
      const pick = m.protocols.find((p) => candidates.has(p.name))!.name;
      votes.set(pick, (votes.get(pick) ?? 0) + 1);
    }
    return [...votes].sort((a, b) => b[1] - a[1])[0]![0];
  }

  #metadataOf(group: Group, m: Member): Uint8Array {
    return m.protocols.find((p) => p.name === group.protocolName)?.metadata ??
      EMPTY;
  }

  #joinAnswer(group: Group, member: Member): JoinAnswer {
    const leader = member.memberId === group.leaderId;
    return {
      errorCode: GroupError.NONE,
      generationId: group.generationId,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      leader: group.leaderId ?? "",
      memberId: member.memberId,
      members: leader
        ? [...group.members.values()].map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          metadata: this.#metadataOf(group, m),
        }))
        : [],
    };
  }

  /** Restarts a member's session timer: it expires unless heard from. */
  #touch(group: Group, member: Member): void {
    if (member.sessionTimer !== null) this.#timers.clear(member.sessionTimer);
    member.sessionTimer = this.#timers.set(() => {
      member.sessionTimer = null;
      // A member waiting in JoinGroup is alive; its rebalance timeout rules.
      if (member.joinWaiter !== null) return;
      if (group.members.get(member.memberId) !== member) return;
      this.#removeMember(group, member, GroupError.UNKNOWN_MEMBER_ID);
      this.#afterDeparture(group);
    }, member.sessionTimeoutMs);
  }

  #settle(member: Member, errorCode: number): void {
    const waiter = member.joinWaiter;
    member.joinWaiter = null;
    waiter?.(this.#joinError(errorCode, member.memberId));
    this.#settleSync(member, errorCode);
  }

  #settleSync(member: Member, errorCode: number): void {
    const waiter = member.syncWaiter;
    member.syncWaiter = null;
    waiter?.({
      errorCode,
      protocolType: null,
      protocolName: null,
      assignment: EMPTY,
    });
  }

  #removeMember(group: Group, member: Member, errorCode: number): void {
    this.#settle(member, errorCode);
    if (member.sessionTimer !== null) this.#timers.clear(member.sessionTimer);
    member.sessionTimer = null;
    group.members.delete(member.memberId);
    if (member.groupInstanceId !== null) {
      group.staticMembers.delete(member.groupInstanceId);
    }
  }

  /** After members left or expired: rebalance the rest, or empty out. */
  #afterDeparture(group: Group): void {
    switch (group.state) {
      case "Stable":
      case "CompletingRebalance":
        if (group.members.size === 0) {
          group.generationId++;
          this.#becomeEmpty(group);
        } else {
          this.#prepareRebalance(group);
        }
        break;
      case "PreparingRebalance":
        if (group.members.size === 0) this.#completeJoin(group);
        else this.#tryCompleteJoin(group);
        break;
      default:
        break;
    }
  }

  #becomeEmpty(group: Group): void {
    this.#clearRebalanceTimers(group);
    group.state = "Empty";
    group.protocolName = null;
    group.leaderId = null;
    this.#persistGroup(group).catch(() => {
      // The next generation writes the group again; nothing waits on this.
    });
  }

  #persistGroup(group: Group): Promise<void> {
    const value = encodeGroup({
      protocolType: group.protocolType ?? "",
      generationId: group.generationId,
      protocolName: group.protocolName,
      leaderId: group.leaderId,
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        sessionTimeoutMs: m.sessionTimeoutMs,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        metadata: this.#metadataOf(group, m),
        assignment: m.assignment,
      })),
    });
    return this.#log.append(group.partition, [{
      key: encodeKey({ kind: "group", groupId: group.id }),
      value,
    }]);
  }

  /** Finds the member a request names, or the error code to answer. */
  #memberFor(
    req: { groupId: string; memberId: string; groupInstanceId: string | null },
  ): { group: Group; member: Member } | number {
    const away = this.#unavailable(
      req.groupId,
      GroupError.COORDINATOR_NOT_AVAILABLE,
    );
    if (away !== null) return away;
    const group = this.#groups.get(req.groupId);
    const member = group?.members.get(req.memberId);
    if (group === undefined || member === undefined) {
      return GroupError.UNKNOWN_MEMBER_ID;
    }
    if (this.#fenced(group, member, req.groupInstanceId)) {
      return GroupError.FENCED_INSTANCE_ID;
    }
    return { group, member };
  }

  sync(req: SyncGroupRequest): Promise<SyncAnswer> {
    const fail = (errorCode: number) =>
      Promise.resolve({
        errorCode,
        protocolType: null,
        protocolName: null,
        assignment: EMPTY,
      });
    const found = this.#memberFor(req);
    if (typeof found === "number") return fail(found);
    const { group, member } = found;
    if (req.generationId !== group.generationId) {
      return fail(GroupError.ILLEGAL_GENERATION);
    }
    if (
      (req.protocolType !== null && req.protocolType !== group.protocolType) ||
      (req.protocolName !== null && req.protocolName !== group.protocolName)
    ) {
      return fail(GroupError.INCONSISTENT_GROUP_PROTOCOL);
    }
    this.#touch(group, member);
    if (group.state === "PreparingRebalance") {
      return fail(GroupError.REBALANCE_IN_PROGRESS);
    }
    if (group.state === "Stable") {
      return Promise.resolve(this.#syncAnswer(group, member));
    }
    assert(group.state === "CompletingRebalance", "Sync in a live state", {
      state: group.state,
    });
    this.#settleSync(member, GroupError.REBALANCE_IN_PROGRESS);
    const answer = new Promise<SyncAnswer>((resolve) => {
      member.syncWaiter = resolve;
    });
    if (member.memberId === group.leaderId) {
      const given = new Map(
        req.assignments.map((a) => [a.memberId, a.assignment.slice()]),
      );
      for (const m of group.members.values()) {
        m.assignment = given.get(m.memberId) ?? EMPTY;
      }
      const generation = group.generationId;
      this.#persistGroup(group).then(
        () => {
          if (
            group.state !== "CompletingRebalance" ||
            group.generationId !== generation
          ) return;
          group.state = "Stable";
          for (const m of group.members.values()) {
            const waiter = m.syncWaiter;
            m.syncWaiter = null;
            waiter?.(this.#syncAnswer(group, m));
          }
        },
        () => {
          if (group.generationId !== generation) return;
          for (const m of group.members.values()) {
            this.#settleSync(m, GroupError.COORDINATOR_NOT_AVAILABLE);
          }
          if (group.state === "CompletingRebalance") {
            this.#prepareRebalance(group);
          }
        },
      );
    }
    return answer;
  }

  #syncAnswer(group: Group, member: Member): SyncAnswer {
    return {
      errorCode: GroupError.NONE,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      assignment: member.assignment,
    };
  }

  heartbeat(
    req: {
      groupId: string;
      generationId: number;
      memberId: string;
      groupInstanceId: string | null;
    },
  ): number {
    const found = this.#memberFor(req);
    if (typeof found === "number") return found;
    const { group, member } = found;
    if (group.state === "PreparingRebalance") {
      this.#touch(group, member);
      return GroupError.REBALANCE_IN_PROGRESS;
    }
    if (req.generationId !== group.generationId) {
      return GroupError.ILLEGAL_GENERATION;
    }
    this.#touch(group, member);
    return GroupError.NONE;
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
    const answers = members.map((m) => {
      const memberId = m.memberId !== ""
        ? m.memberId
        : m.groupInstanceId === null
        ? ""
        : group?.staticMembers.get(m.groupInstanceId) ?? "";
      const member = group?.members.get(memberId);
      let errorCode: number = GroupError.NONE;
      if (group === undefined || member === undefined) {
        errorCode = GroupError.UNKNOWN_MEMBER_ID;
      } else if (this.#fenced(group, member, m.groupInstanceId)) {
        errorCode = GroupError.FENCED_INSTANCE_ID;
      } else {
        this.#removeMember(group, member, GroupError.UNKNOWN_MEMBER_ID);
      }
      return {
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        errorCode,
      };
    });
    if (group !== undefined && answers.some((a) => a.errorCode === 0)) {
      this.#afterDeparture(group);
    }
    return { errorCode: GroupError.NONE, members: answers };
  }

  // ---- offsets ----------------------------------------------------------

  /** Commits offsets; answers each partition once its record is durable. */
  async commit(
    req: CommitRequest,
  ): Promise<
    {
      name: string;
      partitions: { partitionIndex: number; errorCode: number }[];
    }[]
  > {
    const all = (errorCode: number) =>
      req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          errorCode,
        })),
      }));
    const away = this.#unavailable(
      req.groupId,
      GroupError.COORDINATOR_LOAD_IN_PROGRESS,
    );
    if (away !== null) return all(away);
    if (req.groupId === "") return all(GroupError.INVALID_GROUP_ID);
    const group = this.#groups.get(req.groupId);
    const standalone = req.generationId < 0 && req.memberId === "";
    if (standalone) {
      // Offsets committed outside group management (admin tools, assign()).
      if (group !== undefined && group.state !== "Empty") {
        return all(GroupError.UNKNOWN_MEMBER_ID);
      }
    } else {
      const found = this.#memberFor(req);
      if (typeof found === "number") return all(found);
      if (req.generationId !== found.group.generationId) {
        return all(GroupError.ILLEGAL_GENERATION);
      }
      if (found.group.state === "CompletingRebalance") {
        return all(GroupError.REBALANCE_IN_PROGRESS);
      }
      this.#touch(found.group, found.member);
    }
    const nowMs = BigInt(this.#timers.now());
    const writes: {
      key: string;
      value: CommittedOffset;
      bytes: Uint8Array[];
    }[] = [];
    const answers = req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => {
        let errorCode: number = GroupError.NONE;
        if (!this.#opts.partitionExists(t.name, p.partitionIndex)) {
          errorCode = GroupError.UNKNOWN_TOPIC_OR_PARTITION;
        } else if (
          (p.committedMetadata?.length ?? 0) > OFFSET_METADATA_MAX_BYTES
        ) {
          errorCode = GroupError.OFFSET_METADATA_TOO_LARGE;
        } else {
          const value: CommittedOffset = {
            offset: p.committedOffset,
            leaderEpoch: p.committedLeaderEpoch,
            metadata: p.committedMetadata,
            commitTimestampMs: nowMs,
          };
          writes.push({
            key: `${t.name}\u0000${p.partitionIndex}`,
            value,
            bytes: [
              encodeKey({
                kind: "offset",
                groupId: req.groupId,
                topic: t.name,
                partition: p.partitionIndex,
              }),
              encodeOffset(value),
            ],
          });
        }
        return { partitionIndex: p.partitionIndex, errorCode };
      }),
    }));
    if (writes.length === 0) return answers;
    try {
      await this.#log.append(
        this.partitionFor(req.groupId),
        writes.map((w) => ({ key: w.bytes[0]!, value: w.bytes[1]! })),
      );
    } catch {
      return all(GroupError.COORDINATOR_NOT_AVAILABLE);
    }
    const offsets = this.#offsetsOf(req.groupId);
    for (const w of writes) offsets.set(w.key, w.value);
    return answers;
  }

  /**
   * Committed offsets of a group: of the named topics' partitions, or of
   * every partition it committed when `topics` is null. -1 where none.
   */
  fetchOffsets(
    groupId: string,
    topics: readonly { name: string; partitionIndexes: number[] }[] | null,
  ): {
    errorCode: number;
    topics: { name: string; partitions: OffsetAnswer[] }[];
  } {
    const away = this.#unavailable(
      groupId,
      GroupError.COORDINATOR_LOAD_IN_PROGRESS,
    );
    if (away !== null) return { errorCode: away, topics: [] };
    const offsets = this.#offsets.get(groupId) ?? new Map();
    const answer = (topic: string, partitionIndex: number): OffsetAnswer => {
      const c = offsets.get(`${topic}\u0000${partitionIndex}`);
      return {
        partitionIndex,
        committedOffset: c?.offset ?? -1n,
        committedLeaderEpoch: c?.leaderEpoch ?? -1,
        metadata: c === undefined ? "" : c.metadata,
        errorCode: GroupError.NONE,
      };
    };
    if (topics !== null) {
      return {
        errorCode: GroupError.NONE,
        topics: topics.map((t) => ({
          name: t.name,
          partitions: t.partitionIndexes.map((i) => answer(t.name, i)),
        })),
      };
    }
    const byTopic = new Map<string, OffsetAnswer[]>();
    for (const key of offsets.keys()) {
      const [topic, index] = key.split("\u0000") as [string, string];
      const list = byTopic.get(topic) ?? [];
      list.push(answer(topic, Number(index)));
      byTopic.set(topic, list);
    }
    return {
      errorCode: GroupError.NONE,
      topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })),
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
    return {
      errorCode: GroupError.NONE,
      groupId,
      groupState: group.state,
      protocolType: group.protocolType ?? "",
      protocolData: group.protocolName ?? "",
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        memberMetadata: this.#metadataOf(group, m),
        memberAssignment: m.assignment,
      })),
    };
  }

  /** Every known group, with groups that only have committed offsets. */
  list(statesFilter: readonly string[]): ListGroupsResponseGroupsInput[] {
    const ids = new Set([...this.#groups.keys(), ...this.#offsets.keys()]);
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
    const offsets = this.#offsets.get(groupId);
    if (group === undefined && offsets === undefined) {
      return GroupError.GROUP_ID_NOT_FOUND;
    }
    if (group !== undefined && group.state !== "Empty") {
      return GroupError.NON_EMPTY_GROUP;
    }
    const tombstones = [...(offsets?.keys() ?? [])].map((k) => {
      const [topic, index] = k.split("\u0000") as [string, string];
      return encodeKey({
        kind: "offset",
        groupId,
        topic,
        partition: Number(index),
      });
    });
    tombstones.push(encodeKey({ kind: "group", groupId }));
    if (group !== undefined) group.state = "Dead";
    await this.#log.append(
      this.partitionFor(groupId),
      tombstones.map((key) => ({ key, value: null })),
    );
    this.#groups.delete(groupId);
    this.#offsets.delete(groupId);
    return GroupError.NONE;
  }

  /**
   * Drops committed offsets matching `drop` (of deleted topics, or expired)
   * by writing tombstones; the in-memory state follows once durable.
   */
  async removeOffsets(
    drop: (entry: {
      groupId: string;
      topic: string;
      value: CommittedOffset;
    }) => boolean,
  ): Promise<number> {
    const byPartition = new Map<number, { groupId: string; key: string }[]>();
    for (const [groupId, offsets] of this.#offsets) {
      if (!this.isLoaded(groupId)) continue;
      for (const [key, value] of offsets) {
        const topic = key.split("\u0000")[0]!;
        if (!drop({ groupId, topic, value })) continue;
        const p = this.partitionFor(groupId);
        const list = byPartition.get(p) ?? [];
        list.push({ groupId, key });
        byPartition.set(p, list);
      }
    }
    let removed = 0;
    for (const [partition, entries] of byPartition) {
      await this.#log.append(
        partition,
        entries.map(({ groupId, key }) => {
          const [topic, index] = key.split("\u0000") as [string, string];
          return {
            key: encodeKey({
              kind: "offset",
              groupId,
              topic,
              partition: Number(index),
            }),
            value: null,
          };
        }),
      );
      for (const { groupId, key } of entries) {
        const offsets = this.#offsets.get(groupId);
        offsets?.delete(key);
        if (offsets?.size === 0) this.#offsets.delete(groupId);
        removed++;
      }
    }
    return removed;
  }

  /** Offsets of the topic, which was deleted, go too. */
  removeTopicOffsets(topic: string): Promise<number> {
    return this.removeOffsets((e) => e.topic === topic);
  }

  /**
   * Expires offsets older than the retention of groups without members
   * (Kafka's offsets.retention.minutes applies to empty groups only).
   */
  expireOffsets(): Promise<number> {
    const cutoff = BigInt(this.#timers.now() - this.#opts.offsetsRetentionMs);
    return this.removeOffsets((e) =>
      (this.#groups.get(e.groupId)?.state ?? "Empty") === "Empty" &&
      e.value.commitTimestampMs < cutoff
    );
  }

  /** Stops every timer (broker shutdown). */
  close(): void {
    for (const group of this.#groups.values()) {
      this.#clearRebalanceTimers(group);
      for (const t of group.pending.values()) this.#timers.clear(t);
      for (const m of group.members.values()) {
        if (m.sessionTimer !== null) this.#timers.clear(m.sessionTimer);
        this.#settle(m, GroupError.COORDINATOR_NOT_AVAILABLE);
      }
    }
  }
}
