/**
 * The "consumer" embedded protocol: the bytes a consumer group carries
 * opaquely in JoinGroup metadata (a subscription) and SyncGroup/
 * DescribeGroups assignments, in the layout of Kafka's ConsumerProtocol
 * (ConsumerProtocolSubscription.json, ConsumerProtocolAssignment.json), so
 * raftq's members and Java/kafkajs members can share a group and read each
 * other's assignments. Also the range assignor that a group leader runs.
 */
import { Reader, Writer } from "../protocol/mod.ts";

/** The protocol type of consumer groups and the assignor raftq offers. */
export const CONSUMER_PROTOCOL_TYPE = "consumer";
export const RANGE_ASSIGNOR = "range";

/** Partitions of one topic. */
export interface TopicPartitions {
  topic: string;
  partitions: number[];
}

// Version 0 of both messages: later versions only append fields (owned
// partitions, generation, rack) that a reader of v0 fields may skip.
const VERSION = 0;

/** Subscription metadata for JoinGroup: the topics a member wants. */
export function encodeSubscription(topics: readonly string[]): Uint8Array {
  const w = new Writer();
  w.int16(VERSION);
  w.int32(topics.length);
  for (const topic of topics) w.int16String(topic);
  w.int32(-1); // userData: null
  return w.finish();
}

/** The subscribed topics; later-version fields are ignored. */
export function decodeSubscription(bytes: Uint8Array): string[] {
  const r = new Reader(bytes);
  r.int16();
  return readArray(r, () => readString(r));
}

export function encodeAssignment(
  assignment: readonly TopicPartitions[],
): Uint8Array {
  const w = new Writer();
  w.int16(VERSION);
  w.int32(assignment.length);
  for (const { topic, partitions } of assignment) {
    w.int16String(topic);
    w.int32(partitions.length);
    for (const p of partitions) w.int32(p);
  }
  w.int32(-1); // userData: null
  return w.finish();
}

/**
 * The partitions assigned to a member. Empty bytes (a member that has not
 * been through SyncGroup yet) mean no partitions.
 */
export function decodeAssignment(bytes: Uint8Array): TopicPartitions[] {
  if (bytes.length === 0) return [];
  const r = new Reader(bytes);
  r.int16();
  return readArray(r, () => ({
    topic: readString(r),
    partitions: readArray(r, () => r.int32()),
  }));
}

function readString(r: Reader): string {
  const n = r.int16Length();
  if (n < 0) throw r.error("a topic name is null");
  return r.text(n);
}

function readArray<T>(r: Reader, item: () => T): T[] {
  const n = r.int32Length();
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(item());
  return out;
}

/**
 * Kafka's RangeAssignor: per topic, the members subscribed to it, sorted by
 * member id, each take a contiguous range of partitions; the first
 * `partitions % members` take one more. Topics missing from
 * `partitionCounts` are not assigned. Every member gets an entry.
 */
export function rangeAssign(
  members: ReadonlyMap<string, readonly string[]>,
  partitionCounts: ReadonlyMap<string, number>,
): Map<string, TopicPartitions[]> {
  const result = new Map<string, TopicPartitions[]>();
  for (const memberId of members.keys()) result.set(memberId, []);
  const topics = new Set([...members.values()].flat());
  for (const topic of [...topics].sort()) {
    const count = partitionCounts.get(topic);
    if (count === undefined) continue;
    const subscribers = [...members].filter(([, t]) => t.includes(topic))
      .map(([id]) => id).sort();
    const share = Math.floor(count / subscribers.length);
    const extra = count % subscribers.length;
    let next = 0;
    subscribers.forEach((memberId, i) => {
      const size = share + (i < extra ? 1 : 0);
      if (size === 0) return;
      const partitions = Array.from({ length: size }, (_, k) => next + k);
      next += size;
      result.get(memberId)!.push({ topic, partitions });
    });
  }
  return result;
}
