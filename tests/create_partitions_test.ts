// CreatePartitions (v0-3) through real admin clients: kafkajs and
// confluent-kafka (librdkafka), then kcat sees and writes the new partitions.
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import { hasKcat, removeDir, run, startBroker } from "./harness.ts";
import { hasPythonModule, runPython } from "./python.ts";

const { Kafka, logLevel } = kafkajs;
const hasConfluent = await hasPythonModule("confluent_kafka");

Deno.test("kafkajs admin raises a topic's partition count; a count that does not grow is INVALID_PARTITIONS", async () => {
  const broker = await startBroker();
  const kafka = new Kafka({
    clientId: "raftq-e2e",
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  const producer = kafka.producer();
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: "grow", numPartitions: 2 }],
      waitForLeaders: true,
    });
    await admin.createPartitions({
      topicPartitions: [{ topic: "grow", count: 5 }],
    });
    const md = await admin.fetchTopicMetadata({ topics: ["grow"] });
    assert.deepEqual(
      md.topics[0]!.partitions.map((p) => p.partitionId).sort(),
      [0, 1, 2, 3, 4],
    );
    await assert.rejects(
      admin.createPartitions({
        topicPartitions: [{ topic: "grow", count: 3 }],
      }),
      (err: { type?: string }) => err.type === "INVALID_PARTITIONS",
    );
    await assert.rejects(
      admin.createPartitions({
        topicPartitions: [{ topic: "nope", count: 3 }],
      }),
      (err: { type?: string }) => err.type === "UNKNOWN_TOPIC_OR_PARTITION",
    );
    // A new partition takes writes at once: its Raft group is led.
    await producer.connect();
    const [sent] = await producer.send({
      topic: "grow",
      messages: [{ value: "into the new one", partition: 4 }],
    });
    assert.equal(sent!.partition, 4);
    assert.equal(sent!.baseOffset, "0");
    if (hasKcat) {
      const list = await run("kcat", [
        "-b",
        broker.bootstrap,
        "-L",
        "-J",
        "-t",
        "grow",
      ]);
      assert.equal(list.code, 0, list.stderr);
      const topic = JSON.parse(new TextDecoder().decode(list.stdout)).topics[0];
      assert.equal(topic.partitions.length, 5);
    }
  } finally {
    await producer.disconnect();
    await admin.disconnect();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

Deno.test({
  name:
    "confluent-kafka create_partitions validates only when asked, raises the count, and refuses to shrink",
  ignore: !hasConfluent,
  async fn() {
    const broker = await startBroker();
    const kafka = new Kafka({
      clientId: "raftq-e2e",
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    try {
      await admin.connect();
      await admin.createTopics({
        topics: [{ topic: "py-grow", numPartitions: 3 }],
        waitForLeaders: true,
      });
      const r = await runPython("admin_create_partitions.py", [
        broker.bootstrap,
        "py-grow",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(r.stdout)), {
        validate: "ok",
        partitions_after_validate: 3,
        raise: "ok",
        shrink: "INVALID_PARTITIONS",
        partitions: 4,
      });
    } finally {
      await admin.disconnect();
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});
