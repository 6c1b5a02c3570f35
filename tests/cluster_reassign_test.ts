// Placement changes on a running cluster, through the raftq CLI as a user
// runs it: transfer-leader, and a reassignment that removes the partition's
// leader and adds a broker that joined later, while an acks=all producer
// runs. Method: real broker processes over loopback, the real CLI, kcat to
// read back, and the replicas' segment files compared byte for byte.
import assert from "node:assert/strict";
import {
  KafkaClient,
  type KafkaClient as Client,
  type PartitionMetadata,
} from "../src/client/mod.ts";
import {
  assertAckedInOrder,
  assertSameLogsSoon,
  Cluster,
  SequentialProducer,
  waitFor,
} from "./cluster_harness.ts";
import { hasKcat, kcatConsume, raftq } from "./harness.ts";
import { buildRecordBatch } from "../src/protocol/mod.ts";
import kafkajs from "kafkajs";

/** Leader balancing runs every 3 s: two rounds and a bit. */
const BALANCER_ROUNDS_MS = 7_000;

async function leaderOf(client: Client, topic: string): Promise<number> {
  const md = await client.metadata([topic]);
  return md.topics[0]?.partitions[0]?.leader ?? -1;
}

interface FourBrokers {
  cluster: Cluster;
  /** Replaceable: the client set last is the one closed at the end. */
  client: Client;
  partition: PartitionMetadata;
}

/**
 * Runs `fn` on a cluster of 4 brokers of which 3 run, where `topic` has one
 * partition of 3 replicas led by its preferred one; tears it down after.
 */
async function onFourBrokers(
  topic: string,
  opts: { set?: string[] },
  fn: (ctx: FourBrokers) => Promise<void>,
): Promise<void> {
  const cluster = await Cluster.start({ size: 4, running: 3, ...opts });
  let client = await cluster.client();
  try {
    await client.createTopic(topic, { partitions: 1, replicationFactor: 3 });
    const t = await cluster.waitForLeaders(client, topic, { preferred: true });
    const ctx: FourBrokers = { cluster, client, partition: t.partitions[0]! };
    try {
      await fn(ctx);
    } finally {
      client = ctx.client;
    }
  } finally {
    await client.close();
    await cluster.destroy();
  }
}

/** Until a broker no longer has the partition's data directory. */
async function waitForDropped(
  cluster: Cluster,
  nodeId: number,
  topic: string,
): Promise<void> {
  const dir = `${cluster.member(nodeId).dataDir}/${topic}-0`;
  await waitFor(`broker ${nodeId} to drop ${topic}-0`, async () => {
    try {
      await Deno.stat(dir);
      return undefined;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return true;
      throw err;
    }
  });
}

/** Until the leader reports every replica's log at its own end. */
async function waitForNoLag(client: Client, topic: string): Promise<void> {
  await waitFor("replicas caught up", async () => {
    const q = await client.describeQuorum(topic, 0);
    const ends = new Set(q.replicas.map((r) => r.logEndOffset));
    return ends.size === 1 && q.replicas.every((r) => r.voter)
      ? true
      : undefined;
  });
}

Deno.test({
  name:
    "Cluster moves a partition off its leader onto a new broker during acks=all produce, losing nothing, after transfer-leader put the leader there",
  ignore: !hasKcat,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const topic = "moving";
    await onFourBrokers(topic, {}, async (ctx) => {
      const { cluster } = ctx;
      const bootstrap = ["--bootstrap", cluster.bootstrap()];

      const transferred = await raftq([
        "cluster",
        "transfer-leader",
        topic,
        "0",
        "1",
        ...bootstrap,
      ]);
      assert.equal(transferred.code, 0, transferred.stderr);
      // The balancer keeps leadership on the new preferred leader.
      const stableUntil = performance.now() + BALANCER_ROUNDS_MS;
      while (performance.now() < stableUntil) {
        assert.equal(await leaderOf(ctx.client, topic), 1);
        await new Promise((r) => setTimeout(r, 250));
      }
      const notReplica = await raftq([
        "cluster",
        "transfer-leader",
        topic,
        "0",
        "4",
        ...bootstrap,
      ]);
      assert.equal(notReplica.code, 1);
      assert.match(notReplica.stderr, /Broker 4 is not a replica/);

      await cluster.restart(4);
      await cluster.waitForBrokers(4);
      await ctx.client.close();
      ctx.client = await KafkaClient.connect(cluster.bootstrap(), {
        retries: 0,
        requestTimeoutMs: 5_000,
      });
      const producer = new SequentialProducer(ctx.client, topic);
      await producer.ackedMore(50, 10_000);
      const moved = await raftq([
        "cluster",
        "reassign",
        topic,
        "0",
        "--replicas",
        "2,3,4",
        "--wait",
        "--timeout-ms",
        "30000",
        "--bootstrap",
        cluster.bootstrap(),
      ]);
      assert.equal(moved.code, 0, moved.stderr);
      assert.match(new TextDecoder().decode(moved.stdout), /replicas: 2,3,4/);
      // Production goes on on the new replicas.
      await producer.ackedMore(50, 20_000);
      await producer.stop();
      await waitForDropped(cluster, 1, topic);
      await cluster.waitForLeaders(ctx.client, topic, { preferred: true });
      await waitForNoLag(ctx.client, topic);

      const status = await raftq(["cluster", "status", ...bootstrap]);
      assert.equal(status.code, 0, status.stderr);
      const row = new TextDecoder().decode(status.stdout).split("\n").find((
        l,
      ) => l.startsWith(topic));
      assert.match(row ?? "", /\s2:0,3:0,4:0$/);

      const consumed = (await kcatConsume(cluster.bootstrap(), topic)).get(0) ??
        [];
      assertAckedInOrder(
        consumed.map((r) => Number(r.value.slice(2))),
        producer,
      );
      await ctx.client.close();
      await assertSameLogsSoon(cluster, topic, {
        partitions: [0],
        nodeIds: [2, 3, 4],
      });
    });
  },
});

