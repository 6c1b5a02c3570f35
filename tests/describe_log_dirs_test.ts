// DescribeLogDirs (v0-4). @platformatic/kafka (v4, one request per broker)
// sees the broker's data dir with the partitions it hosts, their sizes
// growing as records arrive; on a 3-broker cluster each broker lists only
// its own replicas. Every version, null topics included, is then sent as a
// raw frame. kafkajs, kafka-python 2.0.2 and confluent-kafka 1.7.0 have no
// DescribeLogDirs.
import assert from "node:assert/strict";
import { statfsSync } from "node:fs";
import { Admin, type BrokerLogDirDescription } from "@platformatic/kafka";
import { KafkaClient } from "../src/client/mod.ts";
import {
  ApiKey,
  buildRecordBatch,
  decodeResponse,
  encodeRequest,
} from "../src/protocol/mod.ts";
import { Cluster, waitFor } from "./cluster_harness.ts";
import { exchange, removeDir, startBroker } from "./harness.ts";

function batchOf(count: number): Uint8Array {
  return buildRecordBatch(
    Array.from(
      { length: count },
      (_, i) => ({ value: new TextEncoder().encode(`value-${i}`) }),
    ),
  );
}

/** topic-partition => partitionSize, for one broker's answer. */
function sizes(d: BrokerLogDirDescription): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const r of d.results) {
    for (const t of r.topics) {
      for (const p of t.partitions) {
        out.set(`${t.name}-${p.partitionIndex}`, p.partitionSize);
        assert.equal(p.offsetLag, 0n, `${t.name}-${p.partitionIndex} lag`);
        assert.equal(p.isFutureKey, false);
      }
    }
  }
  return out;
}

Deno.test("@platformatic/kafka describeLogDirs lists the data dir with the hosted partitions, whose sizes grow with each produce", async () => {
  const broker = await startBroker();
  const client = await KafkaClient.connect(broker.bootstrap);
  const admin = new Admin({
    clientId: "plat-admin",
    bootstrapBrokers: [broker.bootstrap],
    retries: 0,
  });
  try {
    await client.createTopic("dirs", { partitions: 2 });
    await client.createTopic("other", { partitions: 1 });
    const describe = async () => {
      const brokers = await admin.describeLogDirs({
        topics: [
          { name: "dirs", partitions: [0, 1, 7] },
          { name: "nope", partitions: [0] },
        ],
      });
      assert.equal(brokers.length, 1);
      const [only] = brokers;
      assert.equal(only!.results.length, 1);
      const dir = only!.results[0]!;
      assert.equal(dir.logDir, await Deno.realPath(broker.dataDir));
      // The volume's own figures, as df reports them.
      const fs = statfsSync(broker.dataDir, { bigint: true });
      assert.equal(dir.totalBytes, fs.blocks * fs.bsize);
      assert.ok(dir.usableBytes > 0n && dir.usableBytes <= dir.totalBytes);
      return sizes(only!);
    };
    // Partition 7 and topic "nope" are not hosted, "other" not asked for.
    const empty = await describe();
    assert.deepEqual([...empty.keys()], ["dirs-0", "dirs-1"]);
    assert.deepEqual([...empty.values()], [0n, 0n]);

    await client.produce("dirs", 0, batchOf(10));
    const once = await describe();
    assert.ok(once.get("dirs-0")! > 0n, "a produce adds bytes");
    assert.equal(once.get("dirs-1"), 0n);

    await client.produce("dirs", 0, batchOf(10));
    const twice = await describe();
    assert.ok(twice.get("dirs-0")! > once.get("dirs-0")!, "and more of them");
  } finally {
    await admin.close();
    await client.close();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

/** Sends one DescribeLogDirs in `version` and decodes the answer. */
async function describeLogDirsAt(
  port: number,
  version: number,
  topics: { topic: string; partitions: number[] }[] | null,
) {
  const reply = await exchange(
    port,
    encodeRequest(ApiKey.DescribeLogDirs, version, {
      correlationId: 3,
      clientId: "raftq-e2e",
    }, { topics }),
  );
  return decodeResponse(ApiKey.DescribeLogDirs, version, reply).body;
}

Deno.test("DescribeLogDirs v0-4 with null topics lists every hosted partition and its size", async () => {
  const broker = await startBroker();
  const client = await KafkaClient.connect(broker.bootstrap);
  try {
    await client.createTopic("all-a", { partitions: 2 });
    await client.createTopic("all-b", { partitions: 1 });
    await client.produce("all-b", 0, batchOf(3));
    const logDir = await Deno.realPath(broker.dataDir);
    for (let version = 0; version <= 4; version++) {
      const body = await describeLogDirsAt(broker.port, version, null);
      assert.equal(body.results.length, 1, `v${version}`);
      const dir = body.results[0]!;
      assert.equal(dir.errorCode, 0);
      assert.equal(dir.logDir, logDir);
      const listed = dir.topics.flatMap((t) =>
        t.partitions.map((p) => [`${t.name}-${p.partitionIndex}`, p] as const)
      );
      assert.deepEqual(
        listed.map(([name]) => name),
        ["all-a-0", "all-a-1", "all-b-0"],
        `v${version}`,
      );
      const [, written] = listed[2]!;
      assert.ok(written.partitionSize > 0n, `v${version} size`);
      // The on-disk log holds at least the batch sent.
      assert.ok(written.partitionSize >= BigInt(batchOf(3).length));
    }
  } finally {
    await client.close();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

Deno.test({
  name:
    "@platformatic/kafka describeLogDirs on 3 brokers: each lists only the replicas it hosts, a replicated partition everywhere",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await Cluster.start();
    const admin = new Admin({
      clientId: "plat-admin",
      bootstrapBrokers: cluster.bootstrap().split(","),
      retries: 2,
    });
    try {
      const client = await cluster.client();
      try {
        await client.createTopic("single", {
          partitions: 3,
          replicationFactor: 1,
        });
        await client.createTopic("copied", {
          partitions: 1,
          replicationFactor: 3,
        });
        await client.produce("copied", 0, batchOf(20));
        const md = await client.metadata(["single"]);
        const hostOf = new Map(
          md.topics[0]!.partitions.map((p) => [p.partition, p.replicas[0]!]),
        );
        const topics = [
          { name: "single", partitions: [0, 1, 2] },
          { name: "copied", partitions: [0] },
        ];
        // Followers apply the produce a little after the leader answered.
        const byBroker = await waitFor(
          "every replica of copied-0",
          async () => {
            const all = await admin.describeLogDirs({ topics });
            const seen = new Map(all.map((d) => [d.broker, sizes(d)]));
            const copied = [...seen.values()].map((s) => s.get("copied-0"));
            return seen.size === 3 && copied.every((n) => n === copied[0]) &&
                copied[0]! > 0n
              ? seen
              : undefined;
          },
        );
        for (const [nodeId, listed] of byBroker) {
          const own = [0, 1, 2].filter((p) => hostOf.get(p) === nodeId).map(
            (p) => `single-${p}`,
          );
          assert.deepEqual(
            [...listed.keys()].filter((k) => k.startsWith("single-")),
            own,
            `broker ${nodeId}`,
          );
        }
      } finally {
        await client.close();
      }
    } finally {
      await admin.close();
      await cluster.destroy();
    }
  },
});
