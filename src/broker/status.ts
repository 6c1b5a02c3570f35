/**
 * The broker seen from outside the Kafka protocol: the read-only answers
 * that the admin HTTP API (src/admin) serves as JSON and health probes.
 * Everything here is read from the same state the Kafka handlers use (the
 * replicated view, the group coordinator, the local partition replicas),
 * and nothing here changes it.
 */
import {
  CLUSTER_RESOURCE_NAME,
  type ControllerState,
} from "./controller/mod.ts";
import type { ClusterNode } from "./cluster/node.ts";
import type { GroupCoordinator } from "./groups/coordinator.ts";
import type { PartitionManager } from "./partitions.ts";
import type { ClusterView, UsersPort } from "./ports.ts";
import type { Authorizer } from "./security/authorizer.ts";
import { passwordAccepted } from "./security/sasl.ts";
import { ErrorCode } from "../protocol/mod.ts";

export interface BrokerSummary {
  readonly nodeId: number;
  readonly host: string;
  readonly kafkaPort: number;
  /** As the controller records it: "online", "failed"… */
  readonly status: string;
  readonly lastSeenMs: number;
  readonly isController: boolean;
}

export interface PartitionSummary {
  readonly topic: string;
  readonly partition: number;
  /** -1 while none is known. */
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  readonly offline: readonly number[];
}

/** What this broker's own replica of a partition holds (absent if it has none). */
export interface ReplicaDetail {
  readonly logStartOffset: string;
  readonly logEndOffset: string;
  readonly highWatermark: string;
  readonly sizeBytes: number;
  readonly leading: boolean;
}

export interface PartitionDetail extends PartitionSummary {
  readonly local: ReplicaDetail | null;
  /** On the leader: how many Raft entries each replica lacks of the leader's log. */
  readonly replicaLag: Readonly<Record<string, number>> | null;
}

export interface TopicSummary {
  readonly name: string;
  readonly topicId: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly internal: boolean;
}

export interface TopicDetail extends TopicSummary {
  readonly configs: Readonly<Record<string, string>>;
  readonly partitionDetails: readonly PartitionSummary[];
}

export interface GroupSummary {
  readonly groupId: string;
  readonly state: string;
  readonly protocolType: string;
}

export interface GroupOffset {
  readonly topic: string;
  readonly partition: number;
  readonly committedOffset: string;
  /** null when this broker holds no replica of the partition to compare with. */
  readonly lag: number | null;
}

export interface GroupDetail extends GroupSummary {
  readonly members: readonly {
    memberId: string;
    clientId: string;
    clientHost: string;
  }[];
  readonly offsets: readonly GroupOffset[];
}

/**
 * Either the answer, or why there is none: another broker coordinates the
 * group (`coordinator` says which, -1 if unknown), no such group, or its
 * offsets partition is still being read back (`loading`).
 */
export type GroupLookup =
  | { ok: true; group: GroupDetail }
  | {
    ok: false;
    reason: "elsewhere" | "unknown" | "loading";
    coordinator: number;
  };

export interface Readiness {
  readonly ready: boolean;
  /** -1 when this broker knows no controller. */
  readonly controllerId: number;
  /**
   * Hosted partitions that cannot take writes now, as "topic-partition":
   * no live leader, or fewer live replicas than a Raft majority.
   */
  readonly unavailable: readonly string[];
}

/** What the admin API reads; the broker's composition implements it. */
export interface StatusPort {
  readonly nodeId: number;
  readiness(): Readiness;
  brokers(): BrokerSummary[];
  topics(): TopicSummary[];
  topic(name: string): TopicDetail | undefined;
  /** undefined for an unknown topic or partition. */
  partition(topic: string, index: number): PartitionDetail | undefined;
  groups(): GroupSummary[];
  group(groupId: string): GroupLookup;
  /** The Prometheus page. */
  metrics(): string;
  /**
   * admin.auth basic: may this user, with this password, from `host` read
   * the admin API? unauthenticated: no such user or another password;
   * forbidden: authorization.enabled and no DESCRIBE on the cluster.
   */
  adminAccess(
    user: string,
    password: string,
    host: string,
  ): "allowed" | "unauthenticated" | "forbidden";
}

