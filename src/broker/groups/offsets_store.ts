/**
 * Committed offsets, held in memory per group and changed only through the
 * offsets log: a commit, a deletion or an expiry reaches memory once its
 * records are durable. An offsets partition's offsets are rebuilt by
 * replaying its log (latest record per key wins). The group metadata kept
 * beside them in that log is written and read back here too, so this is
 * the one place that knows the log's records; the groups themselves are
 * the coordinator's.
 */
import { GroupError } from "./group_error.ts";
import type { LogTransaction, OffsetsLog } from "./offsets_log.ts";
import type { TxnResult } from "../transactions/txn_metadata.ts";
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

export interface OffsetsStoreOptions {
  log: OffsetsLog;
  /** The offsets partition that holds a group's records. */
  partitionFor(groupId: string): number;
  /** The clock commits are stamped with and retention runs on. */
  now(): number;
  /** How long committed offsets of an empty group are kept. */
  offsetsRetentionMs: number;
  /** Whether a topic partition exists, for OffsetCommit. */
  partitionExists(topic: string, partition: number): boolean;
}

/** The topics of an OffsetCommit request. */
export type CommitTopics = readonly {
  name: string;
  partitions: readonly {
    partitionIndex: number;
    committedOffset: bigint;
    committedLeaderEpoch: number;
    committedMetadata: string | null;
  }[];
}[];

export type CommitAnswer = {
  name: string;
  partitions: { partitionIndex: number; errorCode: number }[];
}[];

export interface OffsetAnswer {
  partitionIndex: number;
  committedOffset: bigint;
  committedLeaderEpoch: number;
  metadata: string | null;
  errorCode: number;
}

/** One committed offset, as a removal decides on it. */
export interface OffsetEntry {
  groupId: string;
  topic: string;
  partition: number;
  value: CommittedOffset;
}

/** Kafka's offset.metadata.max.bytes. */
const OFFSET_METADATA_MAX_BYTES = 4096;

/** Every partition of a commit answered with one code. */
export function commitError(
  topics: CommitTopics,
  errorCode: number,
): CommitAnswer {
  return topics.map((t) => ({
    name: t.name,
    partitions: t.partitions.map((p) => ({
      partitionIndex: p.partitionIndex,
      errorCode,
    })),
  }));
}

/** The in-memory key of a group's offset: `topic\0partition`. */
function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function splitPartitionKey(key: string): { topic: string; partition: number } {
  const [topic, index] = key.split("\u0000") as [string, string];
  return { topic, partition: Number(index) };
}

function offsetTombstone(groupId: string, key: string) {
  return {
    key: encodeKey({ kind: "offset", groupId, ...splitPartitionKey(key) }),
    value: null,
  };
}

export class OffsetsStore {
  readonly #opts: OffsetsStoreOptions;
  /** group id → `topic\0partition` → committed offset. */
  readonly #offsets = new Map<string, Map<string, CommittedOffset>>();
  /**
   * Offsets committed in transactions that have not ended: producer id →
   * group id → `topic\0partition` → offset. They become committed offsets
   * when the transaction's commit marker reaches the group's offsets
   * partition, and are dropped at its abort marker (KIP-98).
   */
  readonly #pending = new Map<
    bigint,
    Map<string, Map<string, CommittedOffset>>
  >();

  constructor(opts: OffsetsStoreOptions) {
    this.#opts = opts;
  }

  /** Ids of the groups that have committed offsets. */
  groupIds(): IterableIterator<string> {
    return this.#offsets.keys();
  }

  has(groupId: string): boolean {
    return this.#offsets.has(groupId);
  }

