// End-to-end with @platformatic/kafka 2.x (run under Deno, which reports a
// Node version it accepts): admin create/metadata/delete, a producer with
// keys and headers, ListOffsets, a low-level Fetch by topic id (v13+) and a
// group consumer.
import assert from "node:assert/strict";
import {
  Admin,
  Consumer,
  Producer,
  stringDeserializers,
  stringSerializers,
} from "@platformatic/kafka";
import { removeDir, startBroker } from "./harness.ts";

Deno.test("@platformatic/kafka admin, producer, list offsets and fetch work", async () => {
  const broker = await startBroker();
  const common = { bootstrapBrokers: [broker.bootstrap], retries: 2 };
  const admin = new Admin({ clientId: "plat-admin", ...common });
  const producer = new Producer({
    clientId: "plat-producer",
    serializers: stringSerializers,
    ...common,
  });
  const consumer = new Consumer({
    clientId: "plat-consumer",
    groupId: "unused",
    ...common,
  });
  try {
    await admin.createTopics({ topics: ["plat"], partitions: 3, replicas: 1 });
    const md = await admin.metadata({ topics: ["plat"] });
    const topic = md.topics.get("plat");
    assert.ok(topic, "metadata names the topic");
    assert.equal(topic.partitionsCount, 3);
    assert.match(topic.id, /^[0-9a-f-]{32,36}$/);
    assert.notEqual(topic.id.replaceAll("-", ""), "0".repeat(32));

    const sent = Array.from({ length: 30 }, (_, i) => ({
      topic: "plat",
      key: `key-${i}`,
      value: `value-${i}`,
      partition: i % 3,
      headers: new Map([["index", String(i)]]),
    }));
    await producer.send({ messages: sent, acks: -1 });

    const offsets = await consumer.listOffsets({ topics: ["plat"] });
    assert.deepEqual(offsets.get("plat"), [10n, 10n, 10n]);

    const response = await consumer.fetch({
      node: 1,
      topics: [{
        topicId: topic.id,
        partitions: [{
          partition: 1,
          fetchOffset: 0n,
          partitionMaxBytes: 1 << 20,
          currentLeaderEpoch: -1,
          lastFetchedEpoch: -1,
        }],
      }],
      maxWaitTime: 100,
    });
    const partition = response.responses[0]!.partitions[0]!;
    assert.equal(partition.errorCode, 0);
    assert.equal(partition.highWatermark, 10n);
    const values = (partition.records ?? []).flatMap((batch) =>
      batch.records.map((r) => r.value?.toString())
    );
    assert.deepEqual(
      values,
      sent.filter((m) => m.partition === 1).map((m) => m.value),
    );

    assert.deepEqual(await admin.listTopics(), ["plat"]);
    await admin.deleteTopics({ topics: ["plat"] });
    assert.deepEqual(await admin.listTopics(), []);
  } finally {
    await consumer.close(true);
    await producer.close(true);
    await admin.close();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

Deno.test("@platformatic/kafka group consumer reads every message once", async () => {
  const broker = await startBroker({
    set: ["groups.initial_rebalance_delay=0"],
  });
  const common = { bootstrapBrokers: [broker.bootstrap], retries: 5 };
  const admin = new Admin({ clientId: "plat-admin", ...common });
  const producer = new Producer({
    clientId: "plat-producer",
    serializers: stringSerializers,
    ...common,
  });
  const consumer = new Consumer({
    clientId: "plat-group",
    groupId: "plat-readers",
    deserializers: stringDeserializers,
    ...common,
  });
  try {
    await admin.createTopics({
      topics: ["plat-g"],
      partitions: 2,
      replicas: 1,
    });
    const sent = Array.from({ length: 100 }, (_, i) => `g-${i}`);
    await producer.send({
      messages: sent.map((value, i) => ({
        topic: "plat-g",
        value,
        partition: i % 2,
      })),
      acks: -1,
    });
    const stream = await consumer.consume({
      topics: ["plat-g"],
      mode: "earliest",
      autocommit: true,
      sessionTimeout: 10_000,
      heartbeatInterval: 500,
    });
    const got: string[] = [];
    for await (const message of stream) {
      got.push(String(message.value));
      if (got.length === sent.length) break;
    }
    await stream.close();
    assert.deepEqual(got.sort(), [...sent].sort());
  } finally {
    await consumer.close(true);
    await producer.close(true);
    await admin.close();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});
