// DescribeCluster (v0-1) and DescribeProducers (v0) end to end. No installed
// admin client sends them from its high-level API, so they go through
// @platformatic/kafka's own low-level codecs (an encoder that is not
// raftq's), through raftq's client, and as request frames built here byte
// by byte from Kafka's JSON message definitions. The producers described
// are real: an idempotent kafkajs producer and an idempotent kcat.
import assert from "node:assert/strict";
import {
  Connection,
  describeClusterV0,
  describeClusterV1,
  describeProducersV0,
} from "@platformatic/kafka";
import kafkajs from "kafkajs";
import { KafkaClient } from "../src/client/mod.ts";
import {
  ApiKey,
  completeBatchSize,
  decodeResponse,
  encodeRequest,
  ErrorCode,
  readBatchHeader,
} from "../src/protocol/mod.ts";
import { hasKcat, kcatProduce, removeDir, startBroker } from "./harness.ts";

const { Kafka, logLevel } = kafkajs;
const CLIENT_ID = "raw";

/** Request header v2 (flexible): key, version, correlation id, client id, no tags. */
function flexibleHeader(
  apiKey: number,
  version: number,
  correlationId: number,
) {
  const id = new TextEncoder().encode(CLIENT_ID);
  const out = new Uint8Array(10 + id.length + 1);
  const v = new DataView(out.buffer);
  v.setInt16(0, apiKey);
  v.setInt16(2, version);
  v.setInt32(4, correlationId);
  v.setInt16(8, id.length);
  out.set(id, 10);
  return out;
}

function framed(...parts: (Uint8Array | number[])[]): Uint8Array {
  const body = parts.flatMap((p) => [...p]);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setInt32(0, body.length);
  out.set(body, 4);
  return out;
}

/** Sends one frame and reads the one answer frame (without its size). */
async function roundTrip(port: number, frame: Uint8Array): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(frame);
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(65536);
    for (;;) {
      if (buf.length >= 4) {
        const size = new DataView(buf.buffer).getInt32(0);
        if (buf.length >= 4 + size) return buf.slice(4, 4 + size);
      }
      const n = await conn.read(chunk);
      if (n === null) throw new Error("The broker closed the connection");
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(chunk.subarray(0, n), buf.length);
      buf = next;
    }
  } finally {
    conn.close();
  }
}

async function platformaticConnection(port: number): Promise<Connection> {
  const conn = new Connection("plat-admin");
  await conn.connect("127.0.0.1", port);
  return conn;
}

