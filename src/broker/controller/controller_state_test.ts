/**
 * Goal: ControllerState applies commands deterministically, answers bad ones
 * with the Kafka code without changing anything, and survives a snapshot
 * round trip. Method: feed encoded commands through apply() as the Raft host
 * would, then inspect the queries and compare snapshot bytes.
 */
import assert from "node:assert/strict";
import { type Entry, EntryType } from "../../raft/mod.ts";
import { ErrorCode } from "../../protocol/mod.ts";
import {
  type AclBinding,
  type Command,
  type CommandAccepted,
  type CommandResult,
  ControllerState,
  encodeCommand,
} from "./mod.ts";

let nextIndex = 1;
function entry(command: Command): Entry {
  return {
    term: 1,
    index: nextIndex++,
    type: EntryType.Normal,
    data: encodeCommand(command),
  };
}

function run(state: ControllerState, ...commands: Command[]): CommandResult[] {
  return state.apply(commands.map(entry));
}

function accepted(result: CommandResult | undefined): CommandAccepted {
  assert.ok(result?.ok, `expected acceptance, got ${Deno.inspect(result)}`);
  return result;
}

function register(nodeId: number, lastSeenMs = 1000): Command {
  return {
    type: "registerBroker",
    broker: {
      nodeId,
      kafkaHost: `broker-${nodeId}`,
      kafkaPort: 9092,
      raftHost: `broker-${nodeId}`,
      raftPort: 7000,
    },
    lastSeenMs,
  };
}

type CreateTopic = Extract<Command, { type: "createTopic" }>;

let topicSeq = 0;
function createTopic(
  name: string,
  options: {
    partitions: number;
    replicationFactor: number;
    configs?: Record<string, string>;
  },
): CreateTopic {
  topicSeq++;
  return {
    type: "createTopic",
    name,
    topicId: topicSeq.toString(16).padStart(32, "0"),
    partitions: options.partitions,
    replicationFactor: options.replicationFactor,
    configs: options.configs ?? {},
  };
}

/** A cluster with brokers 1..n online. */
function cluster(brokers: number): ControllerState {
  const state = new ControllerState();
  const ids = Array.from({ length: brokers }, (_, i) => i + 1);
  for (
    const r of run(
      state,
      { type: "initCluster", clusterId: "c" },
      ...ids.map((id) => register(id)),
    )
  ) {
    accepted(r);
  }
  return state;
}

function rejected(result: CommandResult | undefined, code: number): void {
  assert.ok(
    result !== undefined && !result.ok,
    `expected rejection, got ${Deno.inspect(result)}`,
  );
  assert.equal(result.code, code, result.message);
}

function perBroker(state: ControllerState, topic: string) {
  const replicas = new Map<number, number>();
  const leaders = new Map<number, number>();
  for (const p of state.topic(topic)!.partitions) {
    leaders.set(p.preferredLeader, (leaders.get(p.preferredLeader) ?? 0) + 1);
    for (const b of p.replicas) replicas.set(b, (replicas.get(b) ?? 0) + 1);
  }
  return { replicas, leaders };
}

Deno.test("ControllerState.createTopic puts 6 replicas and 2 leaders on each of 3 brokers for 6 partitions RF 3", () => {
  const state = cluster(3);
  const result = accepted(
    run(state, createTopic("t", { partitions: 6, replicationFactor: 3 }))[0],
  );
  assert.equal(result.topic?.partitions.length, 6);
  const { replicas, leaders } = perBroker(state, "t");
  assert.deepEqual(replicas, new Map([[1, 6], [2, 6], [3, 6]]));
  assert.deepEqual(leaders, new Map([[1, 2], [2, 2], [3, 2]]));
  for (const p of state.topic("t")!.partitions) {
    assert.equal(p.preferredLeader, p.replicas[0]);
  }
});

Deno.test("ControllerState.createTopic spreads RF 1 partitions and rotates the start across topics", () => {
  const state = cluster(3);
  run(
    state,
    createTopic("a", { partitions: 3, replicationFactor: 1 }),
    createTopic("b", { partitions: 1, replicationFactor: 1 }),
    createTopic("c", { partitions: 1, replicationFactor: 1 }),
  );
  assert.deepEqual(state.topic("a")!.partitions.map((p) => p.replicas), [[1], [
    2,
  ], [3]]);
  // Single-partition topics do not all land on broker 1.
  assert.deepEqual(
    [state.topic("b")!, state.topic("c")!].map((t) =>
      t.partitions[0]!.preferredLeader
    ),
    [2, 3],
  );
});

Deno.test("ControllerState.createTopic refuses RF 4 on 3 brokers with INVALID_REPLICATION_FACTOR and changes nothing", () => {
  const state = cluster(3);
  const before = state.snapshot();
  rejected(
    run(state, createTopic("t", { partitions: 1, replicationFactor: 4 }))[0],
    ErrorCode.INVALID_REPLICATION_FACTOR,
  );
  assert.equal(state.topic("t"), undefined);
  assert.deepEqual(state.snapshot(), before);
});

