/**
 * The admin HTTP listener of one real broker process: its /metrics page,
 * parsed by parse-prometheus-text-format, moves by what a kafkajs client
 * produced and consumed; the JSON API answers what the Kafka API says, and
 * bad paths and parameters get JSON errors with 4xx statuses; Raft series
 * per partition group appear only with admin.per_partition_metrics.
 */
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import {
  ApiKey,
  decodeResponse,
  encodeRequest,
  ErrorCode,
} from "../src/protocol/mod.ts";
import {
  type BrokerProcess,
  exchange,
  freePorts,
  removeDir,
  startBroker,
} from "./harness.ts";
import { waitFor } from "./cluster_harness.ts";

const { Kafka, logLevel } = kafkajs;

interface Sample {
  labels?: Record<string, string>;
  value?: string;
  count?: string;
}

/** Every sample of the page, by family name. */
async function scrape(
  broker: BrokerProcess,
): Promise<Map<string, Sample[]>> {
  const res = await fetch(`${broker.adminUrl}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
  const families = parsePrometheusTextFormat(await res.text()) as {
    name: string;
    metrics: Sample[];
  }[];
  return new Map(families.map((f) => [f.name, f.metrics]));
}

/** The value of the sample whose labels include `labels` (0 when absent). */
function value(
  page: Map<string, Sample[]>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const samples = page.get(name);
  assert.ok(samples !== undefined, `no family ${name} on the page`);
  const s = samples.find((m) =>
    Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)
  );
  return Number(s?.value ?? s?.count ?? 0);
}

/**
 * The `_count` of one labelled histogram series, read from the page text:
 * parse-prometheus-text-format 1.1.1 drops the labels, count and sum of
 * labelled histograms.
 */
async function histogramCount(
  broker: BrokerProcess,
  series: string,
): Promise<number> {
  const text = await (await fetch(`${broker.adminUrl}/metrics`)).text();
  const [name, labels] = series.split("{");
  const line = text.split("\n").find((l) =>
    l.startsWith(`${name}_count{${labels} `)
  );
  return Number(line?.split(" ")[1] ?? 0);
}

async function getJson(
  url: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  return { status: res.status, body: await res.json() };
}

async function withBroker(
  fn: (broker: BrokerProcess) => Promise<void>,
  set: string[] = [],
): Promise<void> {
  const broker = await startBroker({ adminPort: freePorts(1)[0]!, set });
  try {
    await fn(broker);
  } finally {
    await broker.stop();
    await removeDir(broker.dataDir);
  }
}

Deno.test("/metrics counts the log cleaner's cleanings and bytes once a compacted topic is cleaned", async () => {
  await withBroker(async (broker) => {
    const kafka = new Kafka({
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    const producer = kafka.producer();
    try {
      await admin.connect();
      await admin.createTopics({
        topics: [{
          topic: "table",
          configEntries: [
            { name: "cleanup.policy", value: "compact" },
            { name: "segment.bytes", value: "2048" },
            { name: "min.cleanable.dirty.ratio", value: "0.01" },
          ],
        }],
        waitForLeaders: true,
      });
      const before = await scrape(broker);
      assert.equal(value(before, "raftq_cleaner_cleanings_total"), 0);
      await producer.connect();
      for (let round = 0; round < 40; round++) {
        await producer.send({
          topic: "table",
          messages: Array.from({ length: 10 }, (_, k) => ({
            key: `key${k}`,
            value: `value-${round}-${k}`,
          })),
        });
      }
      const after = await waitFor("a cleaning of table-0", async () => {
        const page = await scrape(broker);
        return value(page, "raftq_cleaner_cleanings_total") > 0
          ? page
          : undefined;
      });
      const read = value(after, "raftq_cleaner_read_bytes_total");
      const written = value(after, "raftq_cleaner_written_bytes_total");
      const removed = value(after, "raftq_cleaner_removed_bytes_total");
      assert.ok(read > 0 && written > 0 && removed > 0, `${read} ${written}`);
      const ratio = value(after, "raftq_cleaner_last_size_ratio");
      assert.ok(ratio > 0 && ratio < 1, `ratio ${ratio}`);
      const lastRun = value(after, "raftq_cleaner_last_run_timestamp_seconds");
      assert.ok(Math.abs(lastRun - Date.now() / 1000) < 60, `${lastRun}`);
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  }, ["log.cleaner_backoff_ms=200ms"]);
});

Deno.test("/metrics counts the bytes and records a kafkajs client produced and consumed", async () => {
  await withBroker(async (broker) => {
    const kafka = new Kafka({
      clientId: "raftq-metrics",
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: "metered", numPartitions: 2 }],
      waitForLeaders: true,
    });
    await admin.disconnect();
    const p0 = { topic: "metered", partition: "0" };
    const before = await scrape(broker);
    assert.equal(value(before, "raftq_partition_records_in_total", p0), 0);
    const producedBefore = value(before, "raftq_kafka_requests_total", {
      api: "Produce",
    });
    const versionsBefore = value(before, "raftq_kafka_requests_total", {
      api: "ApiVersions",
    });
    const versionLatency = 'raftq_kafka_request_seconds{api="ApiVersions"}';
    const versionsTimedBefore = await histogramCount(broker, versionLatency);

    const producer = kafka.producer();
    await producer.connect();
    const messages = Array.from({ length: 25 }, (_, i) => ({
      value: `value-${i}`,
      partition: 0,
    }));
    await producer.send({ topic: "metered", acks: -1, messages });
    await producer.send({
      topic: "metered",
      acks: -1,
      messages: [{ value: "x", partition: 1 }],
    });
    await producer.disconnect();

    const afterProduce = await scrape(broker);
    // Raft series per group are off by default: only the aggregates.
    assert.equal(afterProduce.has("raftq_raft_group_commit_index"), false);
    assert.ok(
      value(afterProduce, "raftq_raft_groups", { role: "leader" }) >= 3,
    );
    assert.equal(
      value(afterProduce, "raftq_partition_records_in_total", p0),
      25,
    );
    assert.equal(
      value(afterProduce, "raftq_partition_records_in_total", {
        topic: "metered",
        partition: "1",
      }),
      1,
    );
    const bytesIn = value(afterProduce, "raftq_partition_bytes_in_total", p0);
    // One batch of 25 small records: more than their values, far less than 25 batches.
    assert.ok(bytesIn > 25 * "value-00".length && bytesIn < 2000, `${bytesIn}`);
    assert.equal(value(afterProduce, "raftq_partition_log_bytes", p0), bytesIn);
    assert.equal(
      value(afterProduce, "raftq_partition_high_watermark", p0),
      25,
    );
    assert.equal(
      value(afterProduce, "raftq_partition_log_end_offset", p0),
      25,
    );
    assert.equal(
      value(afterProduce, "raftq_kafka_requests_total", { api: "Produce" }) -
        producedBefore,
      2,
    );
    // The producer's new connection opened with ApiVersions, which is
    // counted like every other request.
    assert.ok(
      value(afterProduce, "raftq_kafka_requests_total", {
        api: "ApiVersions",
      }) > versionsBefore,
    );
    assert.ok(
      await histogramCount(broker, versionLatency) > versionsTimedBefore,
      "ApiVersions latencies were observed",
    );
    assert.ok(
      value(afterProduce, "raftq_wal_fsync_seconds") > 0,
      "the WAL synced",
    );

    // KIP-511: a version above raftq's range is answered in v0 with
    // UNSUPPORTED_VERSION, and that answer is counted with its error code.
    const tooNew = 4;
    const refused = decodeResponse(
      ApiKey.ApiVersions,
      0,
      await exchange(
        broker.port,
        encodeRequest(ApiKey.ApiVersions, tooNew, {
          correlationId: 9,
          clientId: "raftq-e2e",
        }, { clientSoftwareName: "raftq-e2e", clientSoftwareVersion: "1" }),
      ),
    );
    assert.equal(refused.body.errorCode, ErrorCode.UNSUPPORTED_VERSION);
    const afterRefusal = await scrape(broker);
    const unsupported = {
      api: "ApiVersions",
      code: String(ErrorCode.UNSUPPORTED_VERSION),
    };
    assert.equal(
      value(afterRefusal, "raftq_kafka_errors_total", unsupported) -
        value(afterProduce, "raftq_kafka_errors_total", unsupported),
      1,
    );

    const consumer = kafka.consumer({ groupId: "metered-readers" });
    await consumer.connect();
    await consumer.subscribe({ topic: "metered", fromBeginning: true });
    let seen = 0;
    const done = Promise.withResolvers<void>();
    await consumer.run({
      eachMessage: () => {
        if (++seen === 26) done.resolve();
        return Promise.resolve();
      },
    });
    await done.promise;
    await consumer.commitOffsets([]);
    await consumer.disconnect();

    const afterConsume = await scrape(broker);
    assert.equal(
      value(afterConsume, "raftq_partition_records_out_total", p0),
      25,
    );
    assert.equal(
      value(afterConsume, "raftq_partition_bytes_out_total", p0),
      bytesIn,
    );
    // kafkajs commits what it consumed when it leaves: nothing lags.
    assert.equal(
      value(afterConsume, "raftq_group_lag", {
        group: "metered-readers",
        ...p0,
      }),
      0,
    );
    const groups = await getJson(
      `${broker.adminUrl}/v1/groups/metered-readers`,
    );
    assert.equal(groups.status, 200);
    assert.deepEqual(
      (groups.body.offsets as { partition: number; lag: number }[])
        .map((o) => [o.partition, o.lag]).sort(),
      [[0, 0], [1, 0]],
    );
  });
});

Deno.test("the admin JSON API describes topics and partitions, answers bad requests with JSON errors, and admin.per_partition_metrics adds per-group Raft series", async () => {
  await withBroker(async (broker) => {
    const kafka = new Kafka({
      clientId: "raftq-rest",
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: "described", numPartitions: 3 }],
      waitForLeaders: true,
    });
    const kafkaView = await admin.fetchTopicMetadata({ topics: ["described"] });
    await admin.disconnect();

    const live = await getJson(`${broker.adminUrl}/v1/health/live`);
    assert.equal(live.status, 200);
    const ready = await getJson(`${broker.adminUrl}/v1/health/ready`);
    assert.deepEqual([ready.status, ready.body.unavailable], [200, []]);

    const brokers = await getJson(`${broker.adminUrl}/v1/brokers`);
    assert.deepEqual(
      (brokers.body as unknown as { nodeId: number; kafkaPort: number }[])
        .map((b) => [b.nodeId, b.kafkaPort]),
      [[1, broker.port]],
    );
    const topics = await getJson(`${broker.adminUrl}/v1/topics`);
    assert.ok(
      (topics.body as unknown as { name: string }[]).some((t) =>
        t.name === "described"
      ),
    );
    const topic = await getJson(`${broker.adminUrl}/v1/topics/described`);
    assert.equal(topic.status, 200);
    assert.equal(topic.body.partitions, 3);
    const leaders = (topic.body.partitionDetails as { leader: number }[]).map(
      (p) => p.leader,
    );
    assert.deepEqual(
      leaders,
      kafkaView.topics[0]!.partitions.sort((a, b) =>
        a.partitionId - b.partitionId
      ).map((p) => p.leader),
    );
    const partition = await getJson(
      `${broker.adminUrl}/v1/partitions/described/2`,
    );
    assert.equal(partition.status, 200);
    assert.deepEqual(partition.body.replicaLag, { "1": 0 });
    assert.equal(
      (partition.body.local as { highWatermark: string }).highWatermark,
      "0",
    );

    const cases: [string, number, RegExp][] = [
      ["/v1/topics/missing", 404, /Topic "missing" does not exist/],
      ["/v1/partitions/described/3", 404, /Partition 3 of topic "described"/],
      ["/v1/partitions/described/x1", 400, /not a partition number/],
      ["/v1/partitions/described/99999999999", 400, /not a partition number/],
      ["/v1/partitions/%E0%A4%A/0", 400, /not valid URI encoding/],
      ["/v1/groups/nobody", 404, /Group "nobody" does not exist/],
      ["/v1/nothing-here", 404, /No such path/],
    ];
    for (const [path, status, message] of cases) {
      const res = await getJson(`${broker.adminUrl}${path}`);
      assert.equal(res.status, status, path);
      assert.match(String(res.body.error), message, path);
    }
    // admin.per_partition_metrics adds a Raft series per partition group.
    const page = await scrape(broker);
    for (const partition of ["0", "1", "2"]) {
      assert.ok(
        value(page, "raftq_raft_group_commit_index", {
          topic: "described",
          partition,
        }) >= 1,
      );
    }
    const post = await fetch(`${broker.adminUrl}/v1/topics`, {
      method: "POST",
      body: "{}",
    });
    assert.equal(post.status, 405);
    assert.match((await post.json()).error, /read-only/);
  }, ["admin.per_partition_metrics=true"]);
});
