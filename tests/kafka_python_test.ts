// kafka-python 2.0.2 (Debian's python3-kafka, pure Python), which speaks
// Metadata v0/v1 only: its captured frames against a real broker, then the
// client itself through admin, produce, a consumer group and delete.
import assert from "node:assert/strict";
import {
  ApiKey,
  buildRecordBatch,
  decodeResponse,
} from "../src/protocol/mod.ts";
import { KafkaClient } from "../src/client/mod.ts";
import { exchange, removeDir, startBroker } from "./harness.ts";
import { hasPythonModule, runPython } from "./python.ts";

const hasKafkaPython = await hasPythonModule("kafka");

/** Captured from kafka-python 2.0.2 (client id "golden"), size prefix included. */
const GOLDEN_METADATA = [
  // api_version=(0, 9): v0, an empty topic list, which means every topic.
  { version: 0, hex: "0000001400030000000000010006676f6c64656e00000000" },
  // api_version=(0, 10, 1): v1, a null topic list.
  { version: 1, hex: "0000001400030001000000010006676f6c64656effffffff" },
];

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!.map((b) => parseInt(b, 16)));
}

Deno.test("kafka-python's captured Metadata v0 and v1 requests list every topic", async () => {
  const broker = await startBroker();
  const client = await KafkaClient.connect(broker.bootstrap);
  try {
    await client.createTopic("seen", { partitions: 3 });
    for (const { version, hex } of GOLDEN_METADATA) {
      const reply = await exchange(broker.port, fromHex(hex));
      const { correlationId, body } = decodeResponse(
        ApiKey.Metadata,
        version,
        reply,
      );
      assert.equal(correlationId, 1);
      assert.deepEqual(
        body.brokers.map((b) => [b.nodeId, b.port]),
        [[1, broker.port]],
        `v${version} brokers`,
      );
      const seen = body.topics.find((t) => t.name === "seen");
      assert.equal(seen?.partitions.length, 3, `v${version} lists every topic`);
    }
  } finally {
    client.close();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

Deno.test({
  name:
    "kafka-python creates a topic, produces, consumes in a group that resumes at its commit, and deletes it",
  ignore: !hasKafkaPython,
  async fn() {
    const broker = await startBroker();
    try {
      const r = await runPython("kafka_python_roundtrip.py", [
        broker.bootstrap,
        "py-orders",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(new TextDecoder().decode(r.stdout));
      assert.equal(out.listed, true);
      // The first consumer committed after six records; the second one,
      // in the same group, reads exactly the other four.
      assert.equal(out.first.length, 6);
      assert.deepEqual(
        [...out.first, ...out.rest].sort(),
        ["v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9"],
      );
      assert.equal(out.deleted, true);
    } finally {
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});

Deno.test({
  name:
    "kafka-python in 0.8.1 and 0.8.2 modes reads log ends with ListOffsets v0 and commits with OffsetCommit v0/v1",
  ignore: !hasKafkaPython,
  async fn() {
    const broker = await startBroker();
    const client = await KafkaClient.connect(broker.bootstrap);
    try {
      await client.createTopic("py-legacy", { partitions: 1 });
      const five = Array.from({ length: 5 }, () => ({ value: null }));
      await client.produce("py-legacy", 0, buildRecordBatch(five), {
        acks: -1,
      });
      const r = await runPython("kafka_python_legacy.py", [
        broker.bootstrap,
        "py-legacy",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(r.stdout)), {
        "0.8.1": { end: 5, begin: 0, committed: 2 },
        "0.8.2": { end: 5, begin: 0, committed: 3 },
      });
    } finally {
      client.close();
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});
