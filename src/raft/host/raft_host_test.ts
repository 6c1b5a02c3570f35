/**
 * RaftHost with real WALs in temp dirs: three hosts in one process, over
 * real loopback TCP or over MemoryTransport where a test needs to cut links.
 * Checks that groups elect, commit and apply the same entries in the same
 * order everywhere, survive restarts, quiesce when idle, and catch up a
 * lagging replica by snapshot after compaction; and that hosts exchange
 * application messages by node id, with peers added later by setPeers.
 */
import assert from "node:assert/strict";
import type { Entry, NodeId } from "../core/mod.ts";
import { MessageType, NotLeaderError } from "../core/mod.ts";
import { until } from "../testing/mod.ts";
import { Wal } from "../wal/mod.ts";
import {
  type Address,
  MemoryNetwork,
  type Transport,
} from "../transport/mod.ts";
import { RaftHost, type RaftHostOptions } from "./raft_host.ts";
import type { StateMachine } from "./state_machine.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Appends every applied payload to a list; snapshots are the list as JSON. */
class ListMachine implements StateMachine {
  items: string[] = [];
  apply(entries: Entry[]): unknown[] {
    return entries.map((e) => {
      this.items.push(dec.decode(e.data));
      return this.items.length;
    });
  }
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify(this.items));
  }
  restore(data: Uint8Array): void {
    this.items = JSON.parse(dec.decode(data));
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

interface Cluster {
  hosts: Map<NodeId, RaftHost>;
  dirs: Map<NodeId, string>;
  options(id: NodeId, transport?: Transport): RaftHostOptions;
  /** Starts host `id` (replacing any before it) with these options. */
  start(
    id: NodeId,
    opts?:
      & { transport?: Transport }
      & Partial<
        Omit<RaftHostOptions, "transport">
      >,
  ): Promise<RaftHost>;
}

function cluster(ids: NodeId[]): Cluster {
  const peers = new Map<NodeId, Address>(
    ids.map((id) => [id, { hostname: "127.0.0.1", port: freePort() }]),
  );
  const dirs = new Map(
    ids.map((id) => [id, Deno.makeTempDirSync({ prefix: `raft-host-${id}-` })]),
  );
  const c: Cluster = {
    hosts: new Map(),
    dirs,
    options: (id, transport) => ({
      nodeId: id,
      dataDir: dirs.get(id)!,
      listen: peers.get(id)!,
      peers,
      tickMs: 10,
      electionTicks: 10,
      heartbeatTicks: 2,
      checkQuorum: true,
      preVote: true,
      maxSizePerMsg: 1 << 20,
      maxInflightMsgs: 64,
      maxInMemLogBytes: 1 << 20,
      ...(transport === undefined ? {} : { transport }),
    }),
    async start(id, opts = {}) {
      const { transport, ...overrides } = opts;
      const h = new RaftHost({ ...c.options(id, transport), ...overrides });
      await h.start();
      c.hosts.set(id, h);
      return h;
    },
  };
  return c;
}

/** The node that every given host agrees leads `groupId`, or 0. */
function agreedLeader(hosts: Iterable<RaftHost>, groupId: number): NodeId {
  const seen = new Set([...hosts].map((h) => h.leaderOf(groupId)));
  const [leader] = seen;
  return seen.size === 1 && leader !== undefined ? leader : 0;
}

async function stopAll(c: Cluster): Promise<void> {
  for (const h of c.hosts.values()) await h.stop();
  for (const d of c.dirs.values()) Deno.removeSync(d, { recursive: true });
}

Deno.test("RaftHost over TCP elects, commits and applies in the same order on all hosts", async () => {
  const ids = [1, 2, 3];
  const c = cluster(ids);
  const machines = new Map<string, ListMachine>();
  for (const id of ids) {
    const h = await c.start(id);
    for (const groupId of [1, 2]) {
      const sm = new ListMachine();
      machines.set(`${id}/${groupId}`, sm);
      h.startGroup(groupId, { voters: ids, stateMachine: sm });
    }
  }
  try {
    for (const groupId of [1, 2]) {
      await until(
        `leader of group ${groupId}`,
        () => agreedLeader(c.hosts.values(), groupId) !== 0,
      );
      const leader = c.hosts.get(agreedLeader(c.hosts.values(), groupId))!;
      const results = await Promise.all(
        Array.from(
          { length: 50 },
          (_, i) => leader.propose(groupId, enc.encode(`g${groupId}-${i}`)),
        ),
      );
      // Results come from the leader's own apply, in proposal order.
      assert.deepEqual(
        results.map((r) => r.result),
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      // A linearizable read point covers everything acknowledged before it.
      assert.ok((await leader.readIndex(groupId)) >= 50);
      const follower = ids.find((id) => id !== leader.nodeId)!;
      await assert.rejects(
        c.hosts.get(follower)!.propose(groupId, enc.encode("x")),
        (err: unknown) =>
          err instanceof NotLeaderError && err.leaderHint === leader.nodeId,
      );
    }
    // Leadership moves on request, and the new leader takes proposals.
    const from = agreedLeader(c.hosts.values(), 1);
    const to = ids.find((id) => id !== from)!;
    c.hosts.get(from)!.transferLeader(1, to);
    await until("transfer", () => agreedLeader(c.hosts.values(), 1) === to);
    await c.hosts.get(to)!.propose(1, enc.encode("g1-50"));
    for (const groupId of [1, 2]) {
      const count = groupId === 1 ? 51 : 50;
      const expected = Array.from(
        { length: count },
        (_, i) => `g${groupId}-${i}`,
      );
      await until(
        "all replicas applied",
        () =>
          ids.every((id) =>
            machines.get(`${id}/${groupId}`)!.items.length === count
          ),
      );
      for (const id of ids) {
        assert.deepEqual(machines.get(`${id}/${groupId}`)!.items, expected);
      }
    }
  } finally {
    await stopAll(c);
  }
});

Deno.test("RaftHost resumes groups from its WAL after a restart", async () => {
  const ids = [1, 2, 3];
  const c = cluster(ids);
  const net = new MemoryNetwork();
  for (const id of ids) {
    const h = await c.start(id, { transport: net.transport(id) });
    h.startGroup(7, { voters: ids, stateMachine: new ListMachine() });
  }
  try {
    await until("leader", () => agreedLeader(c.hosts.values(), 7) !== 0);
    const leaderId = agreedLeader(c.hosts.values(), 7);
    for (let i = 0; i < 20; i++) {
      await c.hosts.get(leaderId)!.propose(7, enc.encode(`a${i}`));
    }

    const restartId = ids.find((id) => id !== leaderId)!;
    await c.hosts.get(restartId)!.stop();
    const again = await c.start(restartId, {
      transport: net.transport(restartId),
    });
    assert.deepEqual(again.recoveredGroupIds(), [7]);
    const sm = new ListMachine();
    // Founding voters come from the WAL: an empty list here must not matter.
    again.startGroup(7, { voters: [], stateMachine: sm });
    await c.hosts.get(leaderId)!.propose(7, enc.encode("after"));
    await until("restarted replica caught up", () => sm.items.length === 21);
    assert.deepEqual(sm.items, [
      ...Array.from({ length: 20 }, (_, i) => `a${i}`),
      "after",
    ]);
  } finally {
    await stopAll(c);
  }
});

Deno.test("RaftHost catches up a lagging replica by snapshot once the log was compacted", async () => {
  const ids = [1, 2, 3];
  const c = cluster(ids);
  const net = new MemoryNetwork();
  const machines = new Map<NodeId, ListMachine>();
  for (const id of ids) {
    const h = await c.start(id, {
      transport: net.transport(id),
      maxInMemLogBytes: 2048,
    });
    const sm = new ListMachine();
    machines.set(id, sm);
    h.startGroup(3, { voters: ids, stateMachine: sm });
  }
  try {
    await until("leader", () => agreedLeader(c.hosts.values(), 3) !== 0);
    const leaderId = agreedLeader(c.hosts.values(), 3);
    const lagging = ids.find((id) => id !== leaderId)!;
    for (const id of ids) if (id !== lagging) net.cut(id, lagging);
    const payload = "p".repeat(200);
    for (let i = 0; i < 60; i++) {
      await c.hosts.get(leaderId)!.propose(3, enc.encode(`${i}${payload}`));
    }
    assert.equal(machines.get(lagging)!.items.length, 0);
    net.heal();
    await until(
      "snapshot delivered",
      () => machines.get(lagging)!.items.length === 60,
    );
    assert.deepEqual(
      machines.get(lagging)!.items,
      machines.get(leaderId)!.items,
    );
  } finally {
    await stopAll(c);
  }
});

Deno.test("RaftHost.awaitReplicas answers true once every voter holds an index and false on timeout while one is cut off", async () => {
  const ids = [1, 2, 3];
  const c = cluster(ids);
  const net = new MemoryNetwork();
  for (const id of ids) {
    const h = await c.start(id, { transport: net.transport(id) });
    h.startGroup(4, { voters: ids, stateMachine: new ListMachine() });
  }
  try {
    await until("leader", () => agreedLeader(c.hosts.values(), 4) !== 0);
    const leaderId = agreedLeader(c.hosts.values(), 4);
    const leader = c.hosts.get(leaderId)!;
    const follower = c.hosts.get(ids.find((id) => id !== leaderId)!)!;
    const { index } = await leader.propose(4, enc.encode("all"));
    assert.equal(await leader.awaitReplicas(4, index, 3, 5_000), true);
    assert.equal(await follower.awaitReplicas(4, index, 1, 5_000), false);
    const cut = ids.find((id) => id !== leaderId)!;
    net.cut(leaderId, cut);
    const second = await leader.propose(4, enc.encode("two of three"));
    assert.equal(await leader.awaitReplicas(4, second.index, 2, 5_000), true);
    const started = Date.now();
    assert.equal(await leader.awaitReplicas(4, second.index, 3, 300), false);
    assert.ok(Date.now() - started >= 290);
    // Healed before the timeout, the wait ends as the cut voter catches up.
    const pending = leader.awaitReplicas(4, second.index, 3, 10_000);
    net.heal();
    assert.equal(await pending, true);
  } finally {
    await stopAll(c);
  }
});

Deno.test("RaftHost snapshots a group once it applied snapshotEntries entries since its last snapshot", async () => {
  const c = cluster([1, 2]);
  try {
    // Two one-voter groups: host 1 snapshots by entry count, host 2 only by bytes.
    const counted = await c.start(1, { snapshotEntries: 10 });
    const bytesOnly = await c.start(2);
    counted.startGroup(1, { voters: [1], stateMachine: new ListMachine() });
    bytesOnly.startGroup(2, { voters: [2], stateMachine: new ListMachine() });
    await until("leaders", () => counted.leaderOf(1) === 1);
    await until("leaders", () => bytesOnly.leaderOf(2) === 2);
    for (let i = 0; i < 25; i++) {
      await counted.propose(1, enc.encode(`a${i}`));
      await bytesOnly.propose(2, enc.encode(`b${i}`));
    }
    // Index 1 is the leader's no-op; the proposals are 2..26.
    assert.deepEqual(counted.logStatus(1), {
      snapshotIndex: 20,
      firstIndex: 21,
      lastIndex: 26,
      applied: 26,
    });
    assert.deepEqual(bytesOnly.logStatus(2), {
      snapshotIndex: 0,
      firstIndex: 1,
      lastIndex: 26,
      applied: 26,
    });
  } finally {
    await stopAll(c);
  }
});

Deno.test("RaftHost snapshots an idle group whose entries hold the WAL's oldest segment, so the WAL stays a few segments long", async () => {
  const c = cluster([1]);
  try {
    const host = await c.start(1, { walSegmentBytes: 4096 });
    const idle = new ListMachine();
    host.startGroup(1, { voters: [1], stateMachine: idle });
    host.startGroup(2, { voters: [1], stateMachine: new ListMachine() });
    await until("leaders", () => host.leaderOf(1) === 1);
    await until("leaders", () => host.leaderOf(2) === 1);
    await host.propose(1, enc.encode("once"));
    const walDir = `${c.dirs.get(1)}/wal`;
    const segments = () => [...Deno.readDirSync(walDir)].length;
    const payload = new Uint8Array(1024);
    // Within maxInMemLogBytes: no byte bound snapshots either group.
    for (let i = 0; i < 100; i++) await host.propose(2, payload);
    for (let i = 0; i < 200 && segments() > 4; i++) {
      await host.propose(2, payload);
    }
    assert.ok(segments() <= 4, `${segments()} WAL segments`);
    assert.ok(host.logStatus(1)!.snapshotIndex >= 2);
    assert.deepEqual(idle.items, ["once"]);
  } finally {
    await stopAll(c);
  }
});

Deno.test("RaftHost.groupStats reports term, commit, applied and snapshots, and onFsync times each WAL sync", async () => {
  const c = cluster([1]);
  try {
    const synced: number[] = [];
    const host = await c.start(1, {
      snapshotEntries: 10,
      onFsync: (seconds) => synced.push(seconds),
    });
    host.startGroup(1, { voters: [1], stateMachine: new ListMachine() });
    await until("leader", () => host.leaderOf(1) === 1);
    for (let i = 0; i < 25; i++) await host.propose(1, enc.encode(`x${i}`));
    const [stats] = host.groupStats();
    assert.deepEqual(stats, {
      groupId: 1,
      leader: 1,
      term: stats!.term,
      commitIndex: 26,
      applied: 26,
      followerLagMax: 0,
      // One per snapshotEntries (10) applied entries, 26 applied in all.
      snapshots: 2,
    });
    assert.ok(stats!.term >= 1);
    // Each proposal waited for its own durable write.
    assert.ok(synced.length >= 25, `${synced.length} syncs`);
    assert.ok(synced.every((s) => s >= 0 && s < 10));
  } finally {
    await stopAll(c);
  }
});

/**
 * Starts hosts 1 and 2 of `c` with `opts`, both in group 1 and host 1 alone
 * in group 2; resolves once both groups lead, with group 1's leader and
 * host 1 (group 2's).
 */
async function sharedAndSoleGroups(
  c: Cluster,
  opts: Partial<Omit<RaftHostOptions, "transport">>,
): Promise<{ leader: RaftHost; host: RaftHost }> {
  const net = new MemoryNetwork();
  for (const id of [1, 2]) {
    const h = await c.start(id, { transport: net.transport(id), ...opts });
    h.startGroup(1, { voters: [1, 2], stateMachine: new ListMachine() });
  }
  const host = c.hosts.get(1)!;
  host.startGroup(2, { voters: [1], stateMachine: new ListMachine() });
  await until("leaders", () => agreedLeader(c.hosts.values(), 1) !== 0);
  await until("sole leader", () => host.leaderOf(2) === 1);
  return { leader: c.hosts.get(agreedLeader(c.hosts.values(), 1))!, host };
}

Deno.test("RaftHost keeps compactionOverheadEntries entries behind a snapshot for a follower, and none in a group without one", async () => {
  const c = cluster([1, 2]);
  try {
    const { leader, host } = await sharedAndSoleGroups(c, {
      snapshotEntries: 10,
      compactionOverheadEntries: 4,
    });
    // Index 1 is each leader's no-op; the proposals are 2..26.
    for (let i = 0; i < 25; i++) {
      await leader.propose(1, enc.encode(`a${i}`));
      await host.propose(2, enc.encode(`b${i}`));
    }
    assert.deepEqual(leader.logStatus(1), {
      snapshotIndex: 20,
      firstIndex: 17,
      lastIndex: 26,
      applied: 26,
    });
    assert.deepEqual(host.logStatus(2), {
      snapshotIndex: 20,
      firstIndex: 21,
      lastIndex: 26,
      applied: 26,
    });
  } finally {
    await stopAll(c);
  }
});

Deno.test("RaftHost snapshots a group without other members once its log passes an eighth of maxInMemLogBytes, one with them at the whole", async () => {
  const c = cluster([1, 2]);
  try {
    const { leader, host } = await sharedAndSoleGroups(c, {
      maxInMemLogBytes: 64 * 1024,
    });
    // 40 KiB each: past an eighth (8 KiB), within the whole (64 KiB).
    const payload = new Uint8Array(1024);
    for (let i = 0; i < 40; i++) {
      await leader.propose(1, payload);
      await host.propose(2, payload);
    }
    assert.equal(leader.logStatus(1)!.snapshotIndex, 0);
    const sole = host.logStatus(2)!;
    assert.ok(sole.snapshotIndex > 0);
    assert.ok(
      (sole.lastIndex - sole.firstIndex + 1) * 1024 <= 9 * 1024,
      `${sole.lastIndex - sole.firstIndex + 1} entries kept`,
    );
  } finally {
    await stopAll(c);
  }
});

/** A ListMachine that counts the snapshots it was restored from. */
class RestoreCountingMachine extends ListMachine {
  restores = 0;
  override restore(data: Uint8Array): void {
    this.restores++;
    super.restore(data);
  }
}

/** How a follower that missed 8 entries catches up after the leader snapshotted every 4. */
async function catchUpAfterSnapshots(
  compactionOverheadEntries: number,
): Promise<{ restores: number; items: string[] }> {
  const ids = [1, 2, 3];
  const c = cluster(ids);
  const net = new MemoryNetwork();
  const machines = new Map<NodeId, RestoreCountingMachine>();
  for (const id of ids) {
    const h = await c.start(id, {
      transport: net.transport(id),
      snapshotEntries: 4,
      compactionOverheadEntries,
    });
    const sm = new RestoreCountingMachine();
    machines.set(id, sm);
    h.startGroup(5, { voters: ids, stateMachine: sm });
  }
  try {
    await until("leader", () => agreedLeader(c.hosts.values(), 5) !== 0);
    const leaderId = agreedLeader(c.hosts.values(), 5);
    const leader = c.hosts.get(leaderId)!;
    const lagging = ids.find((id) => id !== leaderId)!;
    for (const id of ids) if (id !== lagging) net.cut(id, lagging);
    for (let i = 0; i < 8; i++) await leader.propose(5, enc.encode(`${i}`));
    assert.ok(leader.logStatus(5)!.snapshotIndex >= 8);
    net.heal();
    const sm = machines.get(lagging)!;
    await until("lagging follower caught up", () => sm.items.length === 8);
    return { restores: sm.restores, items: sm.items };
  } finally {
    await stopAll(c);
  }
}

Deno.test("RaftHost with compactionOverheadEntries catches up a follower slightly behind from the log, not a snapshot", async () => {
  const expected = Array.from({ length: 8 }, (_, i) => `${i}`);
  assert.deepEqual(await catchUpAfterSnapshots(20), {
    restores: 0,
    items: expected,
  });
  assert.deepEqual(await catchUpAfterSnapshots(0), {
    restores: 1,
    items: expected,
  });
});

Deno.test("RaftHost rejects negative or fractional snapshotEntries and compactionOverheadEntries", () => {
  const c = cluster([1]);
  for (
    const bad of [
      { snapshotEntries: -1 },
      { compactionOverheadEntries: 1.5 },
    ]
  ) {
    assert.throws(() => new RaftHost({ ...c.options(1), ...bad }), RangeError);
  }
  Deno.removeSync(c.dirs.get(1)!, { recursive: true });
});

/** A ListMachine that refuses snapshots while `ready` is false. */
class GatedMachine extends ListMachine {
  ready = false;
  snapshots = 0;
  override snapshot(): Uint8Array {
    this.snapshots++;
    return super.snapshot();
  }
  snapshotReady(): boolean {
    return this.ready;
  }
}

Deno.test("RaftHost keeps the log of a group whose state machine is not ready to snapshot", async () => {
  const c = cluster([1, 2]);
  const net = new MemoryNetwork();
  const gated = new GatedMachine();
  for (const id of [1, 2]) {
    const h = await c.start(id, {
      transport: net.transport(id),
      maxInMemLogBytes: 2048,
    });
    h.startGroup(4, {
      voters: [1, 2],
      stateMachine: id === 1 ? gated : new ListMachine(),
    });
  }
  try {
    const host = c.hosts.get(1)!;
    await until("leader", () => agreedLeader(c.hosts.values(), 4) !== 0);
    if (host.leaderOf(4) !== 1) {
      c.hosts.get(2)!.transferLeader(4, 1);
      await until("host 1 leads", () => host.leaderOf(4) === 1);
    }
    const payload = "p".repeat(200);
    for (let i = 0; i < 30; i++) {
      await host.propose(4, enc.encode(`${i}${payload}`));
    }
    assert.equal(gated.snapshots, 0);
    const status = host.replication(4)!;
    assert.equal(status.matchIndexes.get(1), status.lastIndex);
    await until(
      "follower matched",
      () => host.replication(4)?.matchIndexes.get(2) === status.lastIndex,
    );
    assert.equal(c.hosts.get(2)!.replication(4), undefined);
    gated.ready = true;
    await host.propose(4, enc.encode("last"));
    assert.equal(gated.snapshots, 1);
  } finally {
    await stopAll(c);
  }
});

/**
 * A ListMachine whose durable state is its list as of `durableIndex`,
 * which the test moves, as a partition's background sync would.
 */
class DurableMachine extends ListMachine {
  durableIndex = 0;
  /** Calls of snapshot(), the present state. */
  presentSnapshots = 0;
  /** Entry index of each item. */
  #indexes: number[] = [];
  override apply(entries: Entry[]): unknown[] {
    for (const e of entries) this.#indexes.push(e.index);
    return super.apply(entries);
  }
  override snapshot(): Uint8Array {
    this.presentSnapshots++;
    return super.snapshot();
  }
  durableSnapshot(after: number): { index: number; data: Uint8Array } | null {
    if (this.durableIndex <= after) return null;
    const kept = this.#indexes.filter((i) => i <= this.durableIndex).length;
    const items = this.items.slice(0, kept);
    return {
      index: this.durableIndex,
      data: enc.encode(JSON.stringify(items)),
    };
  }
  override restore(data: Uint8Array): void {
    super.restore(data);
    this.#indexes = this.items.map(() => 0);
  }
}

Deno.test("RaftHost compacts behind a state machine's durable snapshot, never asking for the present state, and replays the entries after it on restart", async () => {
  const c = cluster([1]);
  try {
    const opts = { snapshotEntries: 10, compactionOverheadEntries: 0 };
    let host = await c.start(1, opts);
    const sm = new DurableMachine();
    host.startGroup(1, { voters: [1], stateMachine: sm });
    await until("leader", () => host.leaderOf(1) === 1);
    // Index 1 is the leader's no-op; the proposals are 2..13.
    for (let i = 0; i < 12; i++) await host.propose(1, enc.encode(`v${i}`));
    assert.equal(host.logStatus(1)!.snapshotIndex, 0, "nothing durable yet");
    sm.durableIndex = 7;
    await host.propose(1, enc.encode("v12"));
    assert.deepEqual(host.logStatus(1), {
      snapshotIndex: 7,
      firstIndex: 8,
      lastIndex: 14,
      applied: 14,
    });
    assert.equal(sm.presentSnapshots, 0);
    await host.stop();
    host = await c.start(1, opts);
    const restarted = new DurableMachine();
    host.startGroup(1, { voters: [1], stateMachine: restarted });
    const all = Array.from({ length: 13 }, (_, i) => `v${i}`);
    await until("replayed", () => restarted.items.length === all.length);
    assert.deepEqual(restarted.items, all);
  } finally {
    await stopAll(c);
  }
});

Deno.test("RaftHost takes the present state instead of a durable snapshot from before the last membership change", async () => {
  const c = cluster([1]);
  const net = new MemoryNetwork();
  try {
    const host = await c.start(1, {
      transport: net.transport(1),
      snapshotEntries: 10,
      compactionOverheadEntries: 0,
    });
    const sm = new DurableMachine();
    host.startGroup(2, { voters: [1], stateMachine: sm });
    await until("leader", () => host.leaderOf(2) === 1);
    for (let i = 0; i < 3; i++) await host.propose(2, enc.encode(`a${i}`));
    // The first member added makes the founding snapshot, of the present state.
    await host.changeMembership(2, { type: "addLearner", nodeId: 2 });
    const founding = host.logStatus(2)!.snapshotIndex;
    assert.ok(founding > 0);
    assert.equal(sm.presentSnapshots, 1);
    for (let i = 0; i < 3; i++) await host.propose(2, enc.encode(`b${i}`));
    sm.durableIndex = host.logStatus(2)!.applied;
    const change = await host.changeMembership(2, {
      type: "addLearner",
      nodeId: 3,
    });
    for (let i = 0; i < 10; i++) await host.propose(2, enc.encode(`c${i}`));
    // The durable state is newer than the snapshot but older than the
    // change: a snapshot of it would carry the wrong membership.
    assert.ok(sm.durableIndex > founding && sm.durableIndex < change.index);
    assert.equal(host.logStatus(2)!.snapshotIndex, founding + 10);
    assert.equal(sm.presentSnapshots, 2);
    assert.deepEqual(host.membership(2), { voters: [1], learners: [2, 3] });
  } finally {
    await stopAll(c);
  }
});

/**
 * A node joins a group that never snapshotted: it must start from the
 * snapshot the leader takes before adding it, never from replaying the log
 * (which lacks the founding voters), whatever the compaction overhead keeps.
 */
async function joinNeverCompacted(compactionOverheadEntries: number) {
  const ids = [1, 2, 3];
  const c = cluster(ids);
  const net = new MemoryNetwork();
  const machines = new Map<NodeId, ListMachine>();
  for (const id of ids) {
    const h = await c.start(id, {
      transport: net.transport(id),
      compactionOverheadEntries,
    });
    if (id !== 3) {
      const sm = new ListMachine();
      machines.set(id, sm);
      h.startGroup(6, { voters: [1, 2], stateMachine: sm });
    }
  }
  try {
    const founders = [c.hosts.get(1)!, c.hosts.get(2)!];
    await until("leader", () => agreedLeader(founders, 6) !== 0);
    const first = agreedLeader(founders, 6);
    const leader = c.hosts.get(first)!;
    await leader.propose(6, enc.encode("before"));
    await leader.changeMembership(6, { type: "addLearner", nodeId: 3 });
    // The other founder, which only applied the change, leads when node 3
    // shows up.
    const second = first === 1 ? 2 : 1;
    await until(
      "the other founder applied the change",
      () => c.hosts.get(second)!.membership(6)?.learners.length === 1,
    );
    leader.transferLeader(6, second);
    await until("leadership moved", () => agreedLeader(founders, 6) === second);
    const joiner = new ListMachine();
    machines.set(3, joiner);
    c.hosts.get(3)!.startGroup(6, {
      voters: [],
      stateMachine: joiner,
      join: true,
    });
    const next = c.hosts.get(second)!;
    // A new leader takes no membership change until what it inherited is
    // applied (as etcd raft does): an entry of its own applied shows that.
    await next.propose(6, enc.encode("after"));
    await next.changeMembership(6, { type: "addVoter", nodeId: 3 });
    await until(
      "node 3 applied the change",
      () => c.hosts.get(3)!.membership(6)?.voters.length === 3,
    );
    assert.deepEqual(c.hosts.get(3)!.membership(6), {
      voters: [1, 2, 3],
      learners: [],
    });
    await until(
      "node 3 applied everything",
      () => (machines.get(3)?.items.length ?? 0) >= 2,
    );
    assert.deepEqual(machines.get(3)!.items, machines.get(second)!.items);
  } finally {
    await stopAll(c);
  }
}

Deno.test("RaftHost gives a node added to a never-compacted group the founding membership, from whichever member leads", async () => {
  await joinNeverCompacted(0);
});

Deno.test("RaftHost gives a joining node the founding snapshot even when compactionOverheadEntries would keep the log behind it", async () => {
  await joinNeverCompacted(100);
});

Deno.test("RaftHost quiesces an idle group and wakes it when the leader's host goes silent", async () => {
  const ids = [1, 2, 3];
  const c = cluster(ids);
  const net = new MemoryNetwork();
  for (const id of ids) {
    const h = await c.start(id, { transport: net.transport(id) });
    h.startGroup(5, { voters: ids, stateMachine: new ListMachine() });
  }
  try {
    await until("leader", () => agreedLeader(c.hosts.values(), 5) !== 0);
    const leaderId = agreedLeader(c.hosts.values(), 5);
    await c.hosts.get(leaderId)!.propose(5, enc.encode("one"));
    await until(
      "all quiesced",
      () => ids.every((id) => c.hosts.get(id)!.isQuiesced(5)),
    );
    // A proposal wakes the leader and commits as usual.
    await c.hosts.get(leaderId)!.propose(5, enc.encode("two"));
    await until(
      "quiesced again",
      () => ids.every((id) => c.hosts.get(id)!.isQuiesced(5)),
    );

    await c.hosts.get(leaderId)!.stop();
    const rest = ids.filter((id) => id !== leaderId).map((id) =>
      c.hosts.get(id)!
    );
    await until("new leader", () => {
      const l = agreedLeader(rest, 5);
      return l !== 0 && l !== leaderId;
    });
  } finally {
    await stopAll(c);
  }
});

Deno.test("RaftHost.holdCampaigns keeps a host from taking leadership, even by transfer, while it still votes", async () => {
  const ids = [1, 2, 3];
  const c = cluster(ids);
  const net = new MemoryNetwork();
  for (const id of ids) {
    const h = await c.start(id, { transport: net.transport(id) });
    h.startGroup(7, { voters: ids, stateMachine: new ListMachine() });
  }
  try {
    await until("leader", () => agreedLeader(c.hosts.values(), 7) !== 0);
    const leaderId = agreedLeader(c.hosts.values(), 7);
    const [heldId, otherId] = ids.filter((id) => id !== leaderId) as [
      NodeId,
      NodeId,
    ];
    const held = c.hosts.get(heldId)!;
    held.holdCampaigns();
    // A group started after the hold is held too.
    for (const id of ids) {
      c.hosts.get(id)!.startGroup(8, {
        voters: ids,
        stateMachine: new ListMachine(),
      });
    }
    held.campaign(8);
    c.hosts.get(leaderId)!.transferLeader(7, heldId);
    // Three election timeouts (10 ticks of 10 ms): a transfer would be done.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(agreedLeader(c.hosts.values(), 7), leaderId);
    assert.notEqual(held.leaderOf(8), heldId);
    // The held host's vote still elects a successor when the leader goes.
    await c.hosts.get(leaderId)!.stop();
    await until(
      "the other host leads",
      () => agreedLeader([held, c.hosts.get(otherId)!], 7) === otherId,
    );
  } finally {
    await stopAll(c);
  }
});

/** `inner`, with its Raft sends going through `send`. */
function withSend(inner: Transport, send: Transport["send"]): Transport {
  return {
    start: (h) => inner.start(h),
    setPeers: (p) => inner.setPeers(p),
    flush: (now) => inner.flush(now),
    lastHeardMs: (p) => inner.lastHeardMs(p),
    close: () => inner.close(),
    reloadTls: (tls) => inner.reloadTls(tls),
    sendApp: (to, data) => inner.sendApp(to, data),
    send,
  };
}

/** Reads what is durable in a host's WAL right now, from a copy of its files. */
function durableState(dataDir: string, groupId: number) {
  const copy = Deno.makeTempDirSync();
  for (const e of Deno.readDirSync(`${dataDir}/wal`)) {
    Deno.copyFileSync(`${dataDir}/wal/${e.name}`, `${copy}/${e.name}`);
  }
  const { wal, groups } = Wal.open(copy);
  wal.close();
  Deno.removeSync(copy, { recursive: true });
  const g = groups.get(groupId);
  const last = g?.entries[g.entries.length - 1]?.index ??
    g?.snapshot?.meta.index ?? 0;
  return { hardState: g?.hardState, lastIndex: last };
}

for (
  const [how, backgroundSyncBytes] of [
    ["blocking the loop", Infinity],
    ["in the background", 0],
  ] as const
) {
  Deno.test(`RaftHost syncing ${how} makes votes and appended entries durable before it acknowledges them`, () =>
    durableBeforeAcknowledged(backgroundSyncBytes));
}

async function durableBeforeAcknowledged(backgroundSyncBytes: number) {
  const ids = [1, 2, 3];
  const c = cluster(ids);
  const net = new MemoryNetwork();
  const checked = { votes: 0, appends: 0 };
  for (const id of ids) {
    const inner = net.transport(id);
    // Every acknowledgement leaving this host is checked against the WAL on disk at that moment.
    const checking = withSend(inner, (to, env) => {
      const m = env.message;
      if (m.type === MessageType.VoteResp && !m.reject) {
        const d = durableState(c.dirs.get(id)!, env.groupId);
        assert.equal(
          d.hardState?.vote,
          m.to,
          "vote sent before it was durable",
        );
        assert.equal(d.hardState?.term, m.term);
        checked.votes++;
      }
      if (
        m.type === MessageType.AppResp && !m.reject && checked.appends < 40
      ) {
        const d = durableState(c.dirs.get(id)!, env.groupId);
        assert.ok(
          d.lastIndex >= m.index,
          `ack of ${m.index} sent with only ${d.lastIndex} durable`,
        );
        checked.appends++;
      }
      return inner.send(to, env);
    });
    const h = await c.start(id, { transport: checking, backgroundSyncBytes });
    h.startGroup(1, { voters: ids, stateMachine: new ListMachine() });
  }
  try {
    await until("leader", () => agreedLeader(c.hosts.values(), 1) !== 0);
    const leader = c.hosts.get(agreedLeader(c.hosts.values(), 1))!;
    for (let i = 0; i < 10; i++) await leader.propose(1, enc.encode(`d${i}`));
    assert.ok(checked.votes >= 1);
    assert.ok(checked.appends >= 10);
  } finally {
    await stopAll(c);
  }
}

Deno.test("RaftHost syncing in the background answers a sole voter's entry only after an fsync that followed it", async () => {
  const c = cluster([1]);
  let fsyncs = 0;
  const h = await c.start(1, {
    backgroundSyncBytes: 0,
    onFsync: () => fsyncs++,
  });
  const machine = new ListMachine();
  h.startGroup(1, { voters: [1], stateMachine: machine });
  try {
    await until("leader", () => h.leaderOf(1) === 1);
    // Waves of proposals, so that later turns run while a sync is under way.
    for (let wave = 0; wave < 10; wave++) {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => {
          const before = fsyncs;
          return h.propose(1, enc.encode(`s${wave}.${i}`)).then(({ index }) => {
            assert.ok(fsyncs > before, `${index} answered before any fsync`);
            const durable = durableState(c.dirs.get(1)!, 1).lastIndex;
            assert.ok(index <= durable, `${index} answered, ${durable} in WAL`);
          });
        }),
      );
      await new Promise((r) => setTimeout(r, wave % 3));
    }
    assert.equal(machine.items.length, 100);
  } finally {
    await stopAll(c);
  }
});