/** Committed offsets and lag of the groups this broker coordinates. */
export function groupOffsets(
  coordinator: GroupCoordinator,
  partitions: PartitionManager,
  groupId: string,
): GroupOffset[] {
  const out: GroupOffset[] = [];
  for (const t of coordinator.fetchOffsets(groupId, null).topics) {
    for (const o of t.partitions) {
      if (o.committedOffset < 0n) continue;
      const p = partitions.get(t.name, o.partitionIndex);
      out.push({
        topic: t.name,
        partition: o.partitionIndex,
        committedOffset: String(o.committedOffset),
        lag: p === undefined
          ? null
          : Math.max(0, Number(p.highWatermark - o.committedOffset)),
      });
    }
  }
  return out;
}

export class ReplicatedStatus implements StatusPort {
  readonly #node: ClusterNode;
  readonly #view: ClusterView & UsersPort;
  readonly #coordinator: GroupCoordinator;
  readonly #partitions: PartitionManager;
  readonly #internal: ReadonlySet<string>;
  readonly #offsetsTopic: string;
  readonly #metrics: () => string;
  readonly #authorizer: Authorizer;

  constructor(opts: {
    node: ClusterNode;
    view: ClusterView & UsersPort;
    coordinator: GroupCoordinator;
    partitions: PartitionManager;
    offsetsTopic: string;
    metrics: () => string;
    authorizer: Authorizer;
  }) {
    this.#node = opts.node;
    this.#view = opts.view;
    this.#coordinator = opts.coordinator;
    this.#partitions = opts.partitions;
    this.#offsetsTopic = opts.offsetsTopic;
    this.#internal = new Set([opts.offsetsTopic]);
    this.#metrics = opts.metrics;
    this.#authorizer = opts.authorizer;
  }

  adminAccess(
    user: string,
    password: string,
    host: string,
  ): "allowed" | "unauthenticated" | "forbidden" {
    if (!passwordAccepted(this.#view, user, password)) {
      return "unauthenticated";
    }
    const allowed = this.#authorizer.authorize(
      { principal: `User:${user}`, host },
      { type: "cluster", name: CLUSTER_RESOURCE_NAME, operation: "describe" },
    );
    return allowed ? "allowed" : "forbidden";
  }

  get nodeId(): number {
    return this.#node.nodeId;
  }

