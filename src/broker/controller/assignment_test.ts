/**
 * Goal: assignReplicas spreads replicas and leaders evenly and never places
 * a broker twice in one partition. Method: count replicas and leaders per
 * broker for the brief's cases, then sweep small cluster shapes.
 */
import assert from "node:assert/strict";
import { assignReplicas } from "./assignment.ts";

function counts(lists: number[][], pick: (l: number[]) => number[]) {
  const out = new Map<number, number>();
  for (const l of lists) {
    for (const b of pick(l)) out.set(b, (out.get(b) ?? 0) + 1);
  }
  return out;
}

Deno.test("assignReplicas gives each of 3 brokers 6 replicas and 2 leaders for 6 partitions RF 3", () => {
  const lists = assignReplicas({
    brokerIds: [1, 2, 3],
    replicationFactor: 3,
    partitionCount: 6,
    firstPartition: 0,
    startIndex: 0,
  });
  assert.equal(lists.length, 6);
  assert.deepEqual(counts(lists, (l) => l), new Map([[1, 6], [2, 6], [3, 6]]));
  assert.deepEqual(
    counts(lists, (l) => [l[0]!]),
    new Map([[1, 2], [2, 2], [3, 2]]),
  );
  // The second round shifts the followers: each leader's followers swap.
  assert.deepEqual(lists, [
    [1, 2, 3],
    [2, 3, 1],
    [3, 1, 2],
    [1, 3, 2],
    [2, 1, 3],
    [3, 2, 1],
  ]);
});

Deno.test("assignReplicas starts at startIndex and continues from firstPartition", () => {
  const whole = assignReplicas({
    brokerIds: [10, 20, 30, 40],
    replicationFactor: 2,
    partitionCount: 9,
    firstPartition: 0,
    startIndex: 2,
  });
  assert.equal(whole[0]![0], 30);
  const tail = assignReplicas({
    brokerIds: [10, 20, 30, 40],
    replicationFactor: 2,
    partitionCount: 4,
    firstPartition: 5,
    startIndex: 2,
  });
  assert.deepEqual(tail, whole.slice(5));
});

Deno.test("assignReplicas never repeats a broker and balances leaders for every small shape", () => {
  for (let n = 1; n <= 6; n++) {
    const brokerIds = Array.from({ length: n }, (_, i) => i + 1);
    for (let rf = 1; rf <= n; rf++) {
      for (let start = 0; start < n; start++) {
        const lists = assignReplicas({
          brokerIds,
          replicationFactor: rf,
          partitionCount: 3 * n,
          firstPartition: 0,
          startIndex: start,
        });
        for (const l of lists) {
          assert.equal(new Set(l).size, rf, `n=${n} rf=${rf}: ${l}`);
        }
        // 3n partitions: every broker leads exactly 3 and holds exactly 3rf.
        for (const b of brokerIds) {
          assert.equal(counts(lists, (l) => [l[0]!]).get(b), 3);
          assert.equal(counts(lists, (l) => l).get(b), 3 * rf);
        }
      }
    }
  }
});

Deno.test("assignReplicas asserts that the replication factor fits the brokers", () => {
  assert.throws(
    () =>
      assignReplicas({
        brokerIds: [1, 2, 3],
        replicationFactor: 4,
        partitionCount: 1,
        firstPartition: 0,
        startIndex: 0,
      }),
    { name: "AssertionError" },
  );
});
