// OffsetDelete (v0) end to end: @platformatic/kafka's admin
// deleteConsumerGroupOffsets, raftq's client and 'raftq group delete-offsets'
// against a group with a live kafkajs consumer and then without it; the
// deletions must hold after the broker restarts and replays its offsets log.
import assert from "node:assert/strict";
import { Admin } from "@platformatic/kafka";
import kafkajs from "kafkajs";
import { KafkaClient, type PartitionOffset } from "../src/client/mod.ts";
import { raftq, removeDir, startBroker } from "./harness.ts";

const { Kafka, logLevel } = kafkajs;

/** The Kafka error names inside a @platformatic/kafka error, nested or not. */
function protocolErrorIds(err: unknown): string[] {
  const e = err as { apiId?: string; errors?: unknown[] };
  return [
    ...(e.apiId === undefined ? [] : [e.apiId]),
    ...(e.errors ?? []).flatMap(protocolErrorIds),
  ];
}

/** The partitions a group has an offset for (fetched without naming any). */
function committed(offsets: PartitionOffset[]): string[] {
  return offsets.map((o) => `${o.topic}-${o.partition}`).sort();
}

Deno.test("OffsetDelete keeps a live consumer group's subscribed topic, deletes the rest, and deletions survive a restart", async () => {
  const broker = await startBroker();
  let restarted: Awaited<ReturnType<typeof startBroker>> | undefined;
  const kafka = new Kafka({
    clientId: "raftq-e2e",
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  const consumer = kafka.consumer({ groupId: "g", sessionTimeout: 10_000 });
  const plat = new Admin({
    clientId: "plat-admin",
    bootstrapBrokers: [broker.bootstrap],
    retries: 2,
  });
  const client = await KafkaClient.connect(broker.bootstrap);
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [
        { topic: "sub", numPartitions: 2 },
        { topic: "other", numPartitions: 1 },
      ],
      waitForLeaders: true,
    });
    // Offsets within the logs, so that the consumer goes on from them
    // instead of resetting (and committing) its position.
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: "sub",
      messages: Array.from({ length: 10 }, (_, i) => ({
        value: `m${i}`,
        partition: i % 2,
      })),
    });
    await producer.disconnect();
    const seeded = [["sub", 0], ["sub", 1], ["other", 0]].map((
      [topic, partition],
    ) => ({
      topic: topic as string,
      partition: partition as number,
      offset: 3n,
    }));
    await client.commitOffsets("g", seeded);

    await consumer.connect();
    const joined = new Promise((resolve) =>
      consumer.on(consumer.events.GROUP_JOIN, resolve)
    );
    await consumer.subscribe({ topics: ["sub"] });
    await consumer.run({ eachMessage: async () => {} });
    await joined;
    assert.equal((await client.describeGroup("g")).state, "Stable");

    // The subscribed topic's partition is refused, the other one goes.
    await assert.rejects(
      plat.deleteConsumerGroupOffsets({
        groupId: "g",
        topics: [
          { name: "sub", partitionIndexes: [0] },
          { name: "other", partitionIndexes: [0] },
        ],
      }),
      (err) => {
        assert.deepEqual(protocolErrorIds(err), ["GROUP_SUBSCRIBED_TO_TOPIC"]);
        return true;
      },
    );
    assert.deepEqual(committed(await client.fetchOffsets("g")), [
      "sub-0",
      "sub-1",
    ]);
    const refused = await raftq([
      "group",
      "delete-offsets",
      "g",
      "--topic",
      "sub",
      "--bootstrap",
      broker.bootstrap,
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /GROUP_SUBSCRIBED_TO_TOPIC/);
    await assert.rejects(
      client.deleteOffsets("nobody", "sub"),
      (err: Error) => err.name === "GROUP_ID_NOT_FOUND",
    );

    // Without members nothing protects the topic's offsets.
    await consumer.disconnect();
    assert.equal((await client.describeGroup("g")).state, "Empty");
    const one = await raftq([
      "group",
      "delete-offsets",
      "g",
      "--topic",
      "sub",
      "--partition",
      "1",
      "--bootstrap",
      broker.bootstrap,
    ]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(new TextDecoder().decode(one.stdout), /sub\s+1\s+deleted/);
    assert.deepEqual(committed(await client.fetchOffsets("g")), ["sub-0"]);
    await plat.deleteConsumerGroupOffsets({
      groupId: "g",
      topics: [{ name: "sub", partitionIndexes: [0] }],
    });
    assert.deepEqual(committed(await client.fetchOffsets("g")), []);

    await client.close();
    await plat.close();
    await admin.disconnect();
    await broker.stop();
    restarted = await startBroker({ dataDir: broker.dataDir });
    const after = await KafkaClient.connect(restarted.bootstrap);
    try {
      assert.deepEqual(committed(await after.fetchOffsets("g")), []);
    } finally {
      await after.close();
    }
  } finally {
    await consumer.disconnect();
    await client.close();
    await plat.close();
    await admin.disconnect();
    await (restarted ?? broker).stop();
    await removeDir(broker.dataDir);
  }
});
