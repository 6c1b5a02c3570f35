// Log compaction end to end: a real broker process with a short cleaner
// backoff; keyed updates through kcat (librdkafka) to a compacted topic with
// small segments, read back in full with kcat once the cleaner has run; and
// kafkajs' keyless record refused with INVALID_RECORD.
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import { KafkaClient } from "../src/client/mod.ts";
import { waitFor } from "./cluster_harness.ts";
import {
  hasKcat,
  kcatConsume,
  kcatProduce,
  removeDir,
  startBroker,
} from "./harness.ts";

const { Kafka, logLevel } = kafkajs;
const COMPACTED = {
  "cleanup.policy": "compact",
  "segment.bytes": "2048",
  "min.cleanable.dirty.ratio": "0.01",
};

Deno.test({
  name:
    "a compacted topic read in full after cleaning holds the latest value of every key and few stale ones (kcat)",
  ignore: !hasKcat,
  async fn() {
    const broker = await startBroker({
      set: ["log.cleaner_backoff_ms=200ms"],
    });
    const client = await KafkaClient.connect(broker.bootstrap);
    try {
      await client.createTopic("table", { configs: COMPACTED });
      const keys = 20;
      const rounds = 50;
      const latest = new Map<string, string>();
      for (let round = 0; round < rounds; round++) {
        const lines = [];
        for (let k = 0; k < keys; k++) {
          lines.push(`key${k}:value-${round}-${k}`);
          latest.set(`key${k}`, `value-${round}-${k}`);
        }
        await kcatProduce(broker.bootstrap, "table", lines, ["-K:"]);
      }
      const produced = keys * rounds;
      const read = await waitFor("the cleaner to compact table-0", async () => {
        const read = (await kcatConsume(broker.bootstrap, "table")).get(0)!;
        return read.length < produced / 4 ? read : undefined;
      }, { timeoutMs: 30_000 });
      const last = new Map(read.map((r) => [r.key, r.value]));
      assert.deepEqual(last, latest);
      const offsets = read.map((r) => r.offset);
      assert.deepEqual(offsets, [...offsets].sort((a, b) => Number(a - b)));
      assert.match(broker.logs(), /cleaned table-0: \d+ -> \d+ bytes/);
    } finally {
      await client.close();
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});

Deno.test({
  name:
    "a broker killed with -9 while cleaning reopens with every key's latest value and cleans on (kcat)",
  ignore: !hasKcat,
  async fn() {
    const set = ["log.cleaner_backoff_ms=100ms"];
    // Each 2 KiB segment is one chunk: a pause per chunk keeps the cleaning
    // open for seconds, so the kill lands inside it.
    let broker = await startBroker({
      set: [...set, "log.cleaner_chunk_pause_ms=300ms"],
    });
    const dataDir = broker.dataDir;
    const client = await KafkaClient.connect(broker.bootstrap);
    const latest = new Map<string, string>();
    try {
      await client.createTopic("table", { configs: COMPACTED });
      for (let round = 0; round < 40; round++) {
        const lines = [];
        for (let k = 0; k < 20; k++) {
          lines.push(`key${k}:value-${round}-${k}`);
          latest.set(`key${k}`, `value-${round}-${k}`);
        }
        await kcatProduce(broker.bootstrap, "table", lines, ["-K:"]);
      }
    } finally {
      await client.close();
    }
    // Kill while a cleaned copy is being written, before its swap.
    const cleanedFile = () =>
      [...Deno.readDirSync(`${dataDir}/table-0`)].some((e) =>
        e.name.endsWith(".cleaned")
      );
    await waitFor(
      "a cleaning to write its .cleaned file",
      () => Promise.resolve(cleanedFile() ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 20 },
    );
    await broker.kill9();
    broker = await startBroker({ dataDir, set });
    try {
      const reopened = (await kcatConsume(broker.bootstrap, "table")).get(0)!;
      assert.deepEqual(new Map(reopened.map((r) => [r.key, r.value])), latest);
      const read = await waitFor("the cleaner to compact table-0", async () => {
        const read = (await kcatConsume(broker.bootstrap, "table")).get(0)!;
        return read.length < 200 ? read : undefined;
      }, { timeoutMs: 30_000 });
      assert.deepEqual(new Map(read.map((r) => [r.key, r.value])), latest);
    } finally {
      await broker.stop();
      await removeDir(dataDir);
    }
  },
});

Deno.test("a keyless record produced to a compacted topic is refused with INVALID_RECORD (kafkajs)", async () => {
  const broker = await startBroker();
  const kafka = new Kafka({
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  const producer = kafka.producer();
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [{
        topic: "keyed",
        configEntries: [{ name: "cleanup.policy", value: "compact" }],
      }],
    });
    await producer.connect();
    await assert.rejects(
      producer.send({ topic: "keyed", messages: [{ value: "no key" }] }),
      (e: unknown) => (e as { type?: string }).type === "INVALID_RECORD",
    );
    const [ok] = await producer.send({
      topic: "keyed",
      messages: [{ key: "k", value: "v" }],
    });
    assert.equal(ok?.errorCode, 0);
  } finally {
    await producer.disconnect();
    await admin.disconnect();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});
