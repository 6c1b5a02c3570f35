// Group, one consumer group's state machine, on its own: no log or
// partition, a `persist` that records what it is handed, and a clock moved
// by hand. Join/sync/heartbeat/leave, session expiry and static members.
import assert from "node:assert/strict";
import { Group } from "./group.ts";
import { GroupError } from "./group_error.ts";
import type { StoredGroup } from "./offsets_records.ts";
import {
  joinNew,
  joinRequest,
  ManualTimers,
  settle,
  syncAll,
  V5,
} from "./testing.ts";

function newGroup(timers = new ManualTimers()) {
  const persisted: StoredGroup[] = [];
  const group = new Group({
    id: "g",
    timers,
    initialRebalanceDelayMs: 0,
    persist: (stored) => {
      persisted.push(stored);
      return Promise.resolve();
    },
    topicId: () => undefined,
  });
  return { group, timers, persisted };
}

/** A stable generation of one member, a, and a second one's join begun. */
async function secondJoining(group: Group) {
  const a = await joinNew(group);
  await syncAll(group, [a]);
  const first = await group.join(joinRequest({}), V5);
  const bJoin = group.join(joinRequest({ memberId: first.memberId }), V5);
  return { a, bJoin };
}

Deno.test("Group.join asks a v4+ member for its id, then forms a generation", async () => {
  const { group } = newGroup();
  const joined = await joinNew(group);
  assert.equal(joined.errorCode, GroupError.NONE);
  assert.equal(joined.generationId, 1);
  assert.equal(joined.leader, joined.memberId);
  assert.equal(joined.protocolName, "range");
  assert.equal(joined.members.length, 1);
  assert.equal(group.state, "CompletingRebalance");
  const [synced] = await syncAll(group, [joined]);
  assert.equal(synced!.errorCode, GroupError.NONE);
  assert.equal(
    new TextDecoder().decode(synced!.assignment),
    `for ${joined.memberId}`,
  );
  assert.equal(group.state, "Stable");
});

Deno.test("Group rebalances when a second member joins and heartbeats see it", async () => {
  const { group, timers } = newGroup();
  const { a, bJoin } = await secondJoining(group);
  await settle();
  const hb = { generationId: 1, memberId: a.memberId, groupInstanceId: null };
  assert.equal(group.heartbeat(hb), GroupError.REBALANCE_IN_PROGRESS);
  const aJoin = group.join(joinRequest({ memberId: a.memberId }), V5);
  const [a2, b2] = await Promise.all([aJoin, bJoin]);
  assert.equal(a2.generationId, 2);
  assert.equal(b2.generationId, 2);
  assert.equal(a2.leader, a.memberId, "the leader stays the leader");
  assert.equal(a2.members.length, 2);
  assert.equal(b2.members.length, 0);
  await syncAll(group, [a2, b2]);
  assert.equal(group.heartbeat({ ...hb, generationId: 2 }), GroupError.NONE);
  assert.equal(group.heartbeat(hb), GroupError.ILLEGAL_GENERATION);
  await timers.advance(1);
});

Deno.test("Group expires a silent member and rebalances the rest", async () => {
  const { group, timers } = newGroup();
  const { a, bJoin } = await secondJoining(group);
  const aJoin = group.join(joinRequest({ memberId: a.memberId }), V5);
  const [a2, b2] = await Promise.all([aJoin, bJoin]);
  await syncAll(group, [a2, b2]);
  // Only b keeps heartbeating; a's session (10 s) runs out.
  const beat = () =>
    group.heartbeat({
      generationId: 2,
      memberId: b2.memberId,
      groupInstanceId: null,
    });
  for (let i = 0; i < 4; i++) {
    await timers.advance(3000);
    if (i < 3) assert.equal(beat(), GroupError.NONE);
  }
  assert.equal(beat(), GroupError.REBALANCE_IN_PROGRESS);
  const b3 = await group.join(joinRequest({ memberId: b2.memberId }), V5);
  assert.equal(b3.generationId, 3);
  assert.equal(b3.leader, b2.memberId);
  assert.deepEqual(b3.members.map((m) => m.memberId), [b2.memberId]);
  assert.equal(
    group.heartbeat({
      generationId: 3,
      memberId: a2.memberId,
      groupInstanceId: null,
    }),
    GroupError.UNKNOWN_MEMBER_ID,
  );
});

Deno.test("Group.leave empties the group and bumps the generation", async () => {
  const { group, persisted } = newGroup();
  const a = await joinNew(group);
  await syncAll(group, [a]);
  const left = group.leave([{ memberId: a.memberId, groupInstanceId: null }]);
  assert.equal(left[0]!.errorCode, GroupError.NONE);
  const d = group.describe();
  assert.equal(d.groupState, "Empty");
  assert.equal(d.members.length, 0);
  // Written twice: when generation 1 became stable, and when it emptied.
  assert.deepEqual(
    persisted.map((p) => [p.generationId, p.members.length]),
    [[1, 1], [2, 0]],
  );
  const again = group.leave([{ memberId: a.memberId, groupInstanceId: null }]);
  assert.equal(again[0]!.errorCode, GroupError.UNKNOWN_MEMBER_ID);
});

Deno.test("Group lets a static member rejoin without a rebalance and fences its old id", async () => {
  const { group } = newGroup();
  const a = await group.join(joinRequest({ instanceId: "i-1" }), V5);
  assert.equal(a.errorCode, GroupError.NONE, "static members skip 79");
  await syncAll(group, [a]);
  const again = await group.join(joinRequest({ instanceId: "i-1" }), V5);
  assert.equal(again.errorCode, GroupError.NONE);
  assert.notEqual(again.memberId, a.memberId);
  assert.equal(again.generationId, a.generationId, "no rebalance");
  assert.equal(group.state, "Stable");
  assert.equal(
    group.heartbeat({
      generationId: a.generationId!,
      memberId: a.memberId,
      groupInstanceId: "i-1",
    }),
    GroupError.UNKNOWN_MEMBER_ID,
  );
});