  /**
   * Rebuilds one partition's offsets from its log, and answers the
   * metadata of the groups found beside them, by group id.
   */
  load(partition: number): Map<string, StoredGroup> {
    type Latest = Map<string, { key: OffsetsKey; value: Uint8Array }>;
    const latest: Latest = new Map();
    const open = new Map<bigint, Latest>();
    for (const entry of this.#opts.log.read(partition)) {
      if (entry.kind === "marker") {
        const ended = open.get(entry.producerId);
        open.delete(entry.producerId);
        if (entry.result === "commit") {
          for (const [id, e] of ended ?? []) latest.set(id, e);
        }
        continue;
      }
      const { record, producerId } = entry;
      if (record.key === null) continue;
      const key = decodeKey(record.key);
      let into = latest;
      if (producerId !== null) {
        into = open.get(producerId) ?? new Map();
        open.set(producerId, into);
      }
      if (record.value === null) into.delete(keyId(key));
      else into.set(keyId(key), { key, value: record.value });
    }
    for (const [producerId, entries] of open) {
      for (const { key, value } of entries.values()) {
        if (key.kind !== "offset") continue;
        this.#pendingOf(producerId, key.groupId).set(
          partitionKey(key.topic, key.partition),
          decodeOffset(value),
        );
      }
    }
    const groups = new Map<string, StoredGroup>();
    for (const { key, value } of latest.values()) {
      if (key.kind === "offset") {
        this.#offsetsOf(key.groupId).set(
          partitionKey(key.topic, key.partition),
          decodeOffset(value),
        );
      } else {
        groups.set(key.groupId, decodeGroup(value));
      }
    }
    return groups;
  }

  /** Forgets one partition's offsets (this broker stopped leading it). */
  unload(partition: number): void {
    for (const groupId of [...this.#offsets.keys()]) {
      if (this.#opts.partitionFor(groupId) === partition) {
        this.#offsets.delete(groupId);
      }
    }
    this.#endPending(partition, { end: () => {} });
  }

  /**
   * A transaction's marker is durable in an offsets partition: the offsets
   * its producer committed there are committed now, or dropped.
   */
  endTransaction(
    partition: number,
    marker: { producerId: bigint; result: TxnResult },
  ): void {
    this.#endPending(partition, {
      producerId: marker.producerId,
      end: (groupId, offsets) => {
        if (marker.result !== "commit") return;
        const committed = this.#offsetsOf(groupId);
        for (const [key, value] of offsets) committed.set(key, value);
      },
    });
  }

  /**
   * Takes the pending offsets of one partition's groups out (of one
   * producer's transaction, or of all), handing each group's to `end`.
   */
  #endPending(
    partition: number,
    opts: {
      producerId?: bigint;
      end(groupId: string, offsets: Map<string, CommittedOffset>): void;
    },
  ): void {
    for (const [id, groups] of this.#pending) {
      if (opts.producerId !== undefined && id !== opts.producerId) continue;
      for (const [groupId, offsets] of groups) {
        if (this.#opts.partitionFor(groupId) !== partition) continue;
        opts.end(groupId, offsets);
        groups.delete(groupId);
      }
      if (groups.size === 0) this.#pending.delete(id);
    }
  }

  /**
   * Commits a group's offsets; answers once their records are durable.
   * Offsets committed in a transaction (`txn`) wait for its marker.
   */
  async commit(
    groupId: string,
    topics: CommitTopics,
    txn?: LogTransaction,
  ): Promise<CommitAnswer> {
    const nowMs = BigInt(this.#opts.now());
    const writes: {
      topic: string;
      partition: number;
      value: CommittedOffset;
    }[] = [];
    const answers = topics.map((t) => ({
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
          writes.push({
            topic: t.name,
            partition: p.partitionIndex,
            value: {
              offset: p.committedOffset,
              leaderEpoch: p.committedLeaderEpoch,
              metadata: p.committedMetadata,
              commitTimestampMs: nowMs,
            },
          });
        }
        return { partitionIndex: p.partitionIndex, errorCode };
      }),
    }));
    if (writes.length === 0) return answers;
    try {
      await this.#opts.log.append(
        this.#opts.partitionFor(groupId),
        writes.map(({ topic, partition, value }) => ({
          key: encodeKey({ kind: "offset", groupId, topic, partition }),
          value: encodeOffset(value),
        })),
        txn,
      );
    } catch {
      return commitError(topics, GroupError.COORDINATOR_NOT_AVAILABLE);
    }
    const offsets = txn === undefined
      ? this.#offsetsOf(groupId)
      : this.#pendingOf(txn.producerId, groupId);
    for (const w of writes) {
      offsets.set(partitionKey(w.topic, w.partition), w.value);
    }
    return answers;
  }

  /**
   * Committed offsets of a group: of the named topics' partitions, or of
   * every partition it committed when `topics` is null. -1 where none.
   * With `requireStable` (KIP-447), a partition that an open transaction
   * has committed an offset for answers UNSTABLE_OFFSET_COMMIT instead, so
   * a read_committed consumer waits for the outcome rather than starting
   * from an offset about to be replaced.
   */
  fetch(
    groupId: string,
    topics: readonly { name: string; partitionIndexes: number[] }[] | null,
    opts: { requireStable?: boolean } = {},
  ): { name: string; partitions: OffsetAnswer[] }[] {
    const offsets = this.#offsets.get(groupId) ?? new Map();
    const unstable = opts.requireStable ? this.#pendingKeys(groupId) : null;
    const answer = (topic: string, partitionIndex: number): OffsetAnswer => {
      const key = partitionKey(topic, partitionIndex);
      if (unstable?.has(key)) {
        return {
          partitionIndex,
          committedOffset: -1n,
          committedLeaderEpoch: -1,
          metadata: "",
          errorCode: GroupError.UNSTABLE_OFFSET_COMMIT,
        };
      }
      const c = offsets.get(key);
      return {
        partitionIndex,
        committedOffset: c?.offset ?? -1n,
        committedLeaderEpoch: c?.leaderEpoch ?? -1,
        metadata: c === undefined ? "" : c.metadata,
        errorCode: GroupError.NONE,
      };
    };
    if (topics !== null) {
      return topics.map((t) => ({
        name: t.name,
        partitions: t.partitionIndexes.map((i) => answer(t.name, i)),
      }));
    }
    const byTopic = new Map<string, OffsetAnswer[]>();
    for (const key of offsets.keys()) {
      const { topic, partition } = splitPartitionKey(key);
      const list = byTopic.get(topic) ?? [];
      list.push(answer(topic, partition));
      byTopic.set(topic, list);
    }
    return [...byTopic].map(([name, partitions]) => ({ name, partitions }));
  }

  /** Writes a group's metadata; resolves once it is durable. */
  writeGroup(groupId: string, stored: StoredGroup): Promise<void> {
    return this.#opts.log.append(this.#opts.partitionFor(groupId), [{
      key: encodeKey({ kind: "group", groupId }),
      value: encodeGroup(stored),
    }]);
  }

  /** Tombstones a group's metadata and offsets, then forgets its offsets. */
  async deleteGroup(groupId: string): Promise<void> {
    const tombstones = [...(this.#offsets.get(groupId)?.keys() ?? [])].map(
      (key) => offsetTombstone(groupId, key),
    );
    tombstones.push({
      key: encodeKey({ kind: "group", groupId }),
      value: null,
    });
    await this.#opts.log.append(this.#opts.partitionFor(groupId), tombstones);
    this.#offsets.delete(groupId);
  }

  /**
   * Drops committed offsets matching `drop` by writing tombstones; memory
   * follows once they are durable. Answers how many went.
   */
  async remove(drop: (entry: OffsetEntry) => boolean): Promise<number> {
    const byPartition = new Map<number, { groupId: string; key: string }[]>();
    for (const [groupId, offsets] of this.#offsets) {
      for (const [key, value] of offsets) {
        if (!drop({ groupId, ...splitPartitionKey(key), value })) continue;
        const p = this.#opts.partitionFor(groupId);
        const list = byPartition.get(p) ?? [];
        list.push({ groupId, key });
        byPartition.set(p, list);
      }
    }
    let removed = 0;
    for (const [partition, entries] of byPartition) {
      await this.#opts.log.append(
        partition,
        entries.map(({ groupId, key }) => offsetTombstone(groupId, key)),
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

  /**
   * Expires offsets committed longer than the retention ago, of the groups
   * `eligible` names (Kafka's offsets.retention.minutes applies to empty
   * groups only, which the coordinator knows).
   */
  expire(eligible: (groupId: string) => boolean): Promise<number> {
    const cutoff = BigInt(this.#opts.now() - this.#opts.offsetsRetentionMs);
    return this.remove((e) =>
      eligible(e.groupId) && e.value.commitTimestampMs < cutoff
    );
  }

  /** The partitions of a group that open transactions committed to. */
  #pendingKeys(groupId: string): Set<string> {
    const keys = new Set<string>();
    for (const groups of this.#pending.values()) {
      for (const key of groups.get(groupId)?.keys() ?? []) keys.add(key);
    }
    return keys;
  }

  #pendingOf(
    producerId: bigint,
    groupId: string,
  ): Map<string, CommittedOffset> {
    let groups = this.#pending.get(producerId);
    if (groups === undefined) {
      groups = new Map();
      this.#pending.set(producerId, groups);
    }
    let offsets = groups.get(groupId);
    if (offsets === undefined) {
      offsets = new Map();
      groups.set(groupId, offsets);
    }
    return offsets;
  }

  #offsetsOf(groupId: string): Map<string, CommittedOffset> {
    let map = this.#offsets.get(groupId);
    if (map === undefined) {
      map = new Map();
      this.#offsets.set(groupId, map);
    }
    return map;
  }
}
