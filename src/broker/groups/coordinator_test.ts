// GroupCoordinator's classic group protocol, driven by a hand-moved clock:
// join/sync/heartbeat/leave, session expiry, static members, offset commit
// errors, and rebuilding state by replaying the real offsets partition log.
import assert from "node:assert/strict";
import type { JoinGroupRequest } from "../../protocol/mod.ts";
import { Flusher } from "../../storage/mod.ts";
import { testPartitionManager } from "../testing.ts";
import { SingleNodeView } from "../single_node.ts";
import { TopicStore } from "../topics.ts";
import {
  GroupCoordinator,
  GroupError,
  partitionForGroup,
  type Timers,
} from "./coordinator.ts";
import { OFFSETS_TOPIC, PartitionOffsetsLog } from "./offsets_log.ts";

/** Timers that fire only when the test moves time forward. */
class ManualTimers implements Timers {
  #now = 1_000_000;
  #next = 1;
  readonly #due = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.#now;
  }
  set(fn: () => void, delayMs: number): number {
    const id = this.#next++;
    this.#due.set(id, { at: this.#now + delayMs, fn });
    return id;
  }
  clear(id: number): void {
    this.#due.delete(id);
  }
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      const next = [...this.#due].filter(([, t]) => t.at <= until).sort((
        a,
        b,
      ) => a[1].at - b[1].at)[0];
      if (next === undefined) break;
      this.#due.delete(next[0]);
      this.#now = next[1].at;
      next[1].fn();
      await settle();
    }
    this.#now = until;
    await settle();
  }
}

/** Lets resolved promises (durable appends, waiters) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 0));
}

const PARTITIONS = 3;

function openCoordinator(dir: string, timers: Timers) {
  const flusher = new Flusher();
  const partitions = testPartitionManager(dir, {
    visibleOnAppend: false,
    flusher,
  });
  const topics = TopicStore.open(dir);
  // Reopening the same directory finds the topics already there.
  const topic = (name: string, count: number) =>
    topics.get(name) ?? topics.create({
      name,
      partitions: count,
      replicationFactor: 1,
      configs: {},
      liveBrokers: 1,
    });
  partitions.openTopic(topic(OFFSETS_TOPIC, PARTITIONS));
  partitions.openTopic(topic("t", 2));
  const cluster = new SingleNodeView({
    self: { nodeId: 1, host: "localhost", port: 9092 },
    clusterId: "test",
    topics,
    partitions,
    internal: new Set([OFFSETS_TOPIC]),
    onDeleted: () => {},
  });
  const coordinator = new GroupCoordinator({
    log: new PartitionOffsetsLog(cluster, PARTITIONS),
    timers,
    initialRebalanceDelayMs: 0,
    offsetsRetentionMs: 60_000,
    partitionExists: (t, i) => partitions.get(t, i) !== undefined,
  });
  for (let i = 0; i < PARTITIONS; i++) coordinator.load(i);
  return {
    coordinator,
    close() {
      coordinator.close();
      flusher.close();
      partitions.closeAll();
    },
  };
}

function joinRequest(
  opts: { memberId?: string; instanceId?: string; protocol?: string },
): JoinGroupRequest {
  return {
    groupId: "g",
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 30_000,
    memberId: opts.memberId ?? "",
    groupInstanceId: opts.instanceId ?? null,
    protocolType: "consumer",
    protocols: [{
      name: opts.protocol ?? "range",
      metadata: new Uint8Array([1]),
    }],
    reason: null,
  };
}

const V5 = { clientId: "c", clientHost: "h", version: 5 };

async function withCoordinator(
  fn: (c: GroupCoordinator, timers: ManualTimers) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "raftq-groups-" });
  const timers = new ManualTimers();
  const { coordinator, close } = openCoordinator(dir, timers);
  try {
    await fn(coordinator, timers);
  } finally {
    close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Joins a new dynamic member (with the MEMBER_ID_REQUIRED round trip). */
async function joinNew(c: GroupCoordinator) {
  const first = await c.join(joinRequest({}), V5);
  assert.equal(first.errorCode, GroupError.MEMBER_ID_REQUIRED);
  return c.join(joinRequest({ memberId: first.memberId }), V5);
}

async function syncAll(
  c: GroupCoordinator,
  members: { memberId: string; generationId?: number; leader: string }[],
) {
  const generationId = members[0]!.generationId!;
  const leader = members[0]!.leader;
  const answers = members.map((m) =>
    c.sync({
      groupId: "g",
      generationId,
      memberId: m.memberId,
      groupInstanceId: null,
      protocolType: null,
      protocolName: null,
      assignments: m.memberId === leader
        ? members.map((x) => ({
          memberId: x.memberId,
          assignment: new TextEncoder().encode(`for ${x.memberId}`),
        }))
        : [],
    })
  );
  return await Promise.all(answers);
}

Deno.test("GroupCoordinator.join asks a v4+ member for its id, then forms a generation", async () => {
  await withCoordinator(async (c) => {
    const joined = await joinNew(c);
    assert.equal(joined.errorCode, GroupError.NONE);
    assert.equal(joined.generationId, 1);
    assert.equal(joined.leader, joined.memberId);
    assert.equal(joined.protocolName, "range");
    assert.equal(joined.members.length, 1);
    assert.equal(c.describe("g").groupState, "CompletingRebalance");
    const [synced] = await syncAll(c, [joined]);
    assert.equal(synced!.errorCode, GroupError.NONE);
    assert.equal(
      new TextDecoder().decode(synced!.assignment),
      `for ${joined.memberId}`,
    );
    assert.equal(c.describe("g").groupState, "Stable");
  });
});

