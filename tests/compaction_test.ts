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

Deno.test({
  name:
    "kafkajs keyed updates with deletes: a consumer stopped mid-log resumes after cleaning with every latest value, and tombstones stay for delete.retention.ms, then go",
  ignore: !hasKcat,
  async fn() {
    const broker = await startBroker({
      set: ["log.cleaner_backoff_ms=200ms", "groups.initial_rebalance_delay=0"],
    });
    const kafka = new Kafka({
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    const producer = kafka.producer();
    const latest = new Map<string, string | null>();
    const send = async (round: number, keys: number[], deleted = false) => {
      const messages = keys.map((k) => ({
        key: `key${k}`,
        value: deleted ? null : `value-${round}-${k}`,
      }));
      for (const m of messages) latest.set(m.key, m.value);
      await producer.send({ topic: "table", messages });
    };
    const all = [...Array(20).keys()];
    // What the resumed consumer has seen, applied in offset order.
    const seen = new Map<string, string | null>();
    const consume = async (until: (offset: bigint) => boolean) => {
      const consumer = kafka.consumer({ groupId: "reader" });
      await consumer.connect();
      await consumer.subscribe({ topic: "table", fromBeginning: true });
      let done!: () => void;
      const finished = new Promise<void>((resolve) => (done = resolve));
      let stopped = false;
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ message }) => {
          if (stopped) return;
          const offset = BigInt(message.offset);
          seen.set(message.key!.toString(), message.value?.toString() ?? null);
          if (until(offset)) {
            stopped = true;
            await consumer.commitOffsets([{
              topic: "table",
              partition: 0,
              offset: String(offset + 1n),
            }]);
            done();
          }
        },
      });
      await finished;
      await consumer.disconnect();
    };
    try {
      await admin.connect();
      await admin.createTopics({
        topics: [{
          topic: "table",
          configEntries: Object.entries({
            ...COMPACTED,
            "delete.retention.ms": "8000",
          }).map(([name, value]) => ({ name, value })),
        }],
      });
      await producer.connect();
      for (let round = 0; round < 20; round++) await send(round, all);
      // Stopped a quarter of the way in: everything after it gets cleaned.
      await consume((offset) => offset >= 99n);
      await send(20, all.slice(0, 5), true);
      for (let round = 21; round < 30; round++) await send(round, all.slice(5));
      const produced = 20 * 20 + 5 + 9 * 15;
      const full = () =>
        kcatConsume(broker.bootstrap, "table", ["-Z"]).then((r) =>
          r.get(0) ?? []
        );
      const compacted = await waitFor(
        "the cleaner to compact table-0",
        async () => {
          const read = await full();
          return read.length < produced / 4 ? read : undefined;
        },
        { timeoutMs: 30_000 },
      );
      const deletedKeys = all.slice(0, 5).map((k) => `key${k}`);
      assert.ok(
        deletedKeys.every((key) =>
          compacted.some((r) => r.key === key && r.value === "NULL")
        ),
        "tombstones are kept within delete.retention.ms",
      );
      const end = BigInt(produced - 1);
      await consume((offset) => offset >= end);
      assert.deepEqual(seen, latest, "the resumed consumer's view");
      const after = await waitFor("the tombstones to be removed", async () => {
        const read = await full();
        return read.some((r) => deletedKeys.includes(r.key)) ? undefined : read;
      }, { timeoutMs: 30_000 });
      const live = new Map([...latest].filter(([, v]) => v !== null));
      assert.deepEqual(new Map(after.map((r) => [r.key, r.value])), live);
    } finally {
      await producer.disconnect();
      await admin.disconnect();
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});

Deno.test("a group committing 1,000 times to 50 partitions (keys rewritten as Schema Registry does) stays small on disk in a compacted __consumer_offsets and reloads its latest offsets after a restart", async () => {
  const offsetsLayout = [
    "groups.offsets_partitions=1",
    "groups.offsets_segment_size=16KiB",
  ];
  const set = [...offsetsLayout, "log.cleaner_backoff_ms=200ms"];
  // The commits are made with the cleaner held off, so that what they wrote
  // can be measured whole before it cleans.
  let broker = await startBroker({
    set: [...offsetsLayout, "log.cleaner_backoff_ms=1h"],
  });
  const dataDir = broker.dataDir;
  const partitions = 50;
  const commits = 1000;
  let client = await KafkaClient.connect(broker.bootstrap);
  const offsetsDir = `${dataDir}/__consumer_offsets-0`;
  const logBytes = () =>
    [...Deno.readDirSync(offsetsDir)]
      .filter((e) => e.name.endsWith(".log"))
      .reduce((n, e) => n + Deno.statSync(`${offsetsDir}/${e.name}`).size, 0);
  try {
    await client.createTopic("events", { partitions });
    for (let c = 1; c <= commits; c++) {
      await client.commitOffsets(
        "busy",
        [...Array(partitions).keys()].map((partition) => ({
          topic: "events",
          partition,
          offset: BigInt(c * 1000 + partition),
        })),
      );
    }
    await client.close();
    await broker.stop();
    const written = logBytes();
    broker = await startBroker({ dataDir, set });
    // Each commit writes a record per partition; once cleaned, little more
    // than the latest 50 (plus the active segment) is left. The cleaner logs
    // after its pass over every partition, so the files shrink first.
    await waitFor(
      "the cleaner to compact __consumer_offsets-0 and say so",
      () =>
        Promise.resolve(
          logBytes() < written / 20 &&
            /cleaned __consumer_offsets-0: /.test(broker.logs())
            ? true
            : undefined,
        ),
      { timeoutMs: 30_000 },
    );
    await broker.stop();
    broker = await startBroker({ dataDir, set });
    client = await KafkaClient.connect(broker.bootstrap);
    const offsets = await client.fetchOffsets("busy", [{
      topic: "events",
      partitions: [...Array(partitions).keys()],
    }]);
    assert.deepEqual(
      offsets.map((o) => [o.partition, o.offset]),
      [...Array(partitions).keys()].map((
        p,
      ) => [p, BigInt(commits * 1000 + p)]),
    );
  } finally {
    await client.close();
    await broker.stop();
    await removeDir(dataDir);
  }
});

Deno.test("a __consumer_offsets without cleanup.policy, as raftq made it before compaction, is made compacted on the next start", async () => {
  let broker = await startBroker();
  const dataDir = broker.dataDir;
  let client = await KafkaClient.connect(broker.bootstrap);
  const offsetsTopic = { type: "topic" as const, name: "__consumer_offsets" };
  const policy = async () =>
    (await client.describeConfigs(offsetsTopic)).find((c) =>
      c.name === "cleanup.policy"
    )?.value;
  try {
    await client.createTopic("events");
    const committed = [{ topic: "events", partition: 0, offset: 7n }];
    await client.commitOffsets("g", committed);
    assert.equal(await policy(), "compact");
    await client.alterConfigs(offsetsTopic, {
      set: {},
      remove: ["cleanup.policy"],
    });
    assert.equal(await policy(), "delete", "the old layout's default");
    await client.close();
    await broker.stop();
    broker = await startBroker({ dataDir });
    client = await KafkaClient.connect(broker.bootstrap);
    assert.deepEqual(
      await client.fetchOffsets("g", [{ topic: "events", partitions: [0] }]),
      committed,
    );
    await waitFor(
      "cleanup.policy=compact on __consumer_offsets",
      async () => (await policy()) === "compact" ? true : undefined,
    );
    assert.match(broker.logs(), /__consumer_offsets is now compacted/);
  } finally {
    await client.close();
    await broker.stop();
    await removeDir(dataDir);
  }
});
