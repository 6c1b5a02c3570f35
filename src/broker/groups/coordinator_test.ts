// GroupCoordinator on a real offsets partition log, with a hand-moved
// clock: offset commits checked against the group's members, and groups and
// offsets rebuilt by replaying the log. The membership state machine itself
// is tested in group_test.ts.
import assert from "node:assert/strict";
import { encodeSubscription, ErrorCode } from "../../protocol/mod.ts";
import { testPartitionManager } from "../testing.ts";
import {
  GroupCoordinator,
  GroupError,
  partitionForGroup,
  type Timers,
} from "./coordinator.ts";
import {
  OFFSETS_TOPIC,
  type OffsetsCluster,
  PartitionOffsetsLog,
} from "./offsets_log.ts";
import { joinNew, joinRequest, ManualTimers, syncAll, V5 } from "./testing.ts";
import { encodeMarkerBatch } from "../transactions/marker_batch.ts";
import type { TxnResult } from "../transactions/txn_metadata.ts";
import type { PartitionManager } from "../partitions.ts";

const PARTITIONS = 3;

/** The ids of the test topics; a test re-creates one by changing its id. */
const topicIds = new Map<string, string>();

/** Where a test coordinator's `owns` differs from owning every partition. */
type Ownership = { owns?: (partition: number) => boolean };

function openCoordinator(
  dir: string,
  timers: Timers,
  ownership: Ownership = {},
) {
  const partitions = testPartitionManager(dir);
  for (let i = 0; i < PARTITIONS; i++) {
    partitions.openPartition({ name: OFFSETS_TOPIC, configs: {} }, i);
  }
  for (let i = 0; i < 2; i++) {
    partitions.openPartition({ name: "t", configs: {} }, i);
  }
  partitions.openPartition({ name: "u", configs: {} }, 0);
  // One replica that leads every partition: each write is applied and
  // visible at once, as a one-voter group's commit makes it.
  const cluster: OffsetsCluster = {
    leading: (topic, index) => {
      const partition = partitions.get(topic, index);
      return partition === undefined
        ? { ok: false, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }
        : { ok: true, partition };
    },
    write: (partition, records) => {
      const outcome = partitions.append(partition, records);
      if (outcome.ok) {
        partition.advanceHighWatermark(partition.log.logEndOffset);
      }
      return Promise.resolve(outcome);
    },
  };
  const coordinator = new GroupCoordinator({
    log: new PartitionOffsetsLog(cluster, { partitionCount: PARTITIONS }),
    timers,
    initialRebalanceDelayMs: 0,
    offsetsRetentionMs: 60_000,
    partitionExists: (t, i) => partitions.get(t, i) !== undefined,
    topicId: (t) => topicIds.get(t),
    ...ownership,
  });
  for (let i = 0; i < PARTITIONS; i++) coordinator.load(i);
  return {
    coordinator,
    partitions,
    close() {
      coordinator.close();
      partitions.closeAll();
    },
  };
}