Deno.test("ControllerState.createTopic answers bad topics with their Kafka codes", () => {
  const state = cluster(2);
  accepted(
    run(state, createTopic("t", { partitions: 1, replicationFactor: 1 }))[0],
  );
  const cases: [Command, number][] = [
    [
      createTopic("t", { partitions: 1, replicationFactor: 1 }),
      ErrorCode.TOPIC_ALREADY_EXISTS,
    ],
    [
      createTopic("bad name!", { partitions: 1, replicationFactor: 1 }),
      ErrorCode.INVALID_TOPIC_EXCEPTION,
    ],
    [
      createTopic("u", { partitions: 0, replicationFactor: 1 }),
      ErrorCode.INVALID_PARTITIONS,
    ],
    [
      createTopic("u", { partitions: 1, replicationFactor: 0 }),
      ErrorCode.INVALID_REPLICATION_FACTOR,
    ],
    [
      createTopic("u", {
        partitions: 1,
        replicationFactor: 1,
        configs: { "compression.typo": "lz4" },
      }),
      ErrorCode.INVALID_CONFIG,
    ],
    [
      createTopic("u", {
        partitions: 1,
        replicationFactor: 1,
        configs: { "min.insync.replicas": "2" },
      }),
      ErrorCode.INVALID_CONFIG,
    ],
    [
      createTopic("u", {
        partitions: 1,
        replicationFactor: 1,
        configs: { "retention.ms": "soon" },
      }),
      ErrorCode.INVALID_CONFIG,
    ],
    [{
      ...createTopic("u", { partitions: 1, replicationFactor: 1 }),
      topicId: "XYZ",
    }, ErrorCode.INVALID_REQUEST],
    [
      {
        ...createTopic("u", { partitions: 1, replicationFactor: 1 }),
        topicId: state.topic("t")!.topicId,
      },
      ErrorCode.TOPIC_ALREADY_EXISTS,
    ],
  ];
  for (const [command, code] of cases) rejected(run(state, command)[0], code);
  assert.deepEqual(state.topics().map((t) => t.name), ["t"]);
});

Deno.test("ControllerState excludes failed and fenced brokers from new assignments", () => {
  const state = cluster(4);
  accepted(
    run(state, createTopic("keep", { partitions: 1, replicationFactor: 4 }))[0],
  );
  run(state, { type: "markBrokerFailed", nodeId: 2 }, {
    type: "unregisterBroker",
    nodeId: 4,
  });
  assert.deepEqual(state.brokers().map((b) => b.status), [
    "online",
    "failed",
    "online",
    "fenced",
  ]);
  assert.deepEqual(state.liveBrokers().map((b) => b.nodeId), [1, 3]);
  accepted(
    run(state, createTopic("t", { partitions: 6, replicationFactor: 2 }))[0],
  );
  const { replicas } = perBroker(state, "t");
  assert.deepEqual([...replicas.keys()].sort(), [1, 3]);
  rejected(
    run(state, createTopic("u", { partitions: 1, replicationFactor: 3 }))[0],
    ErrorCode.INVALID_REPLICATION_FACTOR,
  );
  // Registering again brings a failed broker back, with the proposer's time.
  run(state, register(2, 5000));
  assert.deepEqual(
    state.brokers().find((b) => b.nodeId === 2),
    { ...state.brokers()[1]!, status: "online", lastSeenMs: 5000 },
  );
  assert.equal(state.liveBrokers().length, 3);
});

Deno.test("ControllerState.unregisterBroker removes a broker without replicas and fences one with replicas", () => {
  const state = cluster(3);
  run(state, createTopic("t", { partitions: 1, replicationFactor: 1 }));
  run(state, { type: "unregisterBroker", nodeId: 1 }, {
    type: "unregisterBroker",
    nodeId: 2,
  });
  assert.deepEqual(state.brokers().map((b) => [b.nodeId, b.status]), [[
    1,
    "fenced",
  ], [3, "online"]]);
  rejected(
    run(state, { type: "unregisterBroker", nodeId: 2 })[0],
    ErrorCode.BROKER_NOT_AVAILABLE,
  );
  rejected(
    run(state, { type: "markBrokerFailed", nodeId: 9 })[0],
    ErrorCode.BROKER_NOT_AVAILABLE,
  );
  // Failure detection does not turn a broker that left into a failed one.
  run(state, { type: "markBrokerFailed", nodeId: 1 });
  assert.equal(state.brokers()[0]!.status, "fenced");
});

Deno.test("ControllerState.registerBroker refuses bad ids, hosts and ports", () => {
  const state = cluster(1);
  const base = register(5) as Extract<Command, { type: "registerBroker" }>;
  const bad: Command[] = [
    { ...base, broker: { ...base.broker, nodeId: 0 } },
    { ...base, broker: { ...base.broker, kafkaHost: "" } },
    { ...base, broker: { ...base.broker, raftPort: 70_000 } },
    { ...base, lastSeenMs: -1 },
  ];
  for (const command of bad) {
    rejected(run(state, command)[0], ErrorCode.INVALID_REQUEST);
  }
  assert.equal(state.brokers().length, 1);
});

Deno.test("ControllerState hands out unique group ids and never reuses them after a delete", () => {
  const state = cluster(3);
  const a = accepted(
    run(state, createTopic("a", { partitions: 3, replicationFactor: 1 }))[0],
  );
  const aGroups = a.topic!.partitions.map((p) => p.groupId);
  assert.deepEqual(aGroups, [1, 2, 3]);
  accepted(run(state, { type: "deleteTopic", name: "a" })[0]);
  assert.equal(state.topic("a"), undefined);
  assert.equal(state.topicById(a.topic!.topicId), undefined);
  run(
    state,
    createTopic("a", { partitions: 2, replicationFactor: 1 }),
    { type: "createPartitions", name: "a", count: 4 },
    createTopic("b", { partitions: 2, replicationFactor: 2 }),
  );
  const groups = state.topics().flatMap((t) =>
    t.partitions.map((p) => p.groupId)
  );
  assert.deepEqual(groups.sort((x, y) => x - y), [4, 5, 6, 7, 8, 9]);
  rejected(
    run(state, { type: "deleteTopic", name: "gone" })[0],
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  );
});