  get #controller(): ControllerState {
    return this.#node.controller;
  }

  /**
   * Ready when a controller is known and every partition replica hosted
   * here can take writes: it has a live leader and a live majority of its
   * replicas. The majority matters because an idle leader is quiesced and
   * does not notice that it lost its quorum: it would still call itself
   * leader while no write could commit.
   */
  readiness(): Readiness {
    const controllerId = this.#view.controllerId();
    const unavailable: string[] = [];
    for (const { sm } of this.#node.replicas()) {
      const { topic, index } = sm.partition;
      const t = this.#view.topic(topic);
      if (t === undefined) continue;
      const v = this.#view.partitionView(t, index);
      const live = v.replicas.length - v.offline.length;
      if (v.leaderId < 0 || 2 * live <= v.replicas.length) {
        unavailable.push(`${topic}-${index}`);
      }
    }
    unavailable.sort();
    return {
      ready: controllerId >= 0 && unavailable.length === 0,
      controllerId,
      unavailable,
    };
  }

  brokers(): BrokerSummary[] {
    const controllerId = this.#view.controllerId();
    return this.#controller.brokers().map((b) => ({
      nodeId: b.nodeId,
      host: b.kafkaHost,
      kafkaPort: b.kafkaPort,
      status: b.status,
      lastSeenMs: b.lastSeenMs,
      isController: b.nodeId === controllerId,
    }));
  }

  topics(): TopicSummary[] {
    return this.#view.topics().map((t) => ({
      name: t.name,
      topicId: t.topicId,
      partitions: t.partitions,
      replicationFactor: t.replicationFactor,
      internal: this.#internal.has(t.name),
    })).sort((a, b) => a.name.localeCompare(b.name));
  }

  #summary(topic: string, index: number): PartitionSummary | undefined {
    const t = this.#view.topic(topic);
    if (t === undefined || index < 0 || index >= t.partitions) {
      return undefined;
    }
    const v = this.#view.partitionView(t, index);
    return {
      topic,
      partition: index,
      leader: v.leaderId,
      leaderEpoch: v.leaderEpoch,
      replicas: v.replicas,
      isr: v.isr,
      offline: v.offline,
    };
  }

  topic(name: string): TopicDetail | undefined {
    const t = this.#view.topic(name);
    if (t === undefined) return undefined;
    return {
      name: t.name,
      topicId: t.topicId,
      partitions: t.partitions,
      replicationFactor: t.replicationFactor,
      internal: this.#internal.has(t.name),
      configs: t.configs,
      partitionDetails: Array.from(
        { length: t.partitions },
        (_, i) => this.#summary(name, i)!,
      ),
    };
  }

  partition(topic: string, index: number): PartitionDetail | undefined {
    const summary = this.#summary(topic, index);
    if (summary === undefined) return undefined;
    const p = this.#partitions.get(topic, index);
    const quorum = this.#view.quorum(topic, index);
    let replicaLag: Record<string, number> | null = null;
    if ("voters" in quorum) {
      replicaLag = {};
      for (const r of [...quorum.voters, ...quorum.observers]) {
        replicaLag[String(r.replicaId)] = quorum.lastIndex - r.matchIndex;
      }
    }
    return {
      ...summary,
      local: p === undefined ? null : {
        logStartOffset: String(p.log.logStartOffset),
        logEndOffset: String(p.log.logEndOffset),
        highWatermark: String(p.highWatermark),
        sizeBytes: p.log.sizeBytes,
        leading: summary.leader === this.nodeId,
      },
      replicaLag,
    };
  }

  groups(): GroupSummary[] {
    return this.#coordinator.list([]).map((g) => ({
      groupId: g.groupId,
      state: g.groupState ?? "Empty",
      protocolType: g.protocolType,
    }));
  }

  group(groupId: string): GroupLookup {
    const offsetsTopic = this.#view.topic(this.#offsetsTopic);
    // Before the first group, there is no offsets topic and so no group.
    if (offsetsTopic === undefined) {
      return { ok: false, reason: "unknown", coordinator: -1 };
    }
    const d = this.#coordinator.describe(groupId);
    const coordinator = this.#view.partitionView(
      offsetsTopic,
      this.#coordinator.partitionFor(groupId),
    ).leaderId;
    if (d.errorCode !== ErrorCode.NONE) {
      return {
        ok: false,
        reason: d.errorCode === ErrorCode.NOT_COORDINATOR && coordinator >= 0
          ? "elsewhere"
          : "loading",
        coordinator,
      };
    }
    const offsets = groupOffsets(this.#coordinator, this.#partitions, groupId);
    if (d.groupState === "Dead" && offsets.length === 0) {
      return { ok: false, reason: "unknown", coordinator };
    }
    return {
      ok: true,
      group: {
        groupId,
        state: d.groupState === "Dead" ? "Empty" : d.groupState,
        protocolType: d.protocolType,
        members: d.members.map((m) => ({
          memberId: m.memberId,
          clientId: m.clientId,
          clientHost: m.clientHost,
        })),
        offsets,
      },
    };
  }

  metrics(): string {
    return this.#metrics();
  }
}
