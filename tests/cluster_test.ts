// End-to-end on a 3-broker replicated cluster (static discovery, loopback):
// kcat and kafkajs produce with acks=all, kcat reads every partition back,
// and after a clean stop every replica holds byte-identical segment files.
// Topic admin errors come back as the Kafka error codes clients expect.
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import { KafkaError } from "../src/client/mod.ts";
import { ErrorCode } from "../src/protocol/mod.ts";
import { assertSameLogsSoon, Cluster } from "./cluster_harness.ts";
import { hasKcat, kcatConsume, run } from "./harness.ts";

const { Kafka, logLevel } = kafkajs;

const TOPIC = "replicated";
const PARTITIONS = 6;
const PER_PRODUCER = 15_000;
const KAFKAJS_CHUNK = 1_000;

function kcatInput(prefix: string, count: number): Uint8Array {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) lines.push(`k${i}:${prefix}-${i}\n`);
  return new TextEncoder().encode(lines.join(""));
}

Deno.test({
  name:
    "Cluster replicates 30k acks=all messages from kcat and kafkajs to identical logs on all 3 brokers",
  ignore: !hasKcat,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await Cluster.start();
    try {
      const client = await cluster.client();
      try {
        await client.createTopic(TOPIC, {
          partitions: PARTITIONS,
          replicationFactor: 3,
        });
        // A new partition's first leader may be any replica; the controller
        // moves leadership to the preferred one seconds later. kafkajs 2.2.4
        // loses messages when a leader moves to a broker that already
        // answered within the same send() (its sendMessages retries per
        // broker, not per partition), so produce once leaders have settled.
        const topic = await cluster.waitForLeaders(client, TOPIC, {
          preferred: true,
        });
        for (const p of topic.partitions) {
          assert.equal(
            p.replicas.length,
            3,
            `replicas of partition ${p.partition}`,
          );
        }
        // Placement spreads preferred leaders: every broker leads some.
        assert.equal(new Set(topic.partitions.map((p) => p.leader)).size, 3);
      } finally {
        await client.close();
      }

      const kcat = run("kcat", [
        "-b",
        cluster.bootstrap(),
        "-P",
        "-t",
        TOPIC,
        "-K",
        ":",
        "-X",
        "acks=all",
        "-X",
        "linger.ms=5",
      ], { stdin: kcatInput("kcat", PER_PRODUCER), timeoutMs: 60_000 });
      const producer = new Kafka({
        clientId: "raftq-cluster-e2e",
        brokers: cluster.bootstrap().split(","),
        logLevel: logLevel.NOTHING,
      }).producer();
      await producer.connect();
      try {
        for (let start = 0; start < PER_PRODUCER; start += KAFKAJS_CHUNK) {
          const messages = [];
          for (let i = start; i < start + KAFKAJS_CHUNK; i++) {
            messages.push({ key: `j${i}`, value: `kafkajs-${i}` });
          }
          await producer.send({ topic: TOPIC, acks: -1, messages });
        }
      } finally {
        await producer.disconnect();
      }
      const produced = await kcat;
      assert.equal(produced.code, 0, produced.stderr);

      const consumed = await kcatConsume(cluster.bootstrap(), TOPIC);
      const seen = new Set<string>();
      let total = 0;
      for (const [partition, records] of consumed) {
        // Offsets are dense from 0, and each producer's messages keep
        // their order within a partition.
        records.forEach((r, i) => assert.equal(r.offset, BigInt(i)));
        for (const prefix of ["kcat", "kafkajs"]) {
          const order = records.filter((r) => r.value.startsWith(`${prefix}-`))
            .map((r) => Number(r.value.slice(prefix.length + 1)));
          assert.deepEqual(
            order,
            [...order].sort((a, b) => a - b),
            `${prefix} order in partition ${partition}`,
          );
        }
        for (const r of records) seen.add(r.value);
        total += records.length;
      }
      assert.equal(consumed.size, PARTITIONS, "every partition has messages");
      assert.equal(total, 2 * PER_PRODUCER, "no message twice");
      for (let i = 0; i < PER_PRODUCER; i++) {
        assert.ok(seen.has(`kcat-${i}`), `kcat-${i} consumed`);
        assert.ok(seen.has(`kafkajs-${i}`), `kafkajs-${i} consumed`);
      }

      await assertSameLogsSoon(cluster, TOPIC, {
        partitions: Array.from({ length: PARTITIONS }, (_, p) => p),
      });
    } finally {
      await cluster.destroy();
    }
  },
});

Deno.test({
  name:
    "Cluster refuses RF 4 on 3 brokers, a duplicate topic and a bad name with Kafka's error codes",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await Cluster.start();
    const client = await cluster.client();
    try {
      const refused = async (
        name: string,
        opts: { partitions: number; replicationFactor: number },
        code: number,
      ) => {
        await assert.rejects(
          client.createTopic(name, opts),
          (err: unknown) => {
            assert.ok(err instanceof KafkaError, String(err));
            assert.equal(err.code, code, String(err));
            return true;
          },
        );
      };
      await refused(
        "too-many-replicas",
        { partitions: 1, replicationFactor: 4 },
        ErrorCode.INVALID_REPLICATION_FACTOR,
      );
      await client.createTopic("once", { partitions: 2, replicationFactor: 3 });
      await refused(
        "once",
        { partitions: 2, replicationFactor: 3 },
        ErrorCode.TOPIC_ALREADY_EXISTS,
      );
      await refused(
        "bad name!",
        { partitions: 1, replicationFactor: 1 },
        ErrorCode.INVALID_TOPIC_EXCEPTION,
      );
      // The refused requests left nothing behind.
      const md = await client.metadata(null);
      assert.deepEqual(md.topics.map((t) => t.name).sort(), ["once"]);
    } finally {
      await client.close();
      await cluster.destroy();
    }
  },
});