Deno.test("ControllerState.createPartitions appends numbered partitions with the topic's replication factor", () => {
  const state = cluster(3);
  run(state, createTopic("t", { partitions: 2, replicationFactor: 2 }));
  const result = accepted(
    run(state, { type: "createPartitions", name: "t", count: 5 })[0],
  );
  assert.deepEqual(result.topic!.partitions.map((p) => p.partition), [
    0,
    1,
    2,
    3,
    4,
  ]);
  assert.ok(result.topic!.partitions.every((p) => p.replicas.length === 2));
  rejected(
    run(state, { type: "createPartitions", name: "t", count: 5 })[0],
    ErrorCode.INVALID_PARTITIONS,
  );
  rejected(
    run(state, { type: "createPartitions", name: "x", count: 9 })[0],
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  );
  run(state, { type: "markBrokerFailed", nodeId: 3 }, {
    type: "markBrokerFailed",
    nodeId: 2,
  });
  rejected(
    run(state, { type: "createPartitions", name: "t", count: 6 })[0],
    ErrorCode.INVALID_REPLICATION_FACTOR,
  );
});

function reassign(
  partition: number,
  replicas: number[] | null,
): Command {
  return { type: "reassignPartition", name: "t", partition, replicas };
}

function complete(groupId: number, replicas: number[]): Command {
  return { type: "completeReassignment", groupId, replicas };
}

Deno.test("ControllerState.reassignPartition hosts the union and records what it adds and removes", () => {
  const state = cluster(4);
  run(state, createTopic("t", { partitions: 2, replicationFactor: 3 }));
  const before = state.topic("t")!.partitions[1]!;
  const target = [4, ...before.replicas.filter((r) => r !== 4).slice(1)];
  const removed = before.replicas.filter((r) => !target.includes(r));
  const result = accepted(run(state, reassign(1, target))[0]);
  assert.deepEqual(result.topic!.partitions[1], {
    ...before,
    replicas: [...target, ...removed],
    addingReplicas: target.filter((r) => !before.replicas.includes(r)),
    removingReplicas: removed,
    preferredLeader: 4,
  });
  // Every broker of the union hosts the group, told that it moves and
  // which brokers the move adds (those start the group empty).
  for (const id of [...target, ...removed]) {
    const hosted = state.partitionsOf(id).find((h) => h.partition === 1);
    assert.equal(hosted?.moving, true);
    assert.deepEqual(
      hosted?.adding,
      result.topic!.partitions[1]!.addingReplicas,
    );
  }
  const still = state.topic("t")!.partitions[0]!;
  const idle = state.partitionsOf(still.replicas[0]!).find((h) =>
    h.partition === 0
  );
  assert.deepEqual(idle && [idle.moving, idle.adding], [false, []]);
});

Deno.test("ControllerState.reassignPartition applies a reordering at once", () => {
  const state = cluster(3);
  run(state, createTopic("t", { partitions: 1, replicationFactor: 3 }));
  const before = state.topic("t")!.partitions[0]!;
  const reordered = [...before.replicas].reverse();
  accepted(run(state, reassign(0, reordered))[0]);
  assert.deepEqual(state.topic("t")!.partitions[0], {
    ...before,
    replicas: reordered,
    preferredLeader: reordered[0],
  });
});