async function withCoordinator(
  fn: (c: GroupCoordinator) => Promise<void>,
  ownership: Ownership = {},
) {
  const dir = await Deno.makeTempDir({ prefix: "raftq-groups-" });
  const timers = new ManualTimers();
  const { coordinator, close } = openCoordinator(dir, timers, ownership);
  try {
    await fn(coordinator);
  } finally {
    close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("GroupCoordinator.commit rejects unknown members and old generations", async () => {
  await withCoordinator(async (c) => {
    const a = await joinNew(c);
    await syncAll(c, [a]);
    const commit = (memberId: string, generationId: number) =>
      c.commit({
        groupId: "g",
        generationId,
        memberId,
        groupInstanceId: null,
        topics: [{
          name: "t",
          partitions: [{
            partitionIndex: 0,
            committedOffset: 5n,
            committedLeaderEpoch: -1,
            committedMetadata: null,
          }],
        }],
      }).then((t) => t[0]!.partitions[0]!.errorCode);
    assert.equal(await commit("nobody", 1), GroupError.UNKNOWN_MEMBER_ID);
    assert.equal(await commit(a.memberId, 0), GroupError.ILLEGAL_GENERATION);
    assert.equal(await commit(a.memberId, 1), GroupError.NONE);
    assert.equal(
      c.heartbeat({
        groupId: "nope",
        generationId: 1,
        memberId: "x",
        groupInstanceId: null,
      }),
      GroupError.UNKNOWN_MEMBER_ID,
    );
    const fetched = c.fetchOffsets("g", [{
      name: "t",
      partitionIndexes: [0, 1],
    }]);
    assert.deepEqual(
      fetched.topics[0]!.partitions.map((p) => p.committedOffset),
      [5n, -1n],
    );
  });
});

Deno.test("GroupCoordinator refuses a generation's commits to a topic deleted or re-created since it formed, rebalances its members, and takes the next generation's", async () => {
  topicIds.set("t", "first").set("u", "only");
  try {
    await withCoordinator(async (c) => {
      const subscribing = (memberId = "") => ({
        ...joinRequest({ memberId }),
        protocols: [{
          name: "range",
          metadata: encodeSubscription(["t", "u"]),
        }],
      });
      const formGeneration = async () => {
        const probe = await c.join(subscribing(), V5);
        const member = await c.join(subscribing(probe.memberId), V5);
        await syncAll(c, [member]);
        return member;
      };
      const commit = (generationId: number, memberId: string) =>
        c.commit({
          groupId: "g",
          generationId,
          memberId,
          groupInstanceId: null,
          topics: ["t", "u"].map((name) => ({
            name,
            partitions: [{
              partitionIndex: 0,
              committedOffset: 7n,
              committedLeaderEpoch: -1,
              committedMetadata: null,
            }],
          })),
        }).then((topics) =>
          topics.map((t) => [t.name, t.partitions[0]!.errorCode])
        );
      const a = await formGeneration();
      assert.deepEqual(await commit(a.generationId!, a.memberId), [
        ["t", GroupError.NONE],
        ["u", GroupError.NONE],
      ]);
      // "t" is deleted and re-created: the generation's assignment names
      // the old topic, whose positions must not become the new one's.
      topicIds.set("t", "second");
      await c.topicDeleted("t");
      assert.equal(c.describe("g").groupState, "PreparingRebalance");
      assert.deepEqual(await commit(a.generationId!, a.memberId), [
        ["t", GroupError.UNKNOWN_TOPIC_OR_PARTITION],
        ["u", GroupError.NONE],
      ]);
      assert.deepEqual(
        c.fetchOffsets("g", [{ name: "t", partitionIndexes: [0] }])
          .topics[0]!.partitions[0]!.committedOffset,
        -1n,
      );
      c.leave("g", [{ memberId: a.memberId, groupInstanceId: null }]);
      const b = await formGeneration();
      assert.deepEqual(await commit(b.generationId!, b.memberId), [
        ["t", GroupError.NONE],
        ["u", GroupError.NONE],
      ]);
    });
  } finally {
    topicIds.clear();
  }
});

Deno.test("GroupCoordinator rebuilds offsets and groups by replaying the offsets log", async () => {
  const dir = await Deno.makeTempDir({ prefix: "raftq-groups-" });
  const timers = new ManualTimers();
  try {
    const first = openCoordinator(dir, timers);
    const a = await joinNew(first.coordinator);
    await syncAll(first.coordinator, [a]);
    await first.coordinator.commit({
      groupId: "g",
      generationId: 1,
      memberId: a.memberId,
      groupInstanceId: null,
      topics: [{
        name: "t",
        partitions: [{
          partitionIndex: 1,
          committedOffset: 42n,
          committedLeaderEpoch: 0,
          committedMetadata: "m",
        }],
      }],
    });
    // A standalone commit for another group, then its deletion.
    await first.coordinator.commit({
      groupId: "gone",
      generationId: -1,
      memberId: "",
      groupInstanceId: null,
      topics: [{
        name: "t",
        partitions: [{
          partitionIndex: 0,
          committedOffset: 1n,
          committedLeaderEpoch: -1,
          committedMetadata: null,
        }],
      }],
    });
    assert.equal(await first.coordinator.deleteGroup("gone"), GroupError.NONE);
    first.close();

    const second = openCoordinator(dir, timers);
    try {
      const c = second.coordinator;
      const offsets = c.fetchOffsets("g", null);
      assert.equal(offsets.topics[0]!.partitions[0]!.committedOffset, 42n);
      assert.equal(offsets.topics[0]!.partitions[0]!.metadata, "m");
      const d = c.describe("g");
      assert.equal(d.groupState, "Stable");
      assert.deepEqual(d.members.map((m) => m.memberId), [a.memberId]);
      assert.equal(
        c.heartbeat({
          groupId: "g",
          generationId: 1,
          memberId: a.memberId,
          groupInstanceId: null,
        }),
        GroupError.NONE,
      );
      assert.deepEqual(c.list([]).map((g) => g.groupId), ["g"]);
      assert.equal(await c.deleteGroup("gone"), GroupError.GROUP_ID_NOT_FOUND);
      assert.equal(await c.deleteGroup("g"), GroupError.NON_EMPTY_GROUP);
    } finally {
      second.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("GroupCoordinator.deleteOffsets keeps a live consumer group's subscribed topics, and its deletions survive a replay", async () => {
  const dir = await Deno.makeTempDir({ prefix: "raftq-groups-" });
  const timers = new ManualTimers();
  const commitStandalone = (c: GroupCoordinator) =>
    c.commit({
      groupId: "g",
      generationId: -1,
      memberId: "",
      groupInstanceId: null,
      topics: [["t", 0], ["t", 1], ["u", 0]].map(([name, index]) => ({
        name: name as string,
        partitions: [{
          partitionIndex: index as number,
          committedOffset: 7n,
          committedLeaderEpoch: -1,
          committedMetadata: null,
        }],
      })),
    });
  const committed = (c: GroupCoordinator) =>
    c.fetchOffsets("g", null).topics.flatMap((t) =>
      t.partitions.map((p) => `${t.name}-${p.partitionIndex}`)
    ).sort();
  const codes = (
    answer: Awaited<ReturnType<GroupCoordinator["deleteOffsets"]>>,
  ) =>
    answer.topics.flatMap((t) =>
      t.partitions.map((p) => [`${t.name}-${p.partitionIndex}`, p.errorCode])
    );
  try {
    const first = openCoordinator(dir, timers);
    const c = first.coordinator;
    await commitStandalone(c);
    const subscribing = {
      ...joinRequest({}),
      protocols: [{ name: "range", metadata: encodeSubscription(["t"]) }],
    };
    const probe = await c.join(subscribing, V5);
    const member = await c.join(
      { ...subscribing, memberId: probe.memberId },
      V5,
    );
    await syncAll(c, [member]);
    assert.equal(c.describe("g").groupState, "Stable");
    assert.deepEqual(
      codes(
        await c.deleteOffsets("g", [
          { name: "t", partitions: [{ partitionIndex: 0 }] },
          { name: "u", partitions: [{ partitionIndex: 0 }] },
          { name: "t", partitions: [{ partitionIndex: 9 }] },
        ]),
      ),
      [
        ["t-0", GroupError.GROUP_SUBSCRIBED_TO_TOPIC],
        ["u-0", GroupError.NONE],
        ["t-9", GroupError.UNKNOWN_TOPIC_OR_PARTITION],
      ],
    );
    assert.deepEqual(committed(c), ["t-0", "t-1"]);
    assert.equal(
      (await c.deleteOffsets("nobody", [])).errorCode,
      GroupError.GROUP_ID_NOT_FOUND,
    );
    // Once the group is empty, nothing protects its offsets.
    c.leave("g", [{ memberId: member.memberId, groupInstanceId: null }]);
    assert.equal(c.describe("g").groupState, "Empty");
    assert.deepEqual(
      codes(
        await c.deleteOffsets("g", [{
          name: "t",
          partitions: [{ partitionIndex: 0 }, { partitionIndex: 1 }],
        }]),
      ),
      [["t-0", GroupError.NONE], ["t-1", GroupError.NONE]],
    );
    assert.deepEqual(committed(c), []);
    first.close();
    // A coordinator that replays the log (after a restart, or a new
    // leader of the offsets partition) finds the offsets gone.
    const second = openCoordinator(dir, timers);
    try {
      assert.deepEqual(committed(second.coordinator), []);
    } finally {
      second.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("GroupCoordinator answers NOT_COORDINATOR for a partition it does not own", async () => {
  const mine = partitionForGroup("g", PARTITIONS);
  await withCoordinator(async (c) => {
    const joined = await c.join(joinRequest({}), V5);
    assert.equal(joined.errorCode, GroupError.NOT_COORDINATOR);
    assert.equal(c.describe("g").errorCode, GroupError.NOT_COORDINATOR);
  }, { owns: (p) => p !== mine });
});

Deno.test("GroupCoordinator.unload answers as loading until load rebuilds the group", async () => {
  await withCoordinator(async (c) => {
    const a = await joinNew(c);
    await syncAll(c, [a]);
    const partition = c.partitionFor("g");
    c.unload(partition);
    assert.equal(c.isLoaded("g"), false);
    assert.equal(
      c.fetchOffsets("g", null).errorCode,
      GroupError.COORDINATOR_LOAD_IN_PROGRESS,
    );
    const beat = () =>
      c.heartbeat({
        groupId: "g",
        generationId: 1,
        memberId: a.memberId,
        groupInstanceId: null,
      });
    assert.equal(beat(), GroupError.COORDINATOR_NOT_AVAILABLE);
    assert.deepEqual(c.list([]), []);
    c.load(partition);
    assert.equal(c.describe("g").groupState, "Stable");
    assert.equal(beat(), GroupError.NONE);
  });
});

Deno.test("partitionForGroup matches Kafka's abs(String.hashCode) mod N", () => {
  // "hello".hashCode() is 99162322 in Java.
  assert.equal(partitionForGroup("hello", 50), 99162322 % 50);
  // A negative hash: "polygenelubricants".hashCode() is Integer.MIN_VALUE.
  assert.equal(partitionForGroup("polygenelubricants", 7), 0);
});

Deno.test("GroupCoordinator.commitInTransaction applies offsets at the commit marker, also when read back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "raftq-groups-" });
  const timers = new ManualTimers();
  const partition = partitionForGroup("g", PARTITIONS);
  const commit = (
    c: GroupCoordinator,
    producerId: bigint,
    offset: bigint,
    member = { memberId: "", generationId: -1 },
  ) =>
    c.commitInTransaction({
      groupId: "g",
      ...member,
      groupInstanceId: null,
      topics: [{
        name: "t",
        partitions: [{
          partitionIndex: 0,
          committedOffset: offset,
          committedLeaderEpoch: -1,
          committedMetadata: null,
        }],
      }],
    }, { producerId, producerEpoch: 0 }).then((a) =>
      a[0]!.partitions[0]!.errorCode
    );
  const offset = (c: GroupCoordinator) =>
    c.fetchOffsets("g", [{ name: "t", partitionIndexes: [0] }]).topics[0]!
      .partitions[0]!.committedOffset;
  // What the transaction coordinator does: a durable marker, then the hook.
  const end = (
    at: { coordinator: GroupCoordinator; partitions: PartitionManager },
    producerId: bigint,
    result: TxnResult,
  ) => {
    const p = at.partitions.get(OFFSETS_TOPIC, partition)!;
    const marker = encodeMarkerBatch(
      { producerId, producerEpoch: 0, result, coordinatorEpoch: 0 },
      { timestampMs: 0n },
    );
    assert.ok(at.partitions.append(p, marker).ok);
    p.advanceHighWatermark(p.log.logEndOffset);
    at.coordinator.endTransaction(partition, { producerId, result });
  };
  try {
    const first = openCoordinator(dir, timers);
    const c = first.coordinator;
    assert.equal(await commit(c, 77n, 10n), GroupError.NONE);
    assert.equal(offset(c), -1n, "not before the transaction commits");
    end(first, 77n, "commit");
    assert.equal(offset(c), 10n);
    assert.equal(await commit(c, 78n, 20n), GroupError.NONE);
    end(first, 78n, "abort");
    assert.equal(offset(c), 10n);
    assert.equal(await commit(c, 79n, 30n), GroupError.NONE);
    // A producer naming a member must name one of the group's.
    assert.equal(
      await commit(c, 80n, 40n, { memberId: "m", generationId: 1 }),
      GroupError.UNKNOWN_MEMBER_ID,
    );
    first.close();

    const second = openCoordinator(dir, timers);
    try {
      assert.equal(offset(second.coordinator), 10n);
      end(second, 79n, "commit");
      assert.equal(offset(second.coordinator), 30n);
    } finally {
      second.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
