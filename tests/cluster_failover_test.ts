// Failover on a 3-broker replicated cluster: a partition leader and the
// controller's leader are killed with SIGKILL while the cluster is in use.
import assert from "node:assert/strict";
import { KafkaClient } from "../src/client/mod.ts";
import { buildRecordBatch, decodeRecordBatches } from "../src/protocol/mod.ts";
import {
  assertAckedInOrder,
  assertSameLogsSoon,
  Cluster,
  SequentialProducer,
  waitFor,
} from "./cluster_harness.ts";
import { hasKcat, kcatConsume } from "./harness.ts";

const encoder = new TextEncoder();

Deno.test({
  name:
    "Cluster keeps every acknowledged message in order when a partition leader is killed mid-produce, and the restarted broker catches up",
  ignore: !hasKcat,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const topic = "failover";
    const cluster = await Cluster.start();
    let client = await cluster.client();
    try {
      await client.createTopic(topic, { partitions: 1, replicationFactor: 3 });
      const before = await cluster.waitForLeaders(client, topic, {
        preferred: true,
      });
      const victim = before.partitions[0]!.leader;
      await client.close();
      // No retries inside the client: the producer sees every failed attempt.
      client = await KafkaClient.connect(cluster.bootstrap(), {
        retries: 0,
        requestTimeoutMs: 5_000,
      });
      const producer = new SequentialProducer(client, topic);
      await producer.ackedMore(50, 10_000);
      await cluster.kill9(victim);
      const killedAt = producer.acked.length;
      // Production resumes on a new leader.
      await producer.ackedMore(50, 20_000);
      await cluster.restart(victim);
      await producer.ackedMore(50, 20_000);
      // The restarted broker is the preferred leader: once leadership is
      // back on it, it has every entry that the others committed.
      await cluster.waitForLeaders(client, topic, {
        preferred: true,
        timeoutMs: 20_000,
      });
      await producer.ackedMore(20, 10_000);
      await producer.stop();
      assert.ok(producer.acked.length > killedAt + 100);

      const consumed = (await kcatConsume(cluster.bootstrap(), topic)).get(0) ??
        [];
      const values = consumed.map((r) => Number(r.value.slice(2)));
      assertAckedInOrder(values, producer);

      await client.close();
      await assertSameLogsSoon(cluster, topic, { partitions: [0] });
    } finally {
      await client.close();
      await cluster.destroy();
    }
  },
});

Deno.test({
  name:
    "Cluster elects a new controller after the controller's broker is killed, naming a live broker as controller in Metadata meanwhile, fails the dead broker because its port refuses connections, and a topic created then works",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await Cluster.start();
    let client = await cluster.client();
    try {
      const controller = (await client.describeCluster()).controllerId;
      assert.ok(controller >= 1 && controller <= 3);
      await client.close();
      await cluster.kill9(controller);
      client = await cluster.client();
      // While the controller group elects, Metadata still names a listed
      // broker (kafkajs sends admin requests and InitProducerId there).
      const unlisted: number[] = [];
      // The new controller marks the dead broker failed once it missed a
      // heartbeat and its port refuses connections (well before a whole
      // session of silence); new placements then use the live brokers only.
      const md = await waitFor(
        "a new controller and 2 live brokers",
        async () => {
          const [m, d] = await Promise.all([
            client.metadata([]),
            client.describeCluster(),
          ]);
          if (!m.brokers.some((b) => b.nodeId === m.controllerId)) {
            unlisted.push(m.controllerId);
          }
          return d.controllerId >= 0 && d.controllerId !== controller &&
              d.brokers.length === 2
            ? d
            : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 20 },
      );
      assert.deepEqual(unlisted, [], "controllers Metadata named");
      assert.ok(!md.brokers.some((b) => b.nodeId === controller));
      assert.match(
        cluster.logs(md.controllerId),
        new RegExp(
          `broker ${controller} missed a heartbeat and its Kafka port refuses connections: failed`,
        ),
      );

      await client.createTopic("after", {
        partitions: 2,
        replicationFactor: 2,
      });
      const t = await cluster.waitForLeaders(client, "after");
      for (const p of t.partitions) {
        assert.ok(!p.replicas.includes(controller), `replicas ${p.replicas}`);
      }
      for (const p of [0, 1]) {
        const value = encoder.encode(`after-${p}`);
        const { baseOffset } = await client.produce(
          "after",
          p,
          buildRecordBatch([{ value }]),
          { acks: -1 },
        );
        assert.equal(baseOffset, 0n);
        const res = await client.fetch("after", p, 0n, { maxWaitMs: 0 });
        const records = decodeRecordBatches(res.records);
        assert.deepEqual(records.map((r) => r.value), [value]);
      }
    } finally {
      await client.close();
      await cluster.destroy();
    }
  },
});