Deno.test("GroupCoordinator rebalances when a second member joins and heartbeats see it", async () => {
  await withCoordinator(async (c, timers) => {
    const a = await joinNew(c);
    await syncAll(c, [a]);
    const first = await c.join(joinRequest({}), V5);
    const bJoin = c.join(joinRequest({ memberId: first.memberId }), V5);
    await settle();
    const hb = {
      groupId: "g",
      generationId: 1,
      memberId: a.memberId,
      groupInstanceId: null,
    };
    assert.equal(c.heartbeat(hb), GroupError.REBALANCE_IN_PROGRESS);
    const aJoin = c.join(joinRequest({ memberId: a.memberId }), V5);
    const [a2, b2] = await Promise.all([aJoin, bJoin]);
    assert.equal(a2.generationId, 2);
    assert.equal(b2.generationId, 2);
    assert.equal(a2.leader, a.memberId, "the leader stays the leader");
    assert.equal(a2.members.length, 2);
    assert.equal(b2.members.length, 0);
    await syncAll(c, [a2, b2]);
    assert.equal(c.heartbeat({ ...hb, generationId: 2 }), GroupError.NONE);
    assert.equal(c.heartbeat(hb), GroupError.ILLEGAL_GENERATION);
    await timers.advance(1);
  });
});

Deno.test("GroupCoordinator expires a silent member and rebalances the rest", async () => {
  await withCoordinator(async (c, timers) => {
    const a = await joinNew(c);
    await syncAll(c, [a]);
    const first = await c.join(joinRequest({}), V5);
    const bJoin = c.join(joinRequest({ memberId: first.memberId }), V5);
    const aJoin = c.join(joinRequest({ memberId: a.memberId }), V5);
    const [a2, b2] = await Promise.all([aJoin, bJoin]);
    await syncAll(c, [a2, b2]);
    // Only b keeps heartbeating; a's session (10 s) runs out.
    const beat = () =>
      c.heartbeat({
        groupId: "g",
        generationId: 2,
        memberId: b2.memberId,
        groupInstanceId: null,
      });
    for (let i = 0; i < 4; i++) {
      await timers.advance(3000);
      if (i < 3) assert.equal(beat(), GroupError.NONE);
    }
    assert.equal(beat(), GroupError.REBALANCE_IN_PROGRESS);
    const b3 = await c.join(joinRequest({ memberId: b2.memberId }), V5);
    assert.equal(b3.generationId, 3);
    assert.equal(b3.leader, b2.memberId);
    assert.deepEqual(b3.members.map((m) => m.memberId), [b2.memberId]);
    assert.equal(
      c.heartbeat({
        groupId: "g",
        generationId: 3,
        memberId: a2.memberId,
        groupInstanceId: null,
      }),
      GroupError.UNKNOWN_MEMBER_ID,
    );
  });
});

Deno.test("GroupCoordinator.leave empties the group and bumps the generation", async () => {
  await withCoordinator(async (c) => {
    const a = await joinNew(c);
    await syncAll(c, [a]);
    const left = c.leave("g", [{
      memberId: a.memberId,
      groupInstanceId: null,
    }]);
    assert.equal(left.members[0]!.errorCode, GroupError.NONE);
    const d = c.describe("g");
    assert.equal(d.groupState, "Empty");
    assert.equal(d.members.length, 0);
    const again = c.leave("g", [{
      memberId: a.memberId,
      groupInstanceId: null,
    }]);
    assert.equal(again.members[0]!.errorCode, GroupError.UNKNOWN_MEMBER_ID);
  });
});

Deno.test("GroupCoordinator lets a static member rejoin without a rebalance and fences its old id", async () => {
  await withCoordinator(async (c) => {
    const a = await c.join(joinRequest({ instanceId: "i-1" }), V5);
    assert.equal(a.errorCode, GroupError.NONE, "static members skip 79");
    await syncAll(c, [a]);
    const again = await c.join(joinRequest({ instanceId: "i-1" }), V5);
    assert.equal(again.errorCode, GroupError.NONE);
    assert.notEqual(again.memberId, a.memberId);
    assert.equal(again.generationId, a.generationId, "no rebalance");
    assert.equal(c.describe("g").groupState, "Stable");
    assert.equal(
      c.heartbeat({
        groupId: "g",
        generationId: a.generationId!,
        memberId: a.memberId,
        groupInstanceId: "i-1",
      }),
      GroupError.UNKNOWN_MEMBER_ID,
    );
  });
});

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

Deno.test("partitionForGroup matches Kafka's abs(String.hashCode) mod N", () => {
  // "hello".hashCode() is 99162322 in Java.
  assert.equal(partitionForGroup("hello", 50), 99162322 % 50);
  // A negative hash: "polygenelubricants".hashCode() is Integer.MIN_VALUE.
  assert.equal(partitionForGroup("polygenelubricants", 7), 0);
});