Deno.test("RaftHost exchanges app messages over TCP both ways and to itself, and reaches peers added by setPeers", async () => {
  const c = cluster([1, 2, 3]);
  const o1 = c.options(1);
  // Host 1 starts knowing only host 2; host 3 is learned later.
  const h1 = new RaftHost({
    ...o1,
    peers: new Map([...o1.peers].filter(([id]) => id !== 3)),
  });
  const h2 = new RaftHost(c.options(2));
  const h3 = new RaftHost(c.options(3));
  const got = new Map<NodeId, [NodeId, string][]>([[1, []], [2, []], [3, []]]);
  const unsubscribe = new Map<NodeId, () => void>();
  for (const [id, h] of [[1, h1], [2, h2], [3, h3]] as const) {
    c.hosts.set(id, h);
    await h.start();
    unsubscribe.set(
      id,
      h.onAppMessage((from, data) =>
        got.get(id)!.push([from, dec.decode(data)])
      ),
    );
  }
  /** Retries while the connection is being opened; true is returned once, so one message is sent. */
  const send = (from: RaftHost, to: NodeId, text: string) =>
    until(
      `${from.nodeId} connected to ${to}`,
      () => from.sendApp(to, enc.encode(text)),
    );
  try {
    assert.equal(h1.sendApp(99, enc.encode("x")), false, "unknown peer");
    assert.equal(h1.sendApp(3, enc.encode("x")), false, "not yet known");
    assert.throws(
      () => h1.sendApp(2, new Uint8Array(16 * 1024 * 1024 + 1)),
      RangeError,
    );

    await send(h1, 2, "request");
    await until("2 got the request", () => got.get(2)!.length === 1);
    await send(h2, 1, "response");
    await until("1 got the response", () => got.get(1)!.length === 1);
    assert.equal(h1.sendApp(1, enc.encode("self")), true);
    assert.equal(got.get(1)!.length, 1, "self delivery is asynchronous");
    await until("1 got its own", () => got.get(1)!.length === 2);
    assert.deepEqual(got.get(1), [[2, "response"], [1, "self"]]);
    assert.deepEqual(got.get(2), [[1, "request"]]);

    h1.setPeers(o1.peers);
    await send(h1, 3, "late peer");
    await until("3 got it", () => got.get(3)!.length === 1);
    assert.deepEqual(got.get(3), [[1, "late peer"]]);

    unsubscribe.get(1)!();
    assert.equal(h1.sendApp(1, enc.encode("unheard")), true);
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(got.get(1)!.length, 2, "no delivery after unsubscribe");
  } finally {
    await stopAll(c);
  }
  assert.equal(h1.sendApp(2, enc.encode("x")), false, "stopped host");
});

