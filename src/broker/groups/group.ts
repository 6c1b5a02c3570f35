/**
 * One consumer group's state machine (Kafka's classic group protocol): its
 * members and generation, the moves between Empty, PreparingRebalance,
 * CompletingRebalance, Stable and Dead on JoinGroup, SyncGroup, Heartbeat
 * and LeaveGroup, and its members' session and rebalance timers.
 *
 * A group knows nothing of partitions or logs: when a generation becomes
 * stable or the group empties it hands a snapshot of its metadata to
 * `persist`, and the coordinator decides where that is written. Time runs
 * on the injected Timers, so tests drive the clock by hand.
 */
import {
  CONSUMER_PROTOCOL_TYPE,
  DecodeError,
  decodeSubscription,
  type DescribeGroupsResponseGroupsInput,
  type JoinGroupRequest,
  type JoinGroupResponseInput,
  type LeaveGroupResponseMembersInput,
  type SyncGroupRequest,
  type SyncGroupResponseInput,
} from "../../protocol/mod.ts";
import { assert } from "../../util/mod.ts";
import { GroupError } from "./group_error.ts";
import type { StoredGroup } from "./offsets_records.ts";

export type GroupStateName =
  | "Empty"
  | "PreparingRebalance"
  | "CompletingRebalance"
  | "Stable"
  | "Dead";

/** The clock and timers groups run on (a seam for tests). */
export interface Timers {
  now(): number;
  set(fn: () => void, delayMs: number): number;
  clear(id: number): void;
}

export interface ClientInfo {
  clientId: string;
  clientHost: string;
  /** Request version: JoinGroup v4+ asks new members to rejoin with an id. */
  version: number;
}

export interface GroupOptions {
  id: string;
  timers: Timers;
  /** Kafka's group.initial.rebalance.delay.ms. */
  initialRebalanceDelayMs: number;
  /** Writes the group's metadata; resolves once it is durable. */
  persist(stored: StoredGroup): Promise<void>;
  /** The id of the topic of that name now, if it exists. */
  topicId(topic: string): string | undefined;
}

/** A request from one member of a generation (Heartbeat, OffsetCommit). */
export interface MemberRequest {
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
}

/** Kafka's group.min/max.session.timeout.ms defaults, min relaxed for tests. */
const SESSION_TIMEOUT_MIN_MS = 1_000;
const SESSION_TIMEOUT_MAX_MS = 1_800_000;
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

/**
 * INVALID_SESSION_TIMEOUT unless the timeout is within Kafka's bounds.
 * Checked before a group is looked up, so that a bad join creates none.
 */
export function sessionTimeoutError(sessionTimeoutMs: number): number {
  return sessionTimeoutMs < SESSION_TIMEOUT_MIN_MS ||
      sessionTimeoutMs > SESSION_TIMEOUT_MAX_MS
    ? GroupError.INVALID_SESSION_TIMEOUT
    : GroupError.NONE;
}

