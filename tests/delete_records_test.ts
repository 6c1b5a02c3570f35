// DeleteRecords (v0-2) through real admin clients: kafkajs (v0) and
// @platformatic/kafka (v2) trim a partition, after which ListOffsets
// EARLIEST answers the new start and a Fetch below it OFFSET_OUT_OF_RANGE;
// the start survives a restart (the entry is replayed from the Raft WAL),
// kafkajs' captured v1 frame trims what it names,
// and on a 3-broker cluster only the leader takes the request while every
// replica applies it (the next leader answers the same start).
// kafka-python 2.0.2 and confluent-kafka 1.7.0 have no DeleteRecords.
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import { Admin } from "@platformatic/kafka";
import {
  EARLIEST_TIMESTAMP,
  KafkaClient,
  KafkaError,
} from "../src/client/mod.ts";
import {
  ApiKey,
  buildRecordBatch,
  decodeResponse,
  encodeRequest,
  ErrorCode,
} from "../src/protocol/mod.ts";
import { Cluster, waitFor } from "./cluster_harness.ts";
import { exchange, removeDir, startBroker } from "./harness.ts";

const { Kafka, logLevel } = kafkajs;

/** Produces `count` one-record batches, so every offset can be trimmed to. */
async function produceEach(
  client: KafkaClient,
  topic: string,
  opts: { partition: number; count: number },
): Promise<void> {
  for (let i = 0; i < opts.count; i++) {
    await client.produce(
      topic,
      opts.partition,
      buildRecordBatch([{ value: new TextEncoder().encode(`r${i}`) }]),
    );
  }
}

/** The Kafka error names inside @platformatic/kafka's nested AggregateErrors. */
function kafkaCodes(err: unknown): string[] {
  const e = err as { apiId?: string; errors?: unknown[] };
  return [
    ...(e.apiId === undefined ? [] : [e.apiId]),
    ...(e.errors ?? []).flatMap(kafkaCodes),
  ];
}

async function assertFetchOutOfRange(
  client: KafkaClient,
  topic: string,
  offset: bigint,
): Promise<void> {
  await assert.rejects(
    client.fetch(topic, 0, offset, { maxWaitMs: 0 }),
    (e: unknown) => e instanceof KafkaError && e.name === "OFFSET_OUT_OF_RANGE",
  );
}

Deno.test("kafkajs deleteTopicRecords moves the log start, refuses an offset past the high watermark, and -1 trims everything", async () => {
  const broker = await startBroker();
  const kafka = new Kafka({
    clientId: "raftq-e2e",
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  const client = await KafkaClient.connect(broker.bootstrap);
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: "trim", numPartitions: 2 }],
      waitForLeaders: true,
    });
    await produceEach(client, "trim", { partition: 0, count: 10 });
    // kafkajs looks the leaders up in its metadata cache before it loads
    // the topic's metadata: without a first look it finds none.
    await admin.fetchTopicMetadata({ topics: ["trim"] });
    await admin.deleteTopicRecords({
      topic: "trim",
      partitions: [{ partition: 0, offset: "4" }],
    });
    const offsets = await admin.fetchTopicOffsets("trim");
    const p0 = offsets.find((o) => o.partition === 0)!;
    assert.deepEqual([p0.low, p0.high], ["4", "10"]);
    assert.equal(await client.listOffsets("trim", 0, EARLIEST_TIMESTAMP), 4n);
    await assertFetchOutOfRange(client, "trim", 3n);
    const kept = await client.fetch("trim", 0, 4n, { maxWaitMs: 0 });
    assert.equal(kept.logStartOffset, 4n);
    assert.ok(kept.records.length > 0, "offset 4 on is still served");

    await assert.rejects(
      admin.deleteTopicRecords({
        topic: "trim",
        partitions: [{ partition: 0, offset: "11" }],
      }),
      // kafkajs' retrier wraps the per-partition error as the cause.
      (err: { cause?: { partitions?: { error?: { type?: string } }[] } }) =>
        err.cause?.partitions?.[0]?.error?.type === "OFFSET_OUT_OF_RANGE",
    );
    assert.equal(await client.listOffsets("trim", 0, EARLIEST_TIMESTAMP), 4n);

    await admin.deleteTopicRecords({
      topic: "trim",
      partitions: [{ partition: 0, offset: "-1" }],
    });
    assert.equal(await client.listOffsets("trim", 0, EARLIEST_TIMESTAMP), 10n);
    // The other partition was not touched.
    const p1 = (await admin.fetchTopicOffsets("trim")).find((o) =>
      o.partition === 1
    )!;
    assert.equal(p1.low, "0");
  } finally {
    await client.close();
    await admin.disconnect();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

Deno.test("@platformatic/kafka deleteRecords answers the new low watermark, which a restarted broker keeps", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "raftq-e2e-" });
  let broker = await startBroker({ dataDir });
  let client = await KafkaClient.connect(broker.bootstrap);
  try {
    await client.createTopic("plat-trim", { partitions: 1 });
    await produceEach(client, "plat-trim", { partition: 0, count: 6 });
    const admin = new Admin({
      clientId: "plat-admin",
      bootstrapBrokers: [broker.bootstrap],
      retries: 0,
    });
    try {
      const deleted = await admin.deleteRecords({
        topics: [{
          name: "plat-trim",
          partitions: [{ partition: 0, offset: 5n }],
        }],
      });
      assert.deepEqual(deleted, [{
        name: "plat-trim",
        partitions: [{ partition: 0, lowWatermark: 5n }],
      }]);
      // Past the high watermark (6): the broker refuses, nothing moves.
      await assert.rejects(
        admin.deleteRecords({
          topics: [{
            name: "plat-trim",
            partitions: [{ partition: 0, offset: 7n }],
          }],
        }),
        (err: unknown) => kafkaCodes(err).includes("OFFSET_OUT_OF_RANGE"),
      );
    } finally {
      await admin.close();
    }
    await assertFetchOutOfRange(client, "plat-trim", 4n);
    assert.equal(
      await client.listOffsets("plat-trim", 0, EARLIEST_TIMESTAMP),
      5n,
    );

    await client.close();
    await broker.stop();
    broker = await startBroker({ dataDir });
    client = await KafkaClient.connect(broker.bootstrap);
    assert.equal(
      await client.listOffsets("plat-trim", 0, EARLIEST_TIMESTAMP),
      5n,
    );
    await assertFetchOutOfRange(client, "plat-trim", 4n);
    // Writes go on after the trimmed start.
    const { baseOffset } = await client.produce(
      "plat-trim",
      0,
      buildRecordBatch([{ value: new TextEncoder().encode("after") }]),
    );
    assert.equal(baseOffset, 6n);
  } finally {
    await client.close();
    await broker.stop();
    await removeDir(dataDir);
  }
});

