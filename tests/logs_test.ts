/**
 * log.format and log.level on a real broker process: with json every line
 * it writes to stderr is one JSON object carrying time, level, broker id
 * and message, and events about a partition carry it as fields; with
 * level warn, info events are not written.
 */
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import { removeDir, startBroker } from "./harness.ts";
import { waitFor } from "./cluster_harness.ts";

const { Kafka, logLevel } = kafkajs;

/** The broker's own stdout announcements are not log events. */
const ANNOUNCEMENT = /^raftq: broker \d+ serving /;

Deno.test("log.format json writes every event as one JSON object with its fields", async () => {
  const broker = await startBroker({
    set: ["log.format=json", "node_id=4"],
  });
  try {
    const admin = new Kafka({
      clientId: "raftq-logs",
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    // Looking for a coordinator creates the offsets topic, whose
    // partitions this broker then coordinates: events with fields.
    await admin.describeGroups(["logged"]).catch(() => {});
    await admin.disconnect();
    await waitFor(
      "a coordinating event",
      () => Promise.resolve(/coordinating/.test(broker.logs()) || undefined),
    );
    const events = broker.logs().split("\n").filter((l) =>
      l !== "" && !ANNOUNCEMENT.test(l)
    ).map((l) => JSON.parse(l));
    assert.ok(events.length >= 2, broker.logs());
    for (const e of events) {
      assert.equal(e.broker, 4);
      assert.ok(["debug", "info", "warn", "error"].includes(e.level));
      assert.ok(!Number.isNaN(Date.parse(e.time)), e.time);
      assert.equal(typeof e.msg, "string");
    }
    const coordinating = events.find((e) =>
      /^coordinating the groups/.test(e.msg)
    );
    assert.equal(coordinating.topic, "__consumer_offsets");
    assert.equal(typeof coordinating.partition, "number");
  } finally {
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

Deno.test("log.level warn leaves out the info events a broker writes at start", async () => {
  const quiet = await startBroker({ set: ["log.level=warn"] });
  const chatty = await startBroker();
  try {
    assert.match(chatty.logs(), /INFO raftq\[1\]: became the controller/);
    assert.doesNotMatch(quiet.logs(), /became the controller/);
  } finally {
    await quiet.stop();
    await chatty.stop();
    await removeDir(quiet.dataDir);
    await removeDir(chatty.dataDir);
  }
});
