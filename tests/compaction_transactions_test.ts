// Log compaction of a topic written in transactions, end to end: kafkajs
// commits a value for each key, then aborts a transaction that overwrote
// them all. Once the cleaner has run, kcat reading with read_uncommitted
// (which drops nothing itself) finds the committed values and none of the
// aborted ones, and read_committed kafkajs consumers see the committed
// values before and after a restart: the aborted records can neither
// survive compaction nor shadow what was committed.
import assert from "node:assert/strict";
import { waitFor } from "./cluster_harness.ts";
import {
  hasKcat,
  kcatConsume,
  removeDir,
  restartBroker,
  startBroker,
} from "./harness.ts";
import { patientKafka, transactionalProducer } from "./transactions_harness.ts";

const TOPIC = "txn-table";
const KEYS = Array.from({ length: 10 }, (_, k) => `key${k}`);

Deno.test({
  name:
    "compaction drops an aborted transaction's records and keeps the committed values they overwrote (kafkajs, kcat)",
  ignore: !hasKcat,
  async fn() {
    const settings = [
      "log.cleaner_backoff_ms=200ms",
      "groups.initial_rebalance_delay=0",
    ];
    let broker = await startBroker({ set: settings });
    let kafka = patientKafka("txn-compaction", broker.port);
    const admin = kafka.admin();
    const producer = transactionalProducer(kafka, "txn-compaction");
    const plain = kafka.producer();
    const readCommitted = async (groupId: string) => {
      const consumer = kafka.consumer({ groupId });
      const seen = new Map<string, string>();
      try {
        await consumer.connect();
        await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
        await consumer.run({
          eachMessage: ({ message }) => {
            seen.set(message.key!.toString(), message.value!.toString());
            return Promise.resolve();
          },
        });
        await waitFor(
          `${groupId} to read every key`,
          () => Promise.resolve(seen.size === KEYS.length + 1 || undefined),
        );
      } finally {
        await consumer.disconnect();
      }
      return seen;
    };
    try {
      await admin.connect();
      await admin.createTopics({
        topics: [{
          topic: TOPIC,
          configEntries: [
            { name: "cleanup.policy", value: "compact" },
            { name: "segment.bytes", value: "2048" },
            { name: "min.cleanable.dirty.ratio", value: "0.01" },
          ],
        }],
      });
      await producer.connect();
      await plain.connect();
      const committed = await producer.transaction();
      await committed.send({
        topic: TOPIC,
        messages: KEYS.map((key) => ({ key, value: "committed" })),
      });
      await committed.commit();
      const aborted = await producer.transaction();
      await aborted.send({
        topic: TOPIC,
        messages: KEYS.map((key) => ({ key, value: "aborted" })),
      });
      await aborted.abort();
      // Plain updates of one key roll segments, so that both
      // transactions end up in closed, cleanable ones.
      for (let i = 0; i < 60; i++) {
        await plain.send({
          topic: TOPIC,
          messages: [{ key: "filler", value: `filler-${i}`.padEnd(100, ".") }],
        });
      }
      const cleaned = await waitFor(
        "the cleaner to compact the topic",
        async () => {
          const all = (await kcatConsume(broker.bootstrap, TOPIC, [
            "-X",
            "isolation.level=read_uncommitted",
          ])).get(0) ?? [];
          return all.filter((r) => r.key === "filler").length < 60
            ? all
            : undefined;
        },
        { timeoutMs: 30_000 },
      );
      assert.deepEqual(
        cleaned.filter((r) => r.value === "aborted"),
        [],
        "no aborted record is left",
      );
      assert.deepEqual(
        cleaned.filter((r) => r.value === "committed").map((r) => r.key),
        KEYS,
      );
      const expected = new Map(KEYS.map((key) => [key, "committed"]));
      expected.set("filler", `filler-59`.padEnd(100, "."));
      assert.deepEqual(await readCommitted("before-restart"), expected);

      await producer.disconnect();
      await plain.disconnect();
      await admin.disconnect();
      broker = await restartBroker(broker, { set: settings });
      kafka = patientKafka("txn-compaction", broker.port);
      assert.deepEqual(await readCommitted("after-restart"), expected);
    } finally {
      await producer.disconnect();
      await plain.disconnect();
      await admin.disconnect();
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});
