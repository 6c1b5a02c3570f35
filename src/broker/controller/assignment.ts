/**
 * Replica assignment, modelled on Kafka's rack-unaware assignment
 * (AdminUtils.assignReplicasToBrokersRackUnaware): partition p's first
 * replica, its preferred leader, is broker (p + startIndex) mod n, so
 * leaders go round robin; the followers sit at a shift from the leader that
 * grows every n partitions, so the followers of one leader are spread over
 * the other brokers too. Kafka draws startIndex at random; here the caller
 * passes it (a counter in replicated state), since every replica of the
 * controller must compute the same assignment.
 */
import { assert } from "../../util/mod.ts";

/** Replica lists for partitions firstPartition .. firstPartition + partitionCount - 1. */
export function assignReplicas(options: {
  /** Candidate brokers, sorted ascending, without duplicates. */
  brokerIds: readonly number[];
  replicationFactor: number;
  partitionCount: number;
  /** The first partition's number: partitions added later continue the pattern. */
  firstPartition: number;
  startIndex: number;
}): number[][] {
  const { brokerIds, replicationFactor, partitionCount, firstPartition } =
    options;
  const n = brokerIds.length;
  assert(
    replicationFactor >= 1 && replicationFactor <= n,
    "Replication factor must be between 1 and the broker count",
    { replicationFactor, brokers: n },
  );
  assert(
    brokerIds.every((id, i) => i === 0 || brokerIds[i - 1]! < id),
    "Broker ids must be sorted and unique",
    { brokerIds },
  );
  const start = options.startIndex % n;
  const out: number[][] = [];
  for (let p = firstPartition; p < firstPartition + partitionCount; p++) {
    const first = (p + start) % n;
    const shift = start + Math.floor(p / n);
    const replicas = [brokerIds[first]!];
    for (let j = 0; j < replicationFactor - 1; j++) {
      // Offsets 1 .. n-1 from the leader, taken consecutively (mod n-1), never repeat.
      const offset = 1 + (shift + j) % (n - 1);
      replicas.push(brokerIds[(first + offset) % n]!);
    }
    assert(
      new Set(replicas).size === replicas.length,
      "Assignment placed a broker twice",
      { partition: p, replicas },
    );
    out.push(replicas);
  }
  return out;
}
