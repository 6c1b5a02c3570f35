// ListOffsets by timestamp answers a record, not the batch holding it: two
// records of one batch (timestamps 1234 and 999999999999, Kafka's example),
// looked up by kafkajs and by kcat (librdkafka).
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import { hasKcat, removeDir, run, startBroker } from "./harness.ts";

const { Kafka, logLevel } = kafkajs;
const LATE = 999_999_999_999;

Deno.test("ListOffsets by timestamp answers the first record at or after it, inside one batch", async () => {
  const broker = await startBroker();
  const kafka = new Kafka({
    clientId: "raftq-e2e",
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  const producer = kafka.producer();
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: "stamps" }],
      waitForLeaders: true,
    });
    await producer.connect();
    // One send to one partition is one batch.
    await producer.send({
      topic: "stamps",
      messages: [
        { value: "early", timestamp: "1234" },
        { value: "late", timestamp: String(LATE) },
      ],
    });
    const at = async (ts: number) =>
      (await admin.fetchTopicOffsetsByTimestamp("stamps", ts))[0]?.offset;
    assert.equal(await at(1000), "0");
    assert.equal(await at(1234), "0");
    assert.equal(await at(1235), "1");
    assert.equal(await at(LATE), "1");
    // Past every record: the end of the log (kafkajs maps -1 to it).
    assert.equal(await at(LATE + 1), "2");

    if (hasKcat) {
      const q = await run("kcat", [
        "-b",
        broker.bootstrap,
        "-Q",
        "-t",
        `stamps:0:${LATE}`,
      ]);
      assert.equal(q.code, 0, q.stderr);
      assert.match(new TextDecoder().decode(q.stdout), /offset 1\b/);
    }
  } finally {
    await producer.disconnect();
    await admin.disconnect();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});
