// End-to-end with kafkajs 2.2.4: its admin client (create, list, offsets,
// delete) and its producer with gzip batches, read back by kcat.
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import { hasKcat, removeDir, run, startBroker } from "./harness.ts";

const { Kafka, CompressionTypes, logLevel } = kafkajs;

function client(bootstrap: string) {
  return new Kafka({
    clientId: "raftq-e2e",
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 3 },
  });
}

Deno.test("kafkajs admin creates, lists, reads offsets of and deletes topics", async () => {
  const broker = await startBroker();
  const admin = client(broker.bootstrap).admin();
  try {
    await admin.connect();
    const created = await admin.createTopics({
      topics: [{ topic: "orders", numPartitions: 4 }, { topic: "audit" }],
      waitForLeaders: true,
    });
    assert.equal(created, true);
    assert.deepEqual((await admin.listTopics()).sort(), ["audit", "orders"]);
    // A duplicate is refused with TOPIC_ALREADY_EXISTS, which kafkajs
    // reports as "not created" rather than an error.
    assert.equal(
      await admin.createTopics({ topics: [{ topic: "orders" }] }),
      false,
    );
    await assert.rejects(
      admin.createTopics({ topics: [{ topic: "bad name!" }] }),
      (err: { errors?: { type: string }[] }) => {
        assert.equal(err.errors?.[0]?.type, "INVALID_TOPIC_EXCEPTION");
        return true;
      },
    );
    const offsets = await admin.fetchTopicOffsets("orders");
    assert.equal(offsets.length, 4);
    for (const o of offsets) {
      assert.equal(o.offset, "0");
      assert.equal(o.low, "0");
      assert.equal(o.high, "0");
    }
    await admin.deleteTopics({ topics: ["audit"] });
    assert.deepEqual(await admin.listTopics(), ["orders"]);
  } finally {
    await admin.disconnect();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

Deno.test({
  name: "kafkajs gzip producer batches are read back by kcat unchanged",
  ignore: !hasKcat,
  async fn() {
    const broker = await startBroker();
    const kafka = client(broker.bootstrap);
    const admin = kafka.admin();
    const producer = kafka.producer();
    try {
      await admin.connect();
      await admin.createTopics({
        topics: [{ topic: "zipped", numPartitions: 2 }],
      });
      await producer.connect();
      const sent: string[] = [];
      for (let batch = 0; batch < 10; batch++) {
        const messages = [];
        for (let i = 0; i < 100; i++) {
          const value = `batch ${batch} message ${i} ${"z".repeat(i)}`;
          sent.push(value);
          messages.push({ key: `k${i % 7}`, value, headers: { n: String(i) } });
        }
        const acks = await producer.send({
          topic: "zipped",
          compression: CompressionTypes.GZIP,
          acks: -1,
          messages,
        });
        for (const ack of acks) assert.equal(ack.errorCode, 0);
      }
      const offsets = await admin.fetchTopicOffsets("zipped");
      const total = offsets.reduce((n, o) => n + Number(o.high), 0);
      assert.equal(total, sent.length);
      const consume = await run("kcat", [
        "-b",
        broker.bootstrap,
        "-C",
        "-t",
        "zipped",
        "-e",
        "-f",
        "%s\\n",
      ]);
      assert.equal(consume.code, 0, consume.stderr);
      const got = new TextDecoder().decode(consume.stdout).trimEnd().split(
        "\n",
      );
      assert.deepEqual(got.sort(), sent.sort());
    } finally {
      await producer.disconnect();
      await admin.disconnect();
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});