Deno.test("DescribeCluster v0 and v1 answer Metadata's cluster id, controller and brokers; another endpoint type is UNSUPPORTED_ENDPOINT_TYPE", async () => {
  const broker = await startBroker();
  const kafka = new Kafka({
    clientId: "raftq-e2e",
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  const client = await KafkaClient.connect(broker.bootstrap);
  const plat = await platformaticConnection(broker.port);
  try {
    await admin.connect();
    const metadata = await admin.describeCluster();
    assert.ok(metadata.controller !== null && metadata.controller > 0);
    const expected = {
      clusterId: metadata.clusterId,
      controllerId: metadata.controller,
      brokers: metadata.brokers.map((b) => ({
        brokerId: b.nodeId,
        host: b.host,
        port: b.port,
        rack: null,
      })),
    };

    for (const api of [describeClusterV0.api, describeClusterV1.api]) {
      const answer = await api.async(plat, false, 1);
      assert.equal(answer.errorCode, ErrorCode.NONE);
      assert.deepEqual(
        {
          clusterId: answer.clusterId,
          controllerId: answer.controllerId,
          brokers: answer.brokers,
        },
        expected,
        `DescribeCluster v${api.version}`,
      );
      assert.equal(answer.clusterAuthorizedOperations, -2147483648);
    }
    const withOperations = await describeClusterV1.api.async(plat, true, 1);
    assert.ok(withOperations.clusterAuthorizedOperations > 0);
    // KIP-919: a broker listener serves brokers (1), not controllers (2).
    const refused = await describeClusterV1.api.async(plat, false, 2).then(
      () => assert.fail("endpoint type 2 was answered"),
      (err: { response?: { errorCode: number; brokers: unknown[] } }) =>
        err.response,
    );
    assert.equal(refused?.errorCode, ErrorCode.UNSUPPORTED_ENDPOINT_TYPE);
    assert.deepEqual(refused?.brokers, []);

    const described = await client.describeCluster();
    assert.deepEqual(described, {
      clusterId: expected.clusterId,
      controllerId: expected.controllerId,
      brokers: metadata.brokers.map((b) => ({ ...b, rack: null })),
    });

    // DescribeCluster v1 as the JSON spells it: includeClusterAuthorized-
    // Operations (bool), endpointType (int8), then an empty tag section.
    const raw = framed(
      flexibleHeader(ApiKey.DescribeCluster, 1, 7),
      [0, 1, 0],
    );
    assert.deepEqual(
      raw,
      encodeRequest(ApiKey.DescribeCluster, 1, {
        correlationId: 7,
        clientId: CLIENT_ID,
      }, { includeClusterAuthorizedOperations: false, endpointType: 1 }),
    );
    const reply = decodeResponse(
      ApiKey.DescribeCluster,
      1,
      await roundTrip(broker.port, raw),
    );
    assert.equal(reply.correlationId, 7);
    assert.equal(reply.body.clusterId, expected.clusterId);
    assert.equal(reply.body.endpointType, 1);
  } finally {
    plat.close();
    await client.close();
    await admin.disconnect();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

/** Records per producer id, counted from the batch headers in the log. */
async function recordsByProducer(
  client: KafkaClient,
  topic: string,
): Promise<Map<bigint, number>> {
  const { records } = await client.fetch(topic, 0, 0n);
  const counts = new Map<bigint, number>();
  for (let pos = 0;;) {
    const size = completeBatchSize(records, pos);
    if (size === 0) break;
    const h = readBatchHeader(records, pos);
    counts.set(h.producerId, (counts.get(h.producerId) ?? 0) + h.recordsCount);
    pos += size;
  }
  return counts;
}

Deno.test({
  name:
    "DescribeProducers lists an idempotent kafkajs and an idempotent kcat producer, each at its last sequence",
  ignore: !hasKcat,
  async fn() {
    const broker = await startBroker();
    const kafka = new Kafka({
      clientId: "raftq-e2e",
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
    });
    const client = await KafkaClient.connect(broker.bootstrap);
    const plat = await platformaticConnection(broker.port);
    const startedMs = BigInt(Date.now());
    try {
      await admin.connect();
      await admin.createTopics({
        topics: [{ topic: "idem", numPartitions: 2 }],
        waitForLeaders: true,
      });
      await producer.connect();
      // Three sends of 2, 3 and 2 records: seven sequence numbers, 0-6.
      for (const n of [2, 3, 2]) {
        await producer.send({
          topic: "idem",
          messages: Array.from({ length: n }, (_, i) => ({
            value: `js-${i}`,
            partition: 0,
          })),
        });
      }
      await kcatProduce(broker.bootstrap, "idem", ["a", "b", "c", "d"], [
        "-p",
        "0",
        "-X",
        "enable.idempotence=true",
      ]);
      const inLog = await recordsByProducer(client, "idem");
      assert.equal(inLog.size, 2, "two producer ids wrote the partition");
      assert.deepEqual([...inLog.values()].sort(), [4, 7]);
      const expected = [...inLog].map(([producerId, count]) => ({
        producerId,
        lastSequence: count - 1,
      })).sort((a, b) => a.lastSequence - b.lastSequence);

      const described = await client.describeProducers("idem", 0);
      assert.deepEqual(
        described.map(({ producerId, lastSequence }) => ({
          producerId,
          lastSequence,
        })).sort((a, b) => a.lastSequence - b.lastSequence),
        expected,
      );
      for (const p of described) {
        assert.equal(p.producerEpoch, 0);
        assert.ok(p.lastTimestamp >= startedMs, "stamped after the start");
        assert.ok(p.lastTimestamp <= BigInt(Date.now()));
      }
      assert.deepEqual(await client.describeProducers("idem", 1), []);

      const answer = await describeProducersV0.api.async(plat, [
        { name: "idem", partitionIndexes: [0] },
      ]);
      const partition = answer.topics[0]!.partitions[0]!;
      assert.equal(partition.errorCode, ErrorCode.NONE);
      assert.deepEqual(
        partition.activeProducers.map((p) => ({
          producerId: p.producerId,
          lastSequence: p.lastSequence,
          coordinatorEpoch: p.coordinatorEpoch,
          currentTxnStartOffset: p.currentTxnStartOffset,
        })).sort((a, b) => a.lastSequence - b.lastSequence),
        expected.map((e) => ({
          ...e,
          coordinatorEpoch: -1,
          currentTxnStartOffset: -1n,
        })),
      );

      // DescribeProducers v0 as the JSON spells it: a compact array of
      // topics (compact name, compact int32 array), tags after each struct.
      const raw = framed(
        flexibleHeader(ApiKey.DescribeProducers, 0, 9),
        [3], // two topics
        [5, ...new TextEncoder().encode("idem"), 3, 0, 0, 0, 1, 0, 0, 0, 9, 0],
        [5, ...new TextEncoder().encode("nope"), 2, 0, 0, 0, 0, 0],
        [0],
      );
      assert.deepEqual(
        raw,
        encodeRequest(
          ApiKey.DescribeProducers,
          0,
          { correlationId: 9, clientId: CLIENT_ID },
          {
            topics: [
              { name: "idem", partitionIndexes: [1, 9] },
              { name: "nope", partitionIndexes: [0] },
            ],
          },
        ),
      );
      const reply = decodeResponse(
        ApiKey.DescribeProducers,
        0,
        await roundTrip(broker.port, raw),
      );
      assert.deepEqual(
        reply.body.topics.flatMap((t) =>
          t.partitions.map((p) => [
            `${t.name}-${p.partitionIndex}`,
            p.errorCode,
            p.activeProducers.length,
          ])
        ),
        [
          ["idem-1", ErrorCode.NONE, 0],
          ["idem-9", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 0],
          ["nope-0", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 0],
        ],
      );
    } finally {
      plat.close();
      await client.close();
      await producer.disconnect();
      await admin.disconnect();
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});