Deno.test("ControllerState.reassignPartition refuses bad replica lists and unknown partitions, changing nothing", () => {
  const state = cluster(3);
  run(state, createTopic("t", { partitions: 2, replicationFactor: 1 }));
  run(state, register(5), { type: "unregisterBroker", nodeId: 5 });
  const snapshot = state.snapshot();
  const bad: [Command, number][] = [
    [reassign(2, [1]), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    [reassign(-1, [1]), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    [
      { type: "reassignPartition", name: "nope", partition: 0, replicas: [1] },
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ],
    [reassign(0, []), ErrorCode.INVALID_REPLICA_ASSIGNMENT],
    [reassign(0, [1, 1]), ErrorCode.INVALID_REPLICA_ASSIGNMENT],
    [reassign(0, [7]), ErrorCode.INVALID_REPLICA_ASSIGNMENT],
    [reassign(0, [2, 5]), ErrorCode.INVALID_REPLICA_ASSIGNMENT],
    [reassign(0, null), ErrorCode.NO_REASSIGNMENT_IN_PROGRESS],
  ];
  for (const [command, code] of bad) rejected(run(state, command)[0], code);
  assert.deepEqual(state.snapshot(), snapshot);
});

Deno.test("ControllerState.reassignPartition accepts a repeat of the running move and refuses another", () => {
  const state = cluster(4);
  run(state, createTopic("t", { partitions: 1, replicationFactor: 2 }));
  const { replicas } = state.topic("t")!.partitions[0]!;
  const spare = [1, 2, 3, 4].filter((r) => !replicas.includes(r));
  accepted(run(state, reassign(0, [spare[0]!, replicas[0]!]))[0]);
  const version = state.metadataVersion;
  accepted(run(state, reassign(0, [spare[0]!, replicas[0]!]))[0]);
  assert.equal(state.metadataVersion, version);
  rejected(
    run(state, reassign(0, [spare[1]!, replicas[0]!]))[0],
    ErrorCode.REASSIGNMENT_IN_PROGRESS,
  );
});

Deno.test("ControllerState.completeReassignment narrows to the target once, then repeats are no-ops", () => {
  const state = cluster(4);
  run(state, createTopic("t", { partitions: 1, replicationFactor: 3 }));
  const { groupId, replicas } = state.topic("t")!.partitions[0]!;
  const spare = [1, 2, 3, 4].find((r) => !replicas.includes(r))!;
  const target = [spare, replicas[1]!, replicas[2]!];
  run(state, reassign(0, target), leaderChanged(groupId, replicas[0]!, 2));
  accepted(run(state, complete(groupId, target))[0]);
  const after = state.topic("t")!.partitions[0]!;
  assert.deepEqual(after.replicas, target);
  assert.deepEqual(after.addingReplicas, []);
  assert.deepEqual(after.removingReplicas, []);
  // The old leader left the replicas: no leader until the group reports one.
  assert.deepEqual(leaderOf(state, groupId), { leader: -1, term: 2 });
  assert.deepEqual(state.partitionsOf(replicas[0]!), []);
  const version = state.metadataVersion;
  accepted(run(state, complete(groupId, target))[0]);
  assert.equal(state.metadataVersion, version);
});

Deno.test("ControllerState.completeReassignment refuses a stale completion", () => {
  const state = cluster(4);
  run(state, createTopic("t", { partitions: 1, replicationFactor: 3 }));
  const { groupId, replicas } = state.topic("t")!.partitions[0]!;
  const spare = [1, 2, 3, 4].find((r) => !replicas.includes(r))!;
  const target = [spare, replicas[1]!, replicas[2]!];
  rejected(
    run(state, complete(groupId, target))[0],
    ErrorCode.NO_REASSIGNMENT_IN_PROGRESS,
  );
  run(state, reassign(0, target));
  // Cancelled while the leader worked: its completion names the old target.
  accepted(run(state, reassign(0, null))[0]);
  const cancelled = state.topic("t")!.partitions[0]!;
  // Kafka's order: what stays, what the move would have removed, then
  // what it added (now being removed again).
  const original = [replicas[1]!, replicas[2]!, replicas[0]!];
  assert.deepEqual(cancelled.replicas, [...original, spare]);
  assert.deepEqual(cancelled.addingReplicas, []);
  assert.deepEqual(cancelled.removingReplicas, [spare]);
  assert.equal(cancelled.preferredLeader, original[0]);
  const snapshot = state.snapshot();
  rejected(
    run(state, complete(groupId, target))[0],
    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
  );
  rejected(
    run(state, complete(999, [...replicas]))[0],
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  );
  assert.deepEqual(state.snapshot(), snapshot);
  accepted(run(state, complete(groupId, original))[0]);
  assert.deepEqual(state.topic("t")!.partitions[0]!.replicas, original);
});

function leaderChanged(
  groupId: number,
  leader: number,
  term: number,
): Command {
  return { type: "leaderChanged", groupId, leader, term };
}

function leaderOf(state: ControllerState, groupId: number) {
  const a = state.partitionByGroup(groupId)!.assignment;
  return { leader: a.leader, term: a.leaderEpoch };
}

Deno.test("ControllerState.leaderChanged records a newer term's leader and bumps the metadata version", () => {
  const state = cluster(3);
  run(state, createTopic("t", { partitions: 2, replicationFactor: 3 }));
  const groupId = state.topic("t")!.partitions[1]!.groupId;
  assert.deepEqual(leaderOf(state, groupId), { leader: -1, term: -1 });
  const version = state.metadataVersion;
  const first = accepted(run(state, leaderChanged(groupId, 2, 3))[0]);
  assert.equal(first.metadataVersion, version + 1);
  assert.deepEqual(leaderOf(state, groupId), { leader: 2, term: 3 });
  // The same broker winning again in a later term is news too.
  accepted(run(state, leaderChanged(groupId, 2, 5))[0]);
  assert.deepEqual(leaderOf(state, groupId), { leader: 2, term: 5 });
  assert.equal(state.metadataVersion, version + 2);
  // The other partition is untouched.
  assert.equal(state.topic("t")!.partitions[0]!.leader, -1);
});

Deno.test("ControllerState.leaderChanged accepts a stale or repeated report and changes nothing", () => {
  const state = cluster(3);
  run(state, createTopic("t", { partitions: 1, replicationFactor: 3 }));
  const groupId = state.topic("t")!.partitions[0]!.groupId;
  accepted(run(state, leaderChanged(groupId, 1, 4))[0]);
  const before = state.snapshot();
  const version = state.metadataVersion;
  for (
    const result of run(
      state,
      leaderChanged(groupId, 2, 3),
      leaderChanged(groupId, 1, 4),
    )
  ) {
    assert.equal(accepted(result).metadataVersion, version);
  }
  assert.deepEqual(leaderOf(state, groupId), { leader: 1, term: 4 });
  assert.deepEqual(state.snapshot(), before);
});

Deno.test("ControllerState.leaderChanged rejects a leader outside the replicas, a bad term and an unknown group", () => {
  const state = cluster(3);
  run(state, createTopic("t", { partitions: 1, replicationFactor: 2 }));
  const p = state.topic("t")!.partitions[0]!;
  const outsider = [1, 2, 3].find((id) => !p.replicas.includes(id))!;
  const before = state.snapshot();
  rejected(
    run(state, leaderChanged(p.groupId, outsider, 1))[0],
    ErrorCode.INVALID_REQUEST,
  );
  rejected(
    run(state, leaderChanged(p.groupId, p.replicas[0]!, 0))[0],
    ErrorCode.INVALID_REQUEST,
  );
  rejected(
    run(state, leaderChanged(p.groupId, 0, 1))[0],
    ErrorCode.INVALID_REQUEST,
  );
  rejected(
    run(state, leaderChanged(p.groupId + 1, p.replicas[0]!, 1))[0],
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  );
  assert.deepEqual(state.snapshot(), before);
  // After a delete the group is gone: a late report cannot resurrect it.
  run(state, { type: "deleteTopic", name: "t" });
  assert.equal(state.partitionByGroup(p.groupId), undefined);
  rejected(
    run(state, leaderChanged(p.groupId, p.replicas[0]!, 9))[0],
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  );
});

Deno.test("ControllerState.leaderChanged for group 0 tracks the controller leader", () => {
  const state = cluster(1);
  assert.deepEqual(state.controllerLeader(), { leader: -1, term: -1 });
  assert.equal(state.partitionByGroup(0), undefined);
  // The controller may lead before it has registered as a broker.
  accepted(run(state, leaderChanged(0, 7, 2))[0]);
  assert.deepEqual(state.controllerLeader(), { leader: 7, term: 2 });
  const version = state.metadataVersion;
  accepted(run(state, leaderChanged(0, 1, 1))[0]);
  assert.equal(state.metadataVersion, version);
  accepted(run(state, leaderChanged(0, 1, 3))[0]);
  assert.deepEqual(state.controllerLeader(), { leader: 1, term: 3 });
});

Deno.test("ControllerState keeps a leader the move removes until the move completes", () => {
  const state = cluster(3);
  run(state, createTopic("t", { partitions: 1, replicationFactor: 2 }));
  const groupId = state.topic("t")!.partitions[0]!.groupId;
  run(state, reassign(0, [1, 2]), leaderChanged(groupId, 2, 4));
  accepted(run(state, reassign(0, [3, 1]))[0]);
  assert.deepEqual(leaderOf(state, groupId), { leader: 2, term: 4 });
  accepted(run(state, complete(groupId, [3, 1]))[0]);
  assert.deepEqual(leaderOf(state, groupId), { leader: -1, term: 4 });
  // The epoch stays, so the removed leader's late report is still ignored.
  accepted(run(state, leaderChanged(groupId, 2, 3))[0]);
  assert.deepEqual(leaderOf(state, groupId), { leader: -1, term: 4 });
  accepted(run(state, leaderChanged(groupId, 3, 5))[0]);
  assert.deepEqual(leaderOf(state, groupId), { leader: 3, term: 5 });
});

Deno.test("ControllerState.partitionByGroup finds partitions of every topic, added ones included", () => {
  const state = cluster(2);
  run(
    state,
    createTopic("a", { partitions: 2, replicationFactor: 1 }),
    createTopic("b", { partitions: 1, replicationFactor: 1 }),
    { type: "createPartitions", name: "a", count: 3 },
  );
  const found = state.topics().flatMap((t) =>
    t.partitions.map((p) => {
      const hit = state.partitionByGroup(p.groupId)!;
      return [hit.topic.name, hit.assignment.partition, t.name, p.partition];
    })
  );
  assert.equal(found.length, 4);
  for (const [gotTopic, gotPartition, topic, partition] of found) {
    assert.deepEqual([gotTopic, gotPartition], [topic, partition]);
  }
  assert.equal(state.partitionByGroup(99), undefined);
});

Deno.test("ControllerState.partitionsOf lists the groups a broker must host", () => {
  const state = cluster(3);
  run(
    state,
    createTopic("b", { partitions: 3, replicationFactor: 2 }),
    createTopic("a", { partitions: 3, replicationFactor: 1 }),
  );
  const hosted = state.partitionsOf(2);
  for (const h of hosted) assert.ok(h.replicas.includes(2));
  const expected = state.topics().flatMap((t) =>
    t.partitions.filter((p) => p.replicas.includes(2)).map((p) =>
      `${t.name}-${p.partition}`
    )
  );
  assert.deepEqual(hosted.map((h) => `${h.topic}-${h.partition}`), expected);
  assert.equal(hosted[0]!.topic, "a");
  assert.deepEqual(state.partitionsOf(9), []);
});

Deno.test("ControllerState.preferredLeaderMoves lists live preferred leaders that do not lead", () => {
  const state = cluster(3);
  run(state, createTopic("t", { partitions: 3, replicationFactor: 3 }));
  const [p0, p1, p2] = state.topic("t")!.partitions;
  const current = new Map([
    [p0!.groupId, p0!.preferredLeader],
    [p1!.groupId, p1!.replicas[1]!],
    [p2!.groupId, p2!.replicas[1]!],
  ]);
  assert.deepEqual(
    state.preferredLeaderMoves(current).map((
      m,
    ) => [m.partition, m.preferredLeader, m.currentLeader]),
    [[1, p1!.preferredLeader, p1!.replicas[1]], [
      2,
      p2!.preferredLeader,
      p2!.replicas[1],
    ]],
  );
  run(state, { type: "markBrokerFailed", nodeId: p2!.preferredLeader });
  assert.deepEqual(
    state.preferredLeaderMoves(current).map((m) => m.partition),
    [1],
  );
  // A group without a known leader cannot hand leadership over.
  assert.deepEqual(state.preferredLeaderMoves(new Map([[p1!.groupId, 0]])), []);
});

Deno.test("ControllerState.initCluster sets the cluster id once", () => {
  const state = new ControllerState();
  assert.equal(state.clusterId, null);
  accepted(run(state, { type: "initCluster", clusterId: "one" })[0]);
  accepted(run(state, { type: "initCluster", clusterId: "one" })[0]);
  rejected(
    run(state, { type: "initCluster", clusterId: "two" })[0],
    ErrorCode.INVALID_REQUEST,
  );
  assert.equal(state.clusterId, "one");
});

Deno.test("ControllerState.metadataVersion counts accepted commands only", () => {
  const state = cluster(2);
  assert.equal(state.metadataVersion, 3);
  const results = run(
    state,
    createTopic("t", { partitions: 1, replicationFactor: 1 }),
    createTopic("t", { partitions: 1, replicationFactor: 1 }),
    { type: "deleteTopic", name: "t" },
  );
  assert.deepEqual(results.map((r) => r.ok ? r.metadataVersion : r.code), [
    4,
    ErrorCode.TOPIC_ALREADY_EXISTS,
    5,
  ]);
  assert.equal(state.metadataVersion, 5);
});

Deno.test("ControllerState.apply rejects an undecodable entry with INVALID_REQUEST and goes on", () => {
  const state = cluster(1);
  const before = state.snapshot();
  const results = state.apply([
    {
      term: 1,
      index: 99,
      type: EntryType.Normal,
      data: new Uint8Array([9, 1, 2]),
    },
  ]);
  rejected(results[0], ErrorCode.INVALID_REQUEST);
  assert.deepEqual(state.snapshot(), before);
});

Deno.test("ControllerState.check answers like apply without changing the state", () => {
  const state = cluster(2);
  const before = state.snapshot();
  assert.equal(
    state.check(createTopic("t", { partitions: 4, replicationFactor: 2 })),
    null,
  );
  const refusal = state.check(
    createTopic("t", { partitions: 4, replicationFactor: 3 }),
  );
  assert.equal(refusal?.code, ErrorCode.INVALID_REPLICATION_FACTOR);
  assert.deepEqual(state.snapshot(), before);
});

Deno.test("ControllerState hands out producer id blocks that never overlap, across a restore", () => {
  const state = cluster(1);
  const blocks: [bigint, bigint][] = [];
  for (const count of [1, 1000, 7]) {
    const first = accepted(
      run(state, { type: "allocateProducerIds", count })[0],
    ).firstProducerId!;
    blocks.push([first, first + BigInt(count)]);
  }
  const restored = new ControllerState();
  restored.restore(state.snapshot());
  const first = accepted(
    run(restored, { type: "allocateProducerIds", count: 5 })[0],
  ).firstProducerId!;
  blocks.push([first, first + 5n]);
  assert.deepEqual(blocks, [[0n, 1n], [1n, 1001n], [1001n, 1008n], [
    1008n,
    1013n,
  ]]);
  rejected(
    run(state, { type: "allocateProducerIds", count: 0 })[0],
    ErrorCode.INVALID_REQUEST,
  );
});

/** A mixed history touching every command type. */
function history(): Command[] {
  topicSeq = 100;
  return [
    { type: "initCluster", clusterId: "c" },
    register(3),
    register(1),
    register(2),
    createTopic("zeta", {
      partitions: 4,
      replicationFactor: 2,
      configs: { "segment.bytes": "1024", "retention.ms": "5" },
    }),
    createTopic("alpha", { partitions: 3, replicationFactor: 3 }),
    { type: "leaderChanged", groupId: 0, leader: 2, term: 1 },
    { type: "leaderChanged", groupId: 5, leader: 3, term: 2 },
    { type: "markBrokerFailed", nodeId: 2 },
    { type: "leaderChanged", groupId: 0, leader: 1, term: 2 },
    createTopic("beta", { partitions: 2, replicationFactor: 2 }),
    { type: "createPartitions", name: "zeta", count: 6 },
    {
      type: "reassignPartition",
      name: "alpha",
      partition: 0,
      replicas: [3, 1],
    },
    { type: "leaderChanged", groupId: 8, leader: 1, term: 1 },
    { type: "deleteTopic", name: "beta" },
    { type: "leaderChanged", groupId: 8, leader: 1, term: 2 },
    { type: "allocateProducerIds", count: 100 },
    register(4),
    { type: "unregisterBroker", nodeId: 4 },
    createTopic("bad", { partitions: 1, replicationFactor: 9 }),
  ];
}

Deno.test("ControllerState instances fed the same commands produce identical snapshots", () => {
  const a = new ControllerState();
  const b = new ControllerState();
  const commands = history();
  // Entry by entry on one side, all at once on the other: batching must not matter.
  const resultsA = commands.flatMap((c) => run(a, c));
  const resultsB = run(b, ...commands);
  assert.deepEqual(resultsA, resultsB);
  assert.deepEqual(a.snapshot(), b.snapshot());
});

Deno.test("ControllerState.restore(snapshot()) reproduces the state and continues identically", () => {
  const original = new ControllerState();
  run(original, ...history());
  const copy = cluster(1); // restore must replace, not merge
  copy.restore(original.snapshot());
  assert.deepEqual(copy.snapshot(), original.snapshot());
  assert.deepEqual(copy.topics(), original.topics());
  assert.deepEqual(copy.brokers(), original.brokers());
  assert.equal(copy.clusterId, original.clusterId);
  assert.equal(copy.metadataVersion, original.metadataVersion);
  assert.deepEqual(copy.controllerLeader(), { leader: 1, term: 2 });
  assert.deepEqual(copy.controllerLeader(), original.controllerLeader());
  const led = copy.partitionByGroup(5)!;
  assert.deepEqual(
    [led.topic.name, led.assignment.leader, led.assignment.leaderEpoch],
    ["alpha", 3, 2],
  );
  assert.equal(copy.partitionByGroup(8), undefined);
  assert.deepEqual(
    copy.topicById(original.topic("zeta")!.topicId),
    original.topic("zeta"),
  );
  assert.deepEqual(Object.keys(copy.topic("zeta")!.configs), [
    "retention.ms",
    "segment.bytes",
  ]);
  const more: Command[] = [
    createTopic("gamma", { partitions: 5, replicationFactor: 2 }),
    register(2, 9000),
    { type: "createPartitions", name: "alpha", count: 4 },
    { type: "allocateProducerIds", count: 3 },
    { type: "leaderChanged", groupId: 5, leader: 1, term: 3 },
    { type: "leaderChanged", groupId: 5, leader: 3, term: 2 },
  ];
  assert.deepEqual(run(copy, ...more), run(original, ...more));
  assert.deepEqual(copy.snapshot(), original.snapshot());
});

Deno.test("ControllerState.restore refuses a malformed snapshot", () => {
  const state = new ControllerState();
  const bytes = cluster(1).snapshot();
  bytes[0] = 1;
  assert.throws(() => state.restore(bytes), { name: "ControllerDecodeError" });
  assert.throws(
    () =>
      state.restore(
        new Uint8Array([2, ...new TextEncoder().encode('{"clusterId":null}')]),
      ),
    /Field "snapshot.metadataVersion"/,
  );
});

Deno.test("ControllerState.createPartitions places new partitions where the client's assignment says, and refuses a bad one", () => {
  const state = cluster(3);
  run(state, createTopic("t", { partitions: 1, replicationFactor: 2 }));
  const result = accepted(
    run(state, {
      type: "createPartitions",
      name: "t",
      count: 3,
      assignments: [[3, 1], [2, 3]],
    })[0],
  );
  const added = result.topic!.partitions.slice(1);
  assert.deepEqual(added.map((p) => p.replicas), [[3, 1], [2, 3]]);
  assert.deepEqual(added.map((p) => p.preferredLeader), [3, 2]);
  for (
    const assignments of [
      [[1, 2]], // one list for two new partitions
      [[1, 2], [3]], // fewer replicas than the factor
      [[1, 1], [2, 3]], // a broker twice
      [[1, 9], [2, 3]], // no such broker
    ]
  ) {
    rejected(
      run(state, {
        type: "createPartitions",
        name: "t",
        count: 5,
        assignments,
      })[
        0
      ],
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
    );
  }
  assert.equal(state.topic("t")!.partitions.length, 3);
});

Deno.test("ControllerState alters a topic's configs key by key or wholesale, and refuses bad ones without change", () => {
  const state = new ControllerState();
  run(state, register(1), register(2), register(3));
  accepted(
    run(
      state,
      createTopic("c", {
        partitions: 1,
        replicationFactor: 3,
        configs: {
          "retention.ms": "1000",
          "message.timestamp.type": "CreateTime",
        },
      }),
    )[0],
  );
  const alter = (
    replace: boolean,
    ...ops: {
      key: string;
      op: "set" | "delete" | "append" | "subtract";
      value: string | null;
    }[]
  ): CommandResult =>
    run(state, { type: "alterTopicConfigs", name: "c", replace, ops })[0]!;
  accepted(alter(
    false,
    { key: "retention.ms", op: "delete", value: null },
    { key: "min.insync.replicas", op: "set", value: "2" },
    { key: "cleanup.policy", op: "append", value: "compact" },
  ));
  assert.deepEqual(state.topic("c")!.configs, {
    "cleanup.policy": "delete,compact",
    "message.timestamp.type": "CreateTime",
    "min.insync.replicas": "2",
  });
  accepted(
    alter(false, { key: "cleanup.policy", op: "subtract", value: "delete" }),
  );
  assert.equal(state.topic("c")!.configs["cleanup.policy"], "compact");
  for (
    const [ops, why] of [
      [[{ key: "segment.bytes", op: "append", value: "1" }], /not a list/],
      [
        [{ key: "retention.mss", op: "set", value: "1" }],
        /Unknown topic config "retention.mss"/,
      ],
      [
        [{ key: "segment.ms", op: "set", value: "0" }],
        /segment.ms="0" is invalid: out of range/,
      ],
      [
        [{ key: "max.message.bytes", op: "set", value: "67108864" }],
        /max.message.bytes="67108864" is invalid: out of range \[0, 33554432\]/,
      ],
      [
        [{ key: "min.insync.replicas", op: "set", value: "4" }],
        /min.insync.replicas="4" is invalid: it exceeds the replication factor 3/,
      ],
    ] as const
  ) {
    const before = state.topic("c")!.configs;
    const r = alter(false, ...ops);
    assert.ok(!r.ok && r.code === ErrorCode.INVALID_CONFIG, Deno.inspect(r));
    assert.match(r.message, why);
    assert.deepEqual(state.topic("c")!.configs, before);
  }
  accepted(alter(true, { key: "segment.bytes", op: "set", value: "2048" }));
  assert.deepEqual(state.topic("c")!.configs, { "segment.bytes": "2048" });
  const missing = run(state, {
    type: "alterTopicConfigs",
    name: "nope",
    replace: true,
    ops: [],
  })[0]!;
  assert.ok(
    !missing.ok && missing.code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  );
});

Deno.test("ControllerState keeps dynamic broker configs per broker and as every broker's default, refuses what cannot change, and snapshots them", () => {
  const state = new ControllerState();
  run(state, register(1), register(2));
  const alter = (
    broker: string,
    ...ops: {
      key: string;
      op: "set" | "delete" | "append" | "subtract";
      value: string | null;
    }[]
  ): CommandResult =>
    run(state, { type: "alterBrokerConfigs", broker, replace: false, ops })[
      0
    ]!;
  accepted(
    alter(
      "",
      { key: "log.retention.ms", op: "set", value: "60000" },
      { key: "compression.type", op: "set", value: "zstd" },
    ),
  );
  accepted(
    alter(
      "2",
      { key: "log.retention.ms", op: "set", value: "1000" },
      { key: "log.cleanup.policy", op: "append", value: "compact" },
    ),
  );
  assert.deepEqual(state.brokerConfigs(1), {
    broker: {},
    cluster: { "compression.type": "zstd", "log.retention.ms": "60000" },
  });
  assert.deepEqual(state.brokerConfigs(2).broker, {
    "log.cleanup.policy": "delete,compact",
    "log.retention.ms": "1000",
  });
  for (
    const [broker, key, value, code, why] of [
      ["", "broker.id", "7", ErrorCode.INVALID_CONFIG, /cannot be altered/],
      ["", "log.retention.ms", "soon", ErrorCode.INVALID_CONFIG, /not an int/],
      ["9", "log.retention.ms", "1", ErrorCode.INVALID_REQUEST, /not a member/],
      ["x", "log.retention.ms", "1", ErrorCode.INVALID_REQUEST, /Broker id/],
    ] as const
  ) {
    const before = state.snapshot();
    const r = alter(broker, { key, op: "set", value });
    assert.ok(!r.ok && r.code === code, Deno.inspect(r));
    assert.match(r.message, why);
    assert.deepEqual(state.snapshot(), before);
  }
  const copy = new ControllerState();
  copy.restore(state.snapshot());
  assert.deepEqual(copy.brokerConfigs(2), state.brokerConfigs(2));
  assert.deepEqual(copy.snapshot(), state.snapshot());
  accepted(alter("2", { key: "log.retention.ms", op: "delete", value: null }));
  accepted(
    alter("2", { key: "log.cleanup.policy", op: "delete", value: null }),
  );
  assert.deepEqual(state.brokerConfigs(2).broker, {});
});

const CREDENTIAL = {
  salt: "c2FsdA==",
  iterations: 4096,
  storedKey: "c3RvcmVk",
  serverKey: "c2VydmVy",
};

Deno.test("ControllerState keeps SCRAM credentials per user and mechanism across a restore", () => {
  const state = new ControllerState();
  accepted(
    run(state, {
      type: "alterScramCredentials",
      upsertions: [
        { user: "alice", mechanism: "SCRAM-SHA-256", ...CREDENTIAL },
        { user: "alice", mechanism: "SCRAM-SHA-512", ...CREDENTIAL },
        { user: "bob", mechanism: "SCRAM-SHA-256", ...CREDENTIAL },
      ],
      deletions: [],
    })[0],
  );
  accepted(
    run(state, {
      type: "alterScramCredentials",
      upsertions: [],
      deletions: [
        { user: "alice", mechanism: "SCRAM-SHA-256" },
        { user: "bob", mechanism: "SCRAM-SHA-256" },
      ],
    })[0],
  );
  assert.deepEqual(state.scramUsers(), ["alice"]);
  assert.deepEqual([...state.scramCredentials("alice").keys()], [
    "SCRAM-SHA-512",
  ]);
  const restored = new ControllerState();
  restored.restore(state.snapshot());
  assert.deepEqual(restored.snapshot(), state.snapshot());
  assert.deepEqual(
    restored.scramCredentials("alice").get("SCRAM-SHA-512"),
    CREDENTIAL,
  );
});

Deno.test("ControllerState restores a snapshot taken before users and listeners existed", () => {
  const state = new ControllerState();
  run(state, { type: "initCluster", clusterId: "c" }, register(1));
  const body = JSON.parse(
    new TextDecoder().decode(state.snapshot().subarray(1)),
  );
  delete body.scramCredentials;
  assert.equal(body.brokers[0].listeners, undefined);
  const old = new TextEncoder().encode(JSON.stringify(body));
  const bytes = new Uint8Array([state.snapshot()[0]!, ...old]);
  const restored = new ControllerState();
  restored.restore(bytes);
  assert.deepEqual(restored.scramUsers(), []);
  assert.equal(restored.brokers()[0]?.kafkaPort, state.brokers()[0]?.kafkaPort);
});

Deno.test("ControllerState refuses a SCRAM credential with an empty user name and changes nothing", () => {
  const state = new ControllerState();
  const before = state.snapshot();
  const result = run(state, {
    type: "alterScramCredentials",
    upsertions: [{ user: "", mechanism: "SCRAM-SHA-256", ...CREDENTIAL }],
    deletions: [],
  })[0];
  assert.equal(result?.ok, false);
  assert.deepEqual(state.snapshot(), before);
});

Deno.test("ControllerState records every listener address a broker registers", () => {
  const state = new ControllerState();
  const command = register(1);
  assert.ok(command.type === "registerBroker");
  command.broker.listeners = [
    { name: "PLAINTEXT", host: "10.0.0.1", port: 9092 },
    { name: "SASL_SSL", host: "kafka.example", port: 9094 },
  ];
  accepted(run(state, command)[0]);
  assert.deepEqual(state.brokers()[0]?.listeners, command.broker.listeners);
});

const ALLOW_WRITE: AclBinding = {
  resourceType: "topic",
  patternType: "literal",
  resourceName: "orders",
  principal: "User:alice",
  host: "*",
  operation: "write",
  permission: "allow",
};
const DENY_READ: AclBinding = {
  ...ALLOW_WRITE,
  patternType: "prefixed",
  resourceName: "ord",
  operation: "read",
  permission: "deny",
};

Deno.test("ControllerState keeps each ACL binding once, deletes it, and keeps the rest across a restore", () => {
  const state = new ControllerState();
  accepted(
    run(state, { type: "createAcls", bindings: [ALLOW_WRITE, DENY_READ] })[0],
  );
  const version = state.metadataVersion;
  // Already there: accepted without a change, so no metadata bump.
  accepted(run(state, { type: "createAcls", bindings: [ALLOW_WRITE] })[0]);
  assert.equal(state.metadataVersion, version);
  assert.equal(state.acls().length, 2);
  accepted(run(state, { type: "deleteAcls", bindings: [DENY_READ] })[0]);
  assert.deepEqual(state.acls(), [ALLOW_WRITE]);
  const restored = new ControllerState();
  restored.restore(state.snapshot());
  assert.deepEqual(restored.acls(), [ALLOW_WRITE]);
  assert.deepEqual(restored.snapshot(), state.snapshot());
});

Deno.test("ControllerState restores a snapshot taken before ACLs existed with no ACL", () => {
  const state = new ControllerState();
  run(state, { type: "createAcls", bindings: [ALLOW_WRITE] });
  const body = JSON.parse(
    new TextDecoder().decode(state.snapshot().subarray(1)),
  );
  delete body.acls;
  const old = new TextEncoder().encode(JSON.stringify(body));
  const restored = new ControllerState();
  restored.restore(new Uint8Array([state.snapshot()[0]!, ...old]));
  assert.deepEqual(restored.acls(), []);
});

Deno.test("ControllerState refuses a malformed ACL binding with INVALID_REQUEST and adds none of the command", () => {
  const bad: AclBinding[] = [
    { ...ALLOW_WRITE, principal: "alice" },
    { ...ALLOW_WRITE, resourceName: "" },
    { ...ALLOW_WRITE, host: "" },
    { ...ALLOW_WRITE, resourceType: "cluster", resourceName: "orders" },
  ];
  for (const binding of bad) {
    const state = new ControllerState();
    const before = state.snapshot();
    const result = run(state, {
      type: "createAcls",
      bindings: [ALLOW_WRITE, binding],
    })[0];
    assert.equal(result?.ok, false, Deno.inspect(binding));
    assert.equal(!result?.ok && result.code, ErrorCode.INVALID_REQUEST);
    assert.deepEqual(state.snapshot(), before);
  }
});
