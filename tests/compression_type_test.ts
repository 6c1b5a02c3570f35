// A topic's compression.type, as Kafka's brokers honour it: the leader
// rewrites every batch that arrives in another codec (kcat sends lz4,
// kafkajs none), consumers read the batches back in the topic's codec with
// every value intact, an idempotent producer's sequence survives the
// rewrite, and an altered compression.type acts on the next batch.
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import { KafkaClient } from "../src/client/mod.ts";
import { Compression } from "../src/protocol/mod.ts";
import {
  fetchedCodecs,
  hasKcat,
  kcatProduce,
  kcatValues,
  removeDir,
  startBroker,
} from "./harness.ts";

const { Kafka, logLevel } = kafkajs;

Deno.test({
  name:
    "compression.type makes the leader store batches in the topic's codec whatever kcat and kafkajs sent, and an altered value acts on the next batch",
  ignore: !hasKcat,
  async fn() {
    const broker = await startBroker();
    const client = await KafkaClient.connect(broker.bootstrap);
    const kafka = new Kafka({
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    });
    const producer = kafka.producer({ idempotent: true });
    try {
      await client.createTopic("gz", {
        partitions: 1,
        configs: { "compression.type": "gzip", "compression.gzip.level": "9" },
      });
      await client.createTopic("zs", {
        partitions: 1,
        configs: { "compression.type": "zstd" },
      });
      await client.createTopic("plain", {
        partitions: 1,
        configs: { "compression.type": "uncompressed" },
      });
      const lines = Array.from({ length: 50 }, (_, i) => `value-${i}`);
      for (const topic of ["gz", "zs", "plain"]) {
        await kcatProduce(broker.bootstrap, topic, lines, [
          "-z",
          "lz4",
          "-X",
          "enable.idempotence=true",
        ]);
        assert.deepEqual(await kcatValues(broker.bootstrap, topic), lines);
      }
      assert.deepEqual(
        [
          ...new Set([
            ...await fetchedCodecs(client, "gz"),
            ...await fetchedCodecs(client, "zs"),
            ...await fetchedCodecs(client, "plain"),
          ]),
        ].sort(),
        [Compression.none, Compression.gzip, Compression.zstd],
      );
      assert.deepEqual(
        new Set(await fetchedCodecs(client, "zs")),
        new Set([4]),
      );

      // kafkajs sends its idempotent batches uncompressed; a second send
      // is accepted only if the stored batch kept the producer's sequence.
      await producer.connect();
      for (const value of ["kafkajs-1", "kafkajs-2"]) {
        await producer.send({ topic: "gz", messages: [{ value }] });
      }
      const consumer = kafka.consumer({ groupId: "compression-reader" });
      await consumer.connect();
      await consumer.subscribe({ topic: "gz", fromBeginning: true });
      const seen: string[] = [];
      await new Promise<void>((resolve, reject) => {
        consumer.run({
          eachMessage: ({ message }) => {
            seen.push(message.value!.toString());
            if (seen.length === lines.length + 2) resolve();
            return Promise.resolve();
          },
        }).catch(reject);
      });
      await consumer.disconnect();
      assert.deepEqual(seen, [...lines, "kafkajs-1", "kafkajs-2"]);
      assert.deepEqual(
        new Set(await fetchedCodecs(client, "gz")),
        new Set([Compression.gzip]),
      );

      await client.alterConfigs({ type: "topic", name: "gz" }, {
        set: { "compression.type": "producer" },
        remove: [],
      });
      // librdkafka sends a batch uncompressed when its codec would not
      // shrink it, so the value is long and repetitive.
      const asSent = "as-sent ".repeat(100);
      await kcatProduce(broker.bootstrap, "gz", [asSent], ["-z", "snappy"]);
      const codecs = await fetchedCodecs(client, "gz");
      assert.equal(codecs.at(-1), Compression.snappy);
      assert.equal(
        (await kcatValues(broker.bootstrap, "gz")).at(-1),
        asSent,
      );
    } finally {
      await producer.disconnect();
      await client.close();
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});