export function joinError(errorCode: number, memberId: string): JoinAnswer {
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

export function syncError(errorCode: number): SyncAnswer {
  return {
    errorCode,
    protocolType: null,
    protocolName: null,
    assignment: EMPTY,
  };
}

function sameProtocols(a: readonly Protocol[], b: readonly Protocol[]) {
  return a.length === b.length &&
    a.every((p, i) =>
      p.name === b[i]!.name && p.metadata.length === b[i]!.metadata.length &&
      p.metadata.every((byte, j) => byte === b[i]!.metadata[j])
    );
}

export class Group {
  readonly id: string;
  readonly #timers: Timers;
  readonly #initialRebalanceDelayMs: number;
  readonly #persist: (stored: StoredGroup) => Promise<void>;
  readonly #topicId: (topic: string) => string | undefined;
  #state: GroupStateName = "Empty";
  #generationId = 0;
  /**
   * The ids the subscribed topics had when this generation formed (null:
   * absent), which its assignment refers to.
   */
  #topicIds = new Map<string, string | null>();
  #protocolType: string | null = null;
  #protocolName: string | null = null;
  #leaderId: string | null = null;
  readonly #members = new Map<string, Member>();
  /** Member ids handed out with MEMBER_ID_REQUIRED, awaiting their rejoin. */
  readonly #pending = new Map<string, number>();
  readonly #staticMembers = new Map<string, string>();
  #rebalanceTimer: number | null = null;
  #initialDelayTimer: number | null = null;
  /** While the initial delay runs, a join does not complete. */
  #joinNotBeforeMs = 0;

  constructor(opts: GroupOptions) {
    this.id = opts.id;
    this.#timers = opts.timers;
    this.#initialRebalanceDelayMs = opts.initialRebalanceDelayMs;
    this.#persist = opts.persist;
    this.#topicId = opts.topicId;
  }

  /**
   * A group as its persisted metadata left it: Stable with its members,
   * whose sessions start now, or Empty.
   */
  static restore(opts: GroupOptions, stored: StoredGroup): Group {
    const group = new Group(opts);
    group.#generationId = stored.generationId;
    group.#protocolType = stored.protocolType;
    group.#protocolName = stored.protocolName;
    group.#leaderId = stored.leaderId;
    for (const { metadata, ...kept } of stored.members) {
      group.#touch(group.#addMember({
        ...kept,
        protocolType: stored.protocolType,
        protocols: [{ name: stored.protocolName ?? "", metadata }],
      }));
    }
    group.#state = group.#members.size > 0 ? "Stable" : "Empty";
    return group;
  }

  get state(): GroupStateName {
    return this.#state;
  }

  get protocolType(): string | null {
    return this.#protocolType;
  }

  // ---- membership -------------------------------------------------------

  join(req: JoinGroupRequest, client: ClientInfo): Promise<JoinAnswer> {
    const fail = (errorCode: number, memberId = req.memberId) =>
      Promise.resolve(joinError(errorCode, memberId));
    if (this.#state === "Dead") {
      return fail(GroupError.COORDINATOR_NOT_AVAILABLE);
    }
    const protocols = req.protocols.map((p) => ({
      name: p.name,
      metadata: p.metadata.slice(),
    }));
    if (!this.#supports(req.protocolType, protocols)) {
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
      if (instanceId !== null && this.#staticMembers.has(instanceId)) {
        return this.#rejoinStatic({
          oldId: this.#staticMembers.get(instanceId)!,
          newId: memberId,
          fields,
        });
      }
      if (instanceId === null && client.version >= 4) {
        this.#pending.set(
          memberId,
          this.#timers.set(
            () => this.#pending.delete(memberId),
            req.sessionTimeoutMs,
          ),
        );
        return fail(GroupError.MEMBER_ID_REQUIRED, memberId);
      }
      return this.#addAndRebalance({ memberId, instanceId, fields });
    }

    const pendingTimer = this.#pending.get(req.memberId);
    if (pendingTimer !== undefined) {
      this.#timers.clear(pendingTimer);
      this.#pending.delete(req.memberId);
      return this.#addAndRebalance({
        memberId: req.memberId,
        instanceId: req.groupInstanceId,
        fields,
      });
    }
    const member = this.#members.get(req.memberId);
    if (member === undefined) return fail(GroupError.UNKNOWN_MEMBER_ID);
    if (this.#fenced(member, req.groupInstanceId)) {
      return fail(GroupError.FENCED_INSTANCE_ID);
    }
    const changed = !sameProtocols(member.protocols, protocols);
    Object.assign(member, fields);
    switch (this.#state) {
      case "PreparingRebalance":
        return this.#awaitJoin(member);
      case "CompletingRebalance":
        if (!changed) return Promise.resolve(this.#joinAnswer(member));
        return this.#rebalanceThenJoin(member);
      case "Stable":
        if (changed || member.memberId === this.#leaderId) {
          return this.#rebalanceThenJoin(member);
        }
        return Promise.resolve(this.#joinAnswer(member));
      default:
        return fail(GroupError.UNKNOWN_MEMBER_ID);
    }
  }

  sync(req: SyncGroupRequest): Promise<SyncAnswer> {
    const fail = (errorCode: number) => Promise.resolve(syncError(errorCode));
    const member = this.#memberFor(req);
    if (typeof member === "number") return fail(member);
    if (req.generationId !== this.#generationId) {
      return fail(GroupError.ILLEGAL_GENERATION);
    }
    if (
      (req.protocolType !== null && req.protocolType !== this.#protocolType) ||
      (req.protocolName !== null && req.protocolName !== this.#protocolName)
    ) {
      return fail(GroupError.INCONSISTENT_GROUP_PROTOCOL);
    }
    this.#touch(member);
    if (this.#state === "PreparingRebalance") {
      return fail(GroupError.REBALANCE_IN_PROGRESS);
    }
    if (this.#state === "Stable") {
      return Promise.resolve(this.#syncAnswer(member));
    }
    assert(this.#state === "CompletingRebalance", "Sync in a live state", {
      state: this.#state,
    });
    this.#settleSync(member, GroupError.REBALANCE_IN_PROGRESS);
    const answer = new Promise<SyncAnswer>((resolve) => {
      member.syncWaiter = resolve;
    });
    if (member.memberId === this.#leaderId) {
      const given = new Map(
        req.assignments.map((a) => [a.memberId, a.assignment.slice()]),
      );
      for (const m of this.#members.values()) {
        m.assignment = given.get(m.memberId) ?? EMPTY;
      }
      const generation = this.#generationId;
      this.#persistGroup().then(
        () => {
          if (
            this.#state !== "CompletingRebalance" ||
            this.#generationId !== generation
          ) return;
          this.#state = "Stable";
          for (const m of this.#members.values()) {
            const waiter = m.syncWaiter;
            m.syncWaiter = null;
            waiter?.(this.#syncAnswer(m));
          }
        },
        () => {
          if (this.#generationId !== generation) return;
          for (const m of this.#members.values()) {
            this.#settleSync(m, GroupError.COORDINATOR_NOT_AVAILABLE);
          }
          if (this.#state === "CompletingRebalance") {
            this.#prepareRebalance();
          }
        },
      );
    }
    return answer;
  }

  heartbeat(req: MemberRequest): number {
    const member = this.#memberFor(req);
    if (typeof member === "number") return member;
    if (this.#state === "PreparingRebalance") {
      this.#touch(member);
      return GroupError.REBALANCE_IN_PROGRESS;
    }
    if (req.generationId !== this.#generationId) {
      return GroupError.ILLEGAL_GENERATION;
    }
    this.#touch(member);
    return GroupError.NONE;
  }

  /**
   * Whether a member may commit offsets now (OffsetCommit): NONE, and its
   * session restarts, or the error code to answer.
   */
  admitCommit(req: MemberRequest): number {
    const member = this.#memberFor(req);
    if (typeof member === "number") return member;
    if (req.generationId !== this.#generationId) {
      return GroupError.ILLEGAL_GENERATION;
    }
    if (this.#state === "CompletingRebalance") {
      return GroupError.REBALANCE_IN_PROGRESS;
    }
    this.#touch(member);
    return GroupError.NONE;
  }

  /**
   * Removes members (LeaveGroup). A static member may be named by its
   * instance id alone. Answers a code per member.
   */
  leave(
    members: readonly { memberId: string; groupInstanceId: string | null }[],
  ): LeaveGroupResponseMembersInput[] {
    const answers = members.map((m) => {
      const memberId = m.memberId !== ""
        ? m.memberId
        : m.groupInstanceId === null
        ? ""
        : this.#staticMembers.get(m.groupInstanceId) ?? "";
      const member = this.#members.get(memberId);
      let errorCode: number = GroupError.NONE;
      if (member === undefined) {
        errorCode = GroupError.UNKNOWN_MEMBER_ID;
      } else if (this.#fenced(member, m.groupInstanceId)) {
        errorCode = GroupError.FENCED_INSTANCE_ID;
      } else {
        this.#removeMember(member, GroupError.UNKNOWN_MEMBER_ID);
      }
      return {
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        errorCode,
      };
    });
    if (answers.some((a) => a.errorCode === 0)) this.#afterDeparture();
    return answers;
  }

  describe(): DescribeGroupsResponseGroupsInput {
    return {
      errorCode: GroupError.NONE,
      groupId: this.id,
      groupState: this.#state,
      protocolType: this.#protocolType ?? "",
      protocolData: this.#protocolName ?? "",
      members: [...this.#members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        memberMetadata: this.#metadataOf(m),
        memberAssignment: m.assignment,
      })),
    };
  }

  /**
   * The topics the members of a consumer group subscribe to, read from
   * their metadata for the group's protocol (Kafka's subscribedTopics).
   * Other protocols' metadata is opaque, and a member whose subscription
   * does not parse names none, so neither blocks an offset deletion.
   */
  subscribedTopics(): Set<string> {
    const topics = new Set<string>();
    if (this.#protocolType !== CONSUMER_PROTOCOL_TYPE) return topics;
    for (const m of this.#members.values()) {
      try {
        for (const t of decodeSubscription(this.#metadataOf(m))) topics.add(t);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
      }
    }
    return topics;
  }

  /**
   * False when a subscribed topic was deleted or re-created since this
   * generation formed: its assignment names partitions of another topic
   * than the one of that name now, so its offsets must not land there.
   */
  sameTopicSinceJoin(topic: string): boolean {
    const then = this.#topicIds.get(topic);
    return then === undefined || then === (this.#topicId(topic) ?? null);
  }

  /**
   * Members rejoin (a subscribed topic was deleted or re-created), so the
   * next assignment is made for the topics as they are now.
   */
  rebalance(): void {
    if (this.#state === "Stable" || this.#state === "CompletingRebalance") {
      this.#prepareRebalance();
    }
  }

  /** An empty group is being deleted: joins are refused from now on. */
  becomeDead(): void {
    assert(this.#state === "Empty", "Only an empty group dies", {
      group: this.id,
      state: this.#state,
    });
    this.#state = "Dead";
  }

  /**
   * Stops every timer and answers waiting members with `errorCode`: the
   * coordinator lets go of the group (it moved, or the broker stops).
   */
  close(errorCode: number): void {
    this.#clearRebalanceTimers();
    for (const t of this.#pending.values()) this.#timers.clear(t);
    for (const m of this.#members.values()) {
      if (m.sessionTimer !== null) this.#timers.clear(m.sessionTimer);
      this.#settle(m, errorCode);
    }
  }

  /** True when the member's protocols fit what the group runs now. */
  #supports(protocolType: string, protocols: Protocol[]) {
    if (protocols.length === 0 || protocolType === "") return false;
    if (this.#members.size === 0) return true;
    if (protocolType !== this.#protocolType) return false;
    const names = new Set(protocols.map((p) => p.name));
    return this.#candidates().some((c) => names.has(c));
  }

  /** Protocols every current member supports, in no particular order. */
  #candidates(): string[] {
    let common: string[] | null = null;
    for (const m of this.#members.values()) {
      const names = new Set(m.protocols.map((p) => p.name));
      common = (common ?? [...names]).filter((n) => names.has(n));
    }
    return common ?? [];
  }

  #fenced(member: Member, instanceId: string | null): boolean {
    return instanceId !== null &&
      this.#staticMembers.get(instanceId) !== member.memberId;
  }

  /** Finds the member a request names, or the error code to answer. */
  #memberFor(
    req: { memberId: string; groupInstanceId: string | null },
  ): Member | number {
    const member = this.#members.get(req.memberId);
    if (member === undefined) return GroupError.UNKNOWN_MEMBER_ID;
    if (this.#fenced(member, req.groupInstanceId)) {
      return GroupError.FENCED_INSTANCE_ID;
    }
    return member;
  }

  /** Adds a member that waits on nothing and has no session timer yet. */
  #addMember(
    fields: Omit<Member, "joinWaiter" | "syncWaiter" | "sessionTimer">,
  ): Member {
    const member: Member = {
      ...fields,
      joinWaiter: null,
      syncWaiter: null,
      sessionTimer: null,
    };
    this.#members.set(member.memberId, member);
    if (member.groupInstanceId !== null) {
      this.#staticMembers.set(member.groupInstanceId, member.memberId);
    }
    return member;
  }

  #addAndRebalance(
    spec: {
      memberId: string;
      instanceId: string | null;
      fields: MemberFields;
    },
  ): Promise<JoinAnswer> {
    const member = this.#addMember({
      ...spec.fields,
      memberId: spec.memberId,
      groupInstanceId: spec.instanceId,
      assignment: EMPTY,
    });
    if (this.#members.size === 1) this.#protocolType = member.protocolType;
    return this.#rebalanceThenJoin(member);
  }

  /**
   * A static member restarted (KIP-345): it takes over its old entry under
   * a new member id; the old id is fenced. A stable group keeps its
   * assignment and is not rebalanced.
   */
  #rejoinStatic(
    spec: {
      oldId: string;
      newId: string;
      fields: MemberFields;
    },
  ): Promise<JoinAnswer> {
    const old = this.#members.get(spec.oldId);
    assert(old !== undefined, "A static member maps to a member", spec);
    this.#settle(old, GroupError.FENCED_INSTANCE_ID);
    const changed = !sameProtocols(old.protocols, spec.fields.protocols);
    this.#members.delete(spec.oldId);
    const member: Member = { ...old, ...spec.fields, memberId: spec.newId };
    this.#members.set(spec.newId, member);
    this.#staticMembers.set(member.groupInstanceId!, spec.newId);
    if (this.#leaderId === spec.oldId) this.#leaderId = spec.newId;
    if (this.#state === "Stable" && !changed) {
      this.#touch(member);
      return Promise.resolve(this.#joinAnswer(member));
    }
    return this.#rebalanceThenJoin(member);
  }

  #rebalanceThenJoin(member: Member): Promise<JoinAnswer> {
    if (this.#state !== "PreparingRebalance") this.#prepareRebalance();
    return this.#awaitJoin(member);
  }

  #awaitJoin(member: Member): Promise<JoinAnswer> {
    // A second join from the same member replaces the first.
    member.joinWaiter?.(joinError(
      GroupError.REBALANCE_IN_PROGRESS,
      member.memberId,
    ));
    const answer = new Promise<JoinAnswer>((resolve) => {
      member.joinWaiter = resolve;
    });
    this.#tryCompleteJoin();
    return answer;
  }

  #prepareRebalance(): void {
    if (this.#state === "CompletingRebalance") {
      for (const m of this.#members.values()) {
        m.assignment = EMPTY;
        this.#settleSync(m, GroupError.REBALANCE_IN_PROGRESS);
      }
    }
    const wasEmpty = this.#state === "Empty";
    this.#state = "PreparingRebalance";
    const rebalanceTimeoutMs = Math.max(
      ...[...this.#members.values()].map((m) => m.rebalanceTimeoutMs),
    );
    this.#clearRebalanceTimers();
    this.#rebalanceTimer = this.#timers.set(
      () => this.#completeJoin(),
      rebalanceTimeoutMs,
    );
    const delayMs = wasEmpty ? this.#initialRebalanceDelayMs : 0;
    this.#joinNotBeforeMs = this.#timers.now() + delayMs;
    if (delayMs > 0) {
      this.#initialDelayTimer = this.#timers.set(() => {
        this.#initialDelayTimer = null;
        this.#tryCompleteJoin();
      }, delayMs);
    }
  }

  #clearRebalanceTimers(): void {
    if (this.#rebalanceTimer !== null) this.#timers.clear(this.#rebalanceTimer);
    if (this.#initialDelayTimer !== null) {
      this.#timers.clear(this.#initialDelayTimer);
    }
    this.#rebalanceTimer = null;
    this.#initialDelayTimer = null;
  }

  #tryCompleteJoin(): void {
    if (this.#state !== "PreparingRebalance") return;
    if (this.#timers.now() < this.#joinNotBeforeMs) return;
    if (this.#pending.size > 0) return;
    for (const m of this.#members.values()) {
      if (m.joinWaiter === null) return;
    }
    this.#completeJoin();
  }

  #completeJoin(): void {
    if (this.#state !== "PreparingRebalance") return;
    this.#clearRebalanceTimers();
    // Dynamic members that did not rejoin in time are out; static ones
    // keep their place (KIP-345) until their session expires.
    for (const m of [...this.#members.values()]) {
      if (m.joinWaiter === null && m.groupInstanceId === null) {
        this.#removeMember(m, GroupError.UNKNOWN_MEMBER_ID);
      }
    }
    this.#generationId++;
    if (this.#members.size === 0) {
      this.#becomeEmpty();
      return;
    }
    this.#protocolName = this.#selectProtocol();
    this.#topicIds = new Map(
      [...this.subscribedTopics()].map((t) => [t, this.#topicId(t) ?? null]),
    );
    if (this.#leaderId === null || !this.#members.has(this.#leaderId)) {
      const joined = [...this.#members.values()].find((m) =>
        m.joinWaiter !== null
      );
      this.#leaderId = (joined ?? this.#members.values().next().value!)
        .memberId;
    }
    this.#state = "CompletingRebalance";
    for (const m of this.#members.values()) {
      const waiter = m.joinWaiter;
      m.joinWaiter = null;
      this.#touch(m);
      waiter?.(this.#joinAnswer(m));
    }
  }

  /** The candidate protocol most members prefer (Kafka's vote). */
  #selectProtocol(): string {
    const candidates = new Set(this.#candidates());
    assert(candidates.size > 0, "Members share a protocol", {
      group: this.id,
    });
    const votes = new Map<string, number>();
    for (const m of this.#members.values()) {
      const pick = m.protocols.find((p) => candidates.has(p.name))!.name;
      votes.set(pick, (votes.get(pick) ?? 0) + 1);
    }
    return [...votes].sort((a, b) => b[1] - a[1])[0]![0];
  }

  #metadataOf(m: Member): Uint8Array {
    return m.protocols.find((p) => p.name === this.#protocolName)?.metadata ??
      EMPTY;
  }

  #joinAnswer(member: Member): JoinAnswer {
    const leader = member.memberId === this.#leaderId;
    return {
      errorCode: GroupError.NONE,
      generationId: this.#generationId,
      protocolType: this.#protocolType,
      protocolName: this.#protocolName,
      leader: this.#leaderId ?? "",
      memberId: member.memberId,
      members: leader
        ? [...this.#members.values()].map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          metadata: this.#metadataOf(m),
        }))
        : [],
    };
  }

  #syncAnswer(member: Member): SyncAnswer {
    return {
      errorCode: GroupError.NONE,
      protocolType: this.#protocolType,
      protocolName: this.#protocolName,
      assignment: member.assignment,
    };
  }

  /** Restarts a member's session timer: it expires unless heard from. */
  #touch(member: Member): void {
    if (member.sessionTimer !== null) this.#timers.clear(member.sessionTimer);
    member.sessionTimer = this.#timers.set(() => {
      member.sessionTimer = null;
      // A member waiting in JoinGroup is alive; its rebalance timeout rules.
      if (member.joinWaiter !== null) return;
      if (this.#members.get(member.memberId) !== member) return;
      this.#removeMember(member, GroupError.UNKNOWN_MEMBER_ID);
      this.#afterDeparture();
    }, member.sessionTimeoutMs);
  }

  #settle(member: Member, errorCode: number): void {
    const waiter = member.joinWaiter;
    member.joinWaiter = null;
    waiter?.(joinError(errorCode, member.memberId));
    this.#settleSync(member, errorCode);
  }

  #settleSync(member: Member, errorCode: number): void {
    const waiter = member.syncWaiter;
    member.syncWaiter = null;
    waiter?.(syncError(errorCode));
  }

  #removeMember(member: Member, errorCode: number): void {
    this.#settle(member, errorCode);
    if (member.sessionTimer !== null) this.#timers.clear(member.sessionTimer);
    member.sessionTimer = null;
    this.#members.delete(member.memberId);
    if (member.groupInstanceId !== null) {
      this.#staticMembers.delete(member.groupInstanceId);
    }
  }

  /** After members left or expired: rebalance the rest, or empty out. */
  #afterDeparture(): void {
    switch (this.#state) {
      case "Stable":
      case "CompletingRebalance":
        if (this.#members.size === 0) {
          this.#generationId++;
          this.#becomeEmpty();
        } else {
          this.#prepareRebalance();
        }
        break;
      case "PreparingRebalance":
        if (this.#members.size === 0) this.#completeJoin();
        else this.#tryCompleteJoin();
        break;
      default:
        break;
    }
  }

  #becomeEmpty(): void {
    this.#clearRebalanceTimers();
    this.#state = "Empty";
    this.#protocolName = null;
    this.#leaderId = null;
    this.#persistGroup().catch(() => {
      // The next generation writes the group again; nothing waits on this.
    });
  }

  #persistGroup(): Promise<void> {
    return this.#persist({
      protocolType: this.#protocolType ?? "",
      generationId: this.#generationId,
      protocolName: this.#protocolName,
      leaderId: this.#leaderId,
      members: [...this.#members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        sessionTimeoutMs: m.sessionTimeoutMs,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        metadata: this.#metadataOf(m),
        assignment: m.assignment,
      })),
    });
  }
}
