// Consumer groups on a replicated cluster: a kafkajs consumer group keeps
// consuming when the broker coordinating it is killed with SIGKILL; the
// group finds the new coordinator (the new leader of its offsets
// partition), keeps its committed offsets, and skips no message.
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import { Cluster, waitFor } from "./cluster_harness.ts";

const { Kafka, logLevel } = kafkajs;

Deno.test("a consumer group survives kill -9 of its coordinator's broker", async () => {
  const cluster = await Cluster.start({
    set: ["groups.initial_rebalance_delay=0", "groups.offsets_partitions=4"],
  });
  const client = await cluster.client();
  const kafka = new Kafka({
    clientId: "cluster-groups",
    brokers: cluster.bootstrap().split(","),
    logLevel: logLevel.NOTHING,
    retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 2_000 },
  });
  const producer = kafka.producer();
  const consumer = kafka.consumer({
    groupId: "survivors",
    sessionTimeout: 10_000,
    heartbeatInterval: 500,
  });
  try {
    await client.createTopic("events", { partitions: 4, replicationFactor: 3 });
    await cluster.waitForLeaders(client, "events");
    await producer.connect();
    const total = 4_000;
    for (let b = 0; b < total / 200; b++) {
      await producer.send({
        topic: "events",
        acks: -1,
        messages: Array.from({ length: 200 }, (_, i) => ({
          key: `k${(b * 200 + i) % 16}`,
          value: String(b * 200 + i),
        })),
      });
    }
    const seen = new Set<string>();
    await consumer.connect();
    await consumer.subscribe({ topic: "events", fromBeginning: true });
    await consumer.run({
      autoCommitInterval: 200,
      eachMessage: async ({ message }) => {
        seen.add(message.value!.toString());
        // Slow enough that the kill lands mid-consumption.
        await new Promise((r) => setTimeout(r, 1));
      },
    });
    await waitFor(
      "a quarter consumed",
      () => Promise.resolve(seen.size >= total / 4 ? true : undefined),
    );
    const coordinator = await client.findCoordinator("survivors");
    await cluster.kill9(coordinator.nodeId);
    await waitFor(
      "every message consumed after the kill",
      () => Promise.resolve(seen.size === total ? true : undefined),
      { timeoutMs: 90_000 },
    );
    await consumer.disconnect();
    // Committed offsets survived on the new coordinator: they cover it all.
    const offsets = await waitFor("committed offsets at the end", async () => {
      const o = await client.fetchOffsets("survivors", [
        { topic: "events", partitions: [0, 1, 2, 3] },
      ]);
      const sum = o.reduce((n, p) => n + Number(p.offset), 0);
      return sum === total ? o : undefined;
    }, { timeoutMs: 30_000 });
    assert.equal(offsets.length, 4);
  } finally {
    await consumer.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await client.close();
    await cluster.destroy();
  }
});