Deno.test("Cluster moves a partition onto a new broker that must start from a snapshot and copy the data it names", async () => {
  const topic = "far";
  // A 1 MiB in-memory Raft log: the new replica must start from a snapshot.
  const set = ["raft.max_in_mem_log_size=1MiB"];
  await onFourBrokers(
    topic,
    { set },
    async ({ cluster, client, partition }) => {
      const { leader, replicas } = partition;
      const value = new Uint8Array(1000).fill(0x66);
      const batch = buildRecordBatch(
        Array.from({ length: 100 }, () => ({ value })),
      );
      for (let i = 0; i < 40; i++) {
        await client.produce(topic, 0, batch, { acks: -1 });
      }
      await cluster.restart(4);
      await cluster.waitForBrokers(4);
      const target = [leader, 4, replicas.find((r) => r !== leader)!];
      await client.reassignPartition(topic, 0, target);
      await waitFor("the move to complete", async () => {
        const moving = await client.listReassignments();
        return moving.length === 0 ? true : undefined;
      });
      const logs = cluster.logs(4);
      assert.match(logs, /named by a snapshot/);
      assert.match(logs, /caught up/);
      assert.match(cluster.logs(leader), /promoted broker 4 to voter/);
      await client.produce(topic, 0, batch, { acks: -1 });
      assert.equal(await client.listOffsets(topic, 0, -1n), 4_100n);
      await assertSameLogsSoon(cluster, topic, {
        partitions: [0],
        nodeIds: target,
      });
    },
  );
});

Deno.test("Cluster finishes a reassignment that a new partition leader resumes after the old one was killed", async () => {
  const topic = "resumed";
  await onFourBrokers(topic, {}, async (ctx) => {
    const { cluster, partition } = ctx;
    const oldLeader = partition.leader;
    const batch = buildRecordBatch([{ value: new Uint8Array(10) }]);
    await ctx.client.produce(topic, 0, batch, { acks: -1 });
    await cluster.restart(4);
    await cluster.waitForBrokers(4);
    // Broker 4 is down while the move starts: it stalls at its learner step.
    await cluster.kill9(4);
    const target = [
      4,
      ...partition.replicas.filter((r) => r !== oldLeader),
    ];
    await ctx.client.reassignPartition(topic, 0, target);
    await cluster.waitForLog(oldLeader, /added broker 4 as a learner/);
    await cluster.kill9(oldLeader);
    await ctx.client.close();
    ctx.client = await cluster.client();
    await cluster.restart(4);
    await waitFor("the move to complete", async () => {
      const moving = await ctx.client.listReassignments();
      return moving.length === 0 ? true : undefined;
    });
    // A PREFERRED election waits for leader balancing to move it to 4.
    await ctx.client.electPreferredLeader(topic, 0, { timeoutMs: 20_000 });
    const md = await cluster.waitForLeaders(ctx.client, topic, {
      preferred: true,
    });
    assert.deepEqual(md.partitions[0]!.replicas, target);
    await ctx.client.produce(topic, 0, batch, { acks: -1 });
    assert.equal(await ctx.client.listOffsets(topic, 0, -1n), 2n);
    // The old leader, back, finds it holds the partition no more.
    await cluster.restart(oldLeader);
    await waitForDropped(cluster, oldLeader, topic);
    await assertSameLogsSoon(cluster, topic, {
      partitions: [0],
      nodeIds: target,
    });
  });
});

Deno.test("Cluster cancels a stalled reassignment: the partition keeps its replicas and its leader removes the learner it added", async () => {
  const topic = "stalled";
  await onFourBrokers(topic, {}, async ({ cluster, client, partition }) => {
    const { leader, replicas } = partition;
    await cluster.restart(4);
    await cluster.waitForBrokers(4);
    await cluster.kill9(4);
    const bootstrap = ["--bootstrap", cluster.bootstrap()];
    const target = [4, ...replicas.slice(1)].join(",");
    const started = await raftq([
      "cluster",
      "reassign",
      topic,
      "0",
      "--replicas",
      target,
      ...bootstrap,
    ]);
    assert.equal(started.code, 0, started.stderr);
    await cluster.waitForLog(leader, /added broker 4 as a learner/);
    // A Kafka admin client sees the running move.
    const admin = new kafkajs.Kafka({
      brokers: cluster.bootstrap().split(","),
      logLevel: kafkajs.logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      const listed = await admin.listPartitionReassignments({
        topics: [{ topic, partitions: [0] }],
      });
      assert.deepEqual(listed.topics, [{
        name: topic,
        partitions: [{
          partition: 0,
          replicas: [4, ...replicas.slice(1), replicas[0]],
          addingReplicas: [4],
          removingReplicas: [replicas[0]],
        }],
      }]);
    } finally {
      await admin.disconnect();
    }
    const cancelled = await raftq([
      "cluster",
      "reassign",
      topic,
      "0",
      "--cancel",
      "--wait",
      ...bootstrap,
    ]);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    // Kafka's order after a cancel: the replicas the move kept, then those
    // it was removing.
    assert.deepEqual(
      (await client.metadata([topic])).topics[0]!.partitions[0]!.replicas,
      [...replicas.slice(1), replicas[0]],
    );
    // The leader undid its step: the learner it added is gone.
    assert.match(cluster.logs(leader), /removed broker 4/);
  });
});