/** Sends one DeleteRecords v2 for partition 0 and decodes its answer. */
async function deleteRecordsAt(
  port: number,
  topic: string,
  offset: bigint,
): Promise<
  { partitionIndex: number; errorCode: number; lowWatermark: bigint }
> {
  const version = 2;
  const reply = await exchange(
    port,
    encodeRequest(ApiKey.DeleteRecords, version, {
      correlationId: 7,
      clientId: "raftq-e2e",
    }, {
      topics: [{ name: topic, partitions: [{ partitionIndex: 0, offset }] }],
      timeoutMs: 5_000,
    }),
  );
  const { body } = decodeResponse(ApiKey.DeleteRecords, version, reply);
  return body.topics[0]!.partitions[0]!;
}

/**
 * kafkajs 2.2.4's DeleteRecords v1, size prefix included (client id
 * "golden", correlation id 6): topic "golden" partition 0 before offset 3,
 * timeout 5000 ms.
 */
const GOLDEN_DELETE_RECORDS_V1 =
  "0000003000150001000000060006676f6c64656e000000010006676f6c64656e" +
  "0000000100000000000000000000000300001388";

Deno.test("kafkajs' captured DeleteRecords v1 request trims the partition it names", async () => {
  const broker = await startBroker();
  const client = await KafkaClient.connect(broker.bootstrap);
  try {
    await client.createTopic("golden", { partitions: 1 });
    await produceEach(client, "golden", { partition: 0, count: 5 });
    const frame = Uint8Array.from(
      GOLDEN_DELETE_RECORDS_V1.match(/../g)!.map((b) => parseInt(b, 16)),
    );
    const { correlationId, body } = decodeResponse(
      ApiKey.DeleteRecords,
      1,
      await exchange(broker.port, frame),
    );
    assert.equal(correlationId, 6);
    assert.deepEqual(body.topics, [{
      name: "golden",
      partitions: [{ partitionIndex: 0, lowWatermark: 3n, errorCode: 0 }],
    }]);
    assert.equal(await client.listOffsets("golden", 0, EARLIEST_TIMESTAMP), 3n);
  } finally {
    await client.close();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

Deno.test({
  name:
    "DeleteRecords on a 3-broker cluster: a follower answers NOT_LEADER_OR_FOLLOWER, and the next leader holds the trimmed start",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await Cluster.start();
    try {
      const client = await cluster.client();
      try {
        await client.createTopic("rep-trim", {
          partitions: 1,
          replicationFactor: 3,
        });
        await produceEach(client, "rep-trim", { partition: 0, count: 8 });
        const leaderOf = async () =>
          (await client.metadata(["rep-trim"])).topics[0]?.partitions[0]
            ?.leader;
        const leader = await waitFor("a leader", async () => {
          const id = await leaderOf();
          return id !== undefined && id > 0 ? id : undefined;
        });
        const follower = cluster.members.find((m) => m.nodeId !== leader)!;
        assert.deepEqual(
          await deleteRecordsAt(follower.kafkaPort, "rep-trim", 3n),
          {
            partitionIndex: 0,
            errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER,
            lowWatermark: -1n,
          },
        );
        assert.deepEqual(
          await deleteRecordsAt(
            cluster.member(leader).kafkaPort,
            "rep-trim",
            6n,
          ),
          { partitionIndex: 0, errorCode: ErrorCode.NONE, lowWatermark: 6n },
        );
        assert.equal(
          (await deleteRecordsAt(follower.kafkaPort, "nope", 0n)).errorCode,
          ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        );
        await cluster.kill9(leader);
        await waitFor("a new leader", async () => {
          const id = await leaderOf();
          return id !== undefined && id > 0 && id !== leader ? id : undefined;
        });
        assert.equal(
          await client.listOffsets("rep-trim", 0, EARLIEST_TIMESTAMP),
          6n,
        );
        await assertFetchOutOfRange(client, "rep-trim", 5n);
      } finally {
        await client.close();
      }
    } finally {
      await cluster.destroy();
    }
  },
});
