/**
 * The range assignor that a consumer group's leader runs over the members'
 * subscriptions; the consumer protocol's bytes are src/protocol's.
 */
import type { TopicPartitions } from "../protocol/mod.ts";

export {
  CONSUMER_PROTOCOL_TYPE,
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
  type TopicPartitions,
} from "../protocol/mod.ts";

/** The assignor raftq offers. */
export const RANGE_ASSIGNOR = "range";

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