Deno.test("RaftHost answers a deposed leader's proposal that its successor committed with success, not an unknown outcome", async () => {
  const ids = [1, 2, 3];
  const c = cluster(ids);
  const net = new MemoryNetwork();
  let dropAcks = false;
  for (const id of ids) {
    const inner = net.transport(id);
    // The followers' acknowledgements can be lost, so the leader never commits on its own.
    const lossy = withSend(
      inner,
      (to, env) =>
        dropAcks && env.message.type === MessageType.AppResp
          ? true
          : inner.send(to, env),
    );
    const h = await c.start(id, { transport: lossy });
    h.startGroup(1, { voters: ids, stateMachine: new ListMachine() });
  }
  try {
    await until("leader", () => agreedLeader(c.hosts.values(), 1) !== 0);
    const leaderId = agreedLeader(c.hosts.values(), 1);
    const leader = c.hosts.get(leaderId)!;
    const followers = ids.filter((id) => id !== leaderId);
    const target = leader.logStatus(1)!.lastIndex + 1;
    dropAcks = true;
    const outcome = leader.propose(1, enc.encode("x")).then(
      (r) => `applied at ${r.index}`,
      (err) => `failed: ${err}`,
    );
    await until(
      "the followers hold the entry",
      () =>
        followers.every((id) =>
          c.hosts.get(id)!.logStatus(1)!.lastIndex >= target
        ),
    );
    for (const id of followers) net.cut(leaderId, id);
    dropAcks = false;
    await until("a new leader", () => {
      const l = agreedLeader(followers.map((id) => c.hosts.get(id)!), 1);
      return l !== 0 && l !== leaderId;
    });
    net.heal();
    assert.equal(await outcome, `applied at ${target}`);
  } finally {
    await stopAll(c);
  }
});
