// End-to-end with kcat (librdkafka 2.0.2), the real client: metadata,
// produce and consume with keys, headers and timestamps, byte for byte.
import assert from "node:assert/strict";
import { KafkaClient } from "../src/client/mod.ts";
import { decodeRecordBatches } from "../src/protocol/mod.ts";
import { hasKcat, removeDir, run, startBroker } from "./harness.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test({
  name: "kcat -L lists the broker and an auto-created topic",
  ignore: !hasKcat,
  async fn() {
    const broker = await startBroker();
    try {
      const produce = await run("kcat", [
        "-b",
        broker.bootstrap,
        "-P",
        "-t",
        "listed",
      ], { stdin: enc.encode("one\n") });
      assert.equal(produce.code, 0, produce.stderr);
      const list = await run("kcat", ["-b", broker.bootstrap, "-L", "-J"]);
      assert.equal(list.code, 0, list.stderr);
      const md = JSON.parse(dec.decode(list.stdout));
      assert.equal(md.brokers.length, 1);
      assert.equal(md.brokers[0].id, 1);
      assert.equal(md.brokers[0].name, `127.0.0.1:${broker.port}`);
      const topic = md.topics.find((t: { topic: string }) =>
        t.topic === "listed"
      );
      assert.ok(topic, "auto-created topic is listed");
      assert.equal(topic.partitions.length, 1);
      assert.equal(topic.partitions[0].leader, 1);
    } finally {
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});

Deno.test({
  name: "kcat round-trips keys, headers and timestamps byte for byte",
  ignore: !hasKcat,
  async fn() {
    const broker = await startBroker();
    try {
      const lines = ["k1:v1", "k2:hello world", "k3:", "k4:ünïcödé ✓"];
      const produce = await run("kcat", [
        "-b",
        broker.bootstrap,
        "-P",
        "-t",
        "kv",
        "-K",
        ":",
        "-H",
        "h1=alpha",
        "-H",
        "h2=beta",
      ], { stdin: enc.encode(lines.join("\n") + "\n") });
      assert.equal(produce.code, 0, produce.stderr);
      const consume = await run("kcat", [
        "-b",
        broker.bootstrap,
        "-C",
        "-t",
        "kv",
        "-e",
        "-f",
        "%o|%k|%s|%h|%T\\n",
      ]);
      assert.equal(consume.code, 0, consume.stderr);
      const got = dec.decode(consume.stdout).trimEnd().split("\n");
      assert.equal(got.length, lines.length);
      const now = Date.now();
      got.forEach((row, i) => {
        const [offset, key, value, headers, ts] = row.split("|");
        const [k, v] = lines[i]!.split(":");
        assert.equal(offset, String(i));
        assert.equal(key, k);
        assert.equal(value, v);
        assert.equal(headers, "h1=alpha,h2=beta");
        assert.ok(Math.abs(Number(ts) - now) < 120_000, `timestamp ${ts}`);
      });
    } finally {
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});

Deno.test({
  name: "kcat moves 20k messages over 3 partitions and reads each back once",
  ignore: !hasKcat,
  async fn() {
    const broker = await startBroker({ set: ["topics.default_partitions=3"] });
    try {
      const count = 20_000;
      const sent: string[] = [];
      for (let i = 0; i < count; i++) {
        sent.push(`key-${i % 97}:${i}-${"x".repeat(i % 50)}-${Math.random()}`);
      }
      const produce = await run("kcat", [
        "-b",
        broker.bootstrap,
        "-P",
        "-t",
        "bulk",
        "-K",
        ":",
      ], { stdin: enc.encode(sent.join("\n") + "\n"), timeoutMs: 120_000 });
      assert.equal(produce.code, 0, produce.stderr);
      const consume = await run("kcat", [
        "-b",
        broker.bootstrap,
        "-C",
        "-t",
        "bulk",
        "-e",
        "-f",
        "%p|%o|%k:%s\\n",
      ], { timeoutMs: 120_000 });
      assert.equal(consume.code, 0, consume.stderr);
      const rows = dec.decode(consume.stdout).trimEnd().split("\n");
      assert.equal(rows.length, count);
      const indexOf = new Map(sent.map((m, i) => [m, i]));
      const byPartition = new Map<string, { offset: number; msg: string }[]>();
      for (const row of rows) {
        const [p, o, ...rest] = row.split("|");
        const list = byPartition.get(p!) ?? [];
        list.push({ offset: Number(o), msg: rest.join("|") });
        byPartition.set(p!, list);
      }
      assert.equal(byPartition.size, 3, "all three partitions used");
      for (const list of byPartition.values()) {
        // Offsets dense from 0; kcat keeps per-partition order.
        list.forEach((r, i) => assert.equal(r.offset, i));
        // Messages of one key land in one partition in the order sent.
        const order = list.map((r) => indexOf.get(r.msg)!);
        for (let i = 1; i < order.length; i++) {
          const a = sent[order[i - 1]!]!.split(":")[0];
          const b = sent[order[i]!]!.split(":")[0];
          if (a === b) assert.ok(order[i]! > order[i - 1]!);
        }
      }
      const all = rows.map((r) => r.split("|").slice(2).join("|")).sort();
      assert.deepEqual(all, [...sent].sort());
    } finally {
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});

Deno.test({
  name:
    "kcat batches compressed with gzip, snappy, lz4 and zstd pass through and decode",
  ignore: !hasKcat,
  async fn() {
    const broker = await startBroker();
    const client = await KafkaClient.connect(broker.bootstrap);
    try {
      for (const codec of ["gzip", "snappy", "lz4", "zstd"]) {
        const topic = `z-${codec}`;
        const values = Array.from(
          { length: 200 },
          // Repetitive, so every codec shrinks it: librdkafka sends a batch
          // uncompressed when compressing would not make it smaller.
          (_, i) => `${codec} message ${i} ${"abc".repeat(40 + i % 40)}`,
        );
        const produce = await run("kcat", [
          "-b",
          broker.bootstrap,
          "-P",
          "-t",
          topic,
          "-X",
          `compression.codec=${codec}`,
          "-X",
          "linger.ms=200",
        ], { stdin: enc.encode(values.join("\n") + "\n") });
        assert.equal(produce.code, 0, produce.stderr);
        const fetched = await client.fetch(topic, 0, 0n, { maxWaitMs: 0 });
        const attributes = fetched.records[21]! << 8 | fetched.records[22]!;
        assert.notEqual(attributes & 7, 0, `${codec} batch stored compressed`);
        const decoded = decodeRecordBatches(fetched.records).map((r) =>
          dec.decode(r.value!)
        );
        assert.deepEqual(decoded, values, `raftq decodes ${codec}`);
        const consume = await run("kcat", [
          "-b",
          broker.bootstrap,
          "-C",
          "-t",
          topic,
          "-e",
          "-f",
          "%s\\n",
        ]);
        assert.equal(consume.code, 0, consume.stderr);
        assert.deepEqual(
          dec.decode(consume.stdout).trimEnd().split("\n"),
          values,
          `kcat reads ${codec} back`,
        );
      }
    } finally {
      await client.close();
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});
