/**
 * The "consumer" embedded protocol: the bytes a consumer group carries
 * opaquely in JoinGroup metadata (a subscription) and SyncGroup/
 * DescribeGroups assignments, in the layout of Kafka's ConsumerProtocol
 * (ConsumerProtocolSubscription.json, ConsumerProtocolAssignment.json), so
 * raftq's members and Java/kafkajs members can share a group and read each
 * other's assignments. Here, not in the client, because the broker reads
 * subscriptions too (OffsetDelete keeps a subscribed topic's offsets).
 */
import { Reader, Writer } from "./codec.ts";

/** The protocol type of consumer groups. */
export const CONSUMER_PROTOCOL_TYPE = "consumer";

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
