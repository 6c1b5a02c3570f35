// DescribeConfigs, AlterConfigs and IncrementalAlterConfigs through real
// admin clients (kafkajs, confluent-kafka, kafka-python), and topic configs
// that change what the broker does as soon as they are altered.
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import { Admin } from "@platformatic/kafka";
import { hasKcat, removeDir, run, startBroker } from "./harness.ts";
import { hasPythonModule, runPython } from "./python.ts";

const { Kafka, logLevel, ConfigResourceTypes } = kafkajs;
const DYNAMIC_TOPIC_CONFIG = 1;
const STATIC_BROKER_CONFIG = 4;
const DEFAULT_CONFIG = 5;

async function withAdmin(
  body: (
    kafka: InstanceType<typeof Kafka>,
    admin: ReturnType<InstanceType<typeof Kafka>["admin"]>,
    broker: { bootstrap: string; dataDir: string },
  ) => Promise<void>,
  set: string[] = [],
): Promise<void> {
  const broker = await startBroker({ set });
  const kafka = new Kafka({
    clientId: "raftq-e2e",
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    await body(kafka, admin, broker);
  } finally {
    await admin.disconnect();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
}

Deno.test("kafkajs creates a topic with any Kafka topic config, describes each with its source and synonyms, and alters them", async () => {
  await withAdmin(async (_kafka, admin) => {
    await admin.createTopics({
      topics: [{
        topic: "streams-like",
        configEntries: [
          { name: "message.timestamp.type", value: "CreateTime" },
          { name: "compression.type", value: "lz4" },
          { name: "retention.ms", value: "3600000" },
          { name: "cleanup.policy", value: "compact,delete" },
        ],
      }],
    });
    await assert.rejects(
      admin.createTopics({
        topics: [{
          topic: "bad",
          configEntries: [{ name: "segment.ms", value: "0" }],
        }],
      }),
      (err: { errors?: { type?: string }[] }) =>
        err.errors?.[0]?.type === "INVALID_CONFIG",
    );
    const describe = async () => {
      const r = await admin.describeConfigs({
        includeSynonyms: true,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: "streams-like" }],
      });
      return new Map(
        r.resources[0]!.configEntries.map((e) => [e.configName, e]),
      );
    };
    const configs = await describe();
    const retention = configs.get("retention.ms")!;
    assert.equal(retention.configValue, "3600000");
    assert.equal(retention.configSource, DYNAMIC_TOPIC_CONFIG);
    assert.deepEqual(
      retention.configSynonyms.map((s) => [s.configName, s.configSource]),
      [
        ["retention.ms", DYNAMIC_TOPIC_CONFIG],
        ["log.retention.ms", STATIC_BROKER_CONFIG],
        ["retention.ms", DEFAULT_CONFIG],
      ],
    );
    // Not set on the topic: the broker's log.segment_bytes (1 GiB by default).
    const segment = configs.get("segment.bytes")!;
    assert.equal(segment.configSource, STATIC_BROKER_CONFIG);
    assert.equal(segment.configValue, String(1 << 30));
    assert.equal(
      configs.get("min.insync.replicas")!.configSource,
      DEFAULT_CONFIG,
    );
    assert.ok(configs.size >= 30, `only ${configs.size} configs described`);

    // AlterConfigs replaces the topic's whole set.
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{
        type: ConfigResourceTypes.TOPIC,
        name: "streams-like",
        configEntries: [{ name: "retention.bytes", value: "1048576" }],
      }],
    });
    const altered = await describe();
    assert.equal(altered.get("retention.bytes")!.configValue, "1048576");
    assert.equal(
      altered.get("retention.ms")!.configSource,
      STATIC_BROKER_CONFIG,
    );
    assert.equal(altered.get("compression.type")!.configValue, "producer");
    await assert.rejects(
      admin.alterConfigs({
        validateOnly: false,
        resources: [{
          type: ConfigResourceTypes.TOPIC,
          name: "streams-like",
          configEntries: [{ name: "retention.bytes", value: "lots" }],
        }],
      }),
      (err: { type?: string }) => err.type === "INVALID_CONFIG",
    );

    const broker = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.BROKER, name: "1" }],
    });
    const brokerConfigs = new Map(
      broker.resources[0]!.configEntries.map((e) => [e.configName, e]),
    );
    assert.equal(brokerConfigs.get("broker.id")!.configValue, "1");
    // The broker defaults of topic configs can change at run time
    // (tests/broker_configs_test.ts), the rest cannot.
    assert.equal(brokerConfigs.get("log.segment.bytes")!.readOnly, false);
    assert.equal(brokerConfigs.get("log.dirs")!.readOnly, true);
    await assert.rejects(
      admin.alterConfigs({
        validateOnly: false,
        resources: [{
          type: ConfigResourceTypes.BROKER,
          name: "1",
          configEntries: [{ name: "log.dirs", value: "/tmp" }],
        }],
      }),
      (err: { type?: string }) => err.type === "INVALID_CONFIG",
    );
  });
});

Deno.test("an altered max.message.bytes and segment.bytes act at once on a running partition", async () => {
  await withAdmin(async (kafka, admin, { dataDir }) => {
    await admin.createTopics({
      topics: [{ topic: "live", numPartitions: 1 }],
      waitForLeaders: true,
    });
    const producer = kafka.producer();
    await producer.connect();
    try {
      const big = "x".repeat(4000);
      await producer.send({ topic: "live", messages: [{ value: big }] });
      await admin.alterConfigs({
        validateOnly: false,
        resources: [{
          type: ConfigResourceTypes.TOPIC,
          name: "live",
          configEntries: [
            { name: "max.message.bytes", value: "1000" },
            { name: "segment.bytes", value: "2048" },
          ],
        }],
      });
      await assert.rejects(
        producer.send({ topic: "live", messages: [{ value: big }] }),
        (err: { type?: string }) => err.type === "MESSAGE_TOO_LARGE",
      );
      for (let i = 0; i < 10; i++) {
        await producer.send({
          topic: "live",
          messages: [{ value: "y".repeat(500) }],
        });
      }
      const segments = [...Deno.readDirSync(`${dataDir}/live-0`)]
        .filter((e) => e.name.endsWith(".log"));
      assert.ok(
        segments.length >= 3,
        `segment.bytes=2048 left ${segments.length} segment(s)`,
      );
    } finally {
      await producer.disconnect();
    }
  });
});

for (const client of ["confluent", "kafka-python"] as const) {
  const module = client === "confluent" ? "confluent_kafka" : "kafka";
  const present = await hasPythonModule(module);
  Deno.test({
    name:
      `${client} describes a topic's configs, alters them, and is refused a bad value without change`,
    ignore: !present,
    async fn() {
      await withAdmin(async (_kafka, admin, { bootstrap }) => {
        await admin.createTopics({
          topics: [{ topic: "py-configs" }],
          waitForLeaders: true,
        });
        const r = await runPython("admin_configs.py", [
          client,
          bootstrap,
          "py-configs",
        ]);
        assert.equal(r.code, 0, r.stderr);
        const out = JSON.parse(new TextDecoder().decode(r.stdout));
        const confluent = client === "confluent";
        assert.equal(out.count, 36);
        assert.equal(out.retention_before[0], String(7 * 24 * 3600 * 1000));
        assert.equal(out.retention_after[0], "86400000");
        assert.equal(out.cleanup_after, "compact");
        assert.equal(out.bad, confluent ? "INVALID_CONFIG" : 40);
        assert.equal(out.unchanged, "86400000");
        if (confluent) {
          // librdkafka reports sources by number, kafka-python (v0) none.
          assert.deepEqual(
            [out.retention_before[1], out.retention_after[1]],
            [String(STATIC_BROKER_CONFIG), String(DYNAMIC_TOPIC_CONFIG)],
          );
          assert.equal(out.broker_log_segment_bytes, String(1 << 30));
        }
      });
    },
  });
}

Deno.test("@platformatic/kafka alters configs incrementally (set, delete, append, subtract) and reads their types and documentation", async () => {
  const broker = await startBroker();
  const admin = new Admin({
    clientId: "plat-configs",
    bootstrapBrokers: [broker.bootstrap],
    retries: 0,
  });
  const resource = { resourceType: 2 as const, resourceName: "inc" };
  const describe = async () => {
    const [d] = await admin.describeConfigs({
      resources: [{ ...resource, configurationKeys: null }],
      includeDocumentation: true,
    });
    return new Map(d!.configs.map((c) => [c.name, c]));
  };
  type Ops = Parameters<
    typeof admin.incrementalAlterConfigs
  >[0]["resources"][number]["configs"];
  const alter = (configs: Ops) =>
    admin.incrementalAlterConfigs({ resources: [{ ...resource, configs }] });
  try {
    await admin.createTopics({ topics: ["inc"], partitions: 1, replicas: 1 });
    await alter([
      { name: "retention.ms", configOperation: 0, value: "120000" },
      { name: "cleanup.policy", configOperation: 2, value: "compact" },
    ]);
    let configs = await describe();
    assert.equal(configs.get("retention.ms")!.value, "120000");
    assert.equal(configs.get("cleanup.policy")!.value, "delete,compact");
    assert.equal(configs.get("cleanup.policy")!.configType, 7); // LIST
    assert.equal(configs.get("retention.ms")!.configType, 5); // LONG
    assert.match(configs.get("segment.ms")!.documentation ?? "", /roll/);
    await alter([
      { name: "retention.ms", configOperation: 1 },
      { name: "cleanup.policy", configOperation: 3, value: "delete" },
    ]);
    configs = await describe();
    assert.equal(
      configs.get("retention.ms")!.configSource,
      STATIC_BROKER_CONFIG,
    );
    assert.equal(configs.get("cleanup.policy")!.value, "compact");
    await assert.rejects(
      alter([{ name: "max.message.bytes", configOperation: 2, value: "1" }]),
      // INVALID_CONFIG, as the client words it somewhere in its cause chain.
      (err: Error) => /Configuration is invalid/.test(Deno.inspect(err)),
    );
  } finally {
    await admin.close();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

Deno.test({
  name:
    "message.timestamp.type=LogAppendTime stamps each write with the broker's clock, which the producer is told and kcat reads",
  ignore: !hasKcat,
  async fn() {
    await withAdmin(async (kafka, admin, { bootstrap }) => {
      await admin.createTopics({
        topics: [{
          topic: "stamped",
          configEntries: [{
            name: "message.timestamp.type",
            value: "LogAppendTime",
          }],
        }],
        waitForLeaders: true,
      });
      const producer = kafka.producer();
      await producer.connect();
      const before = Date.now();
      const [sent] = await producer.send({
        topic: "stamped",
        messages: [
          { value: "a", timestamp: "1234" },
          { value: "b", timestamp: "5678" },
        ],
      });
      const after = Date.now();
      await producer.disconnect();
      const stamped = Number(sent!.logAppendTime);
      assert.ok(
        before <= stamped && stamped <= after,
        `logAppendTime ${sent!.logAppendTime} outside [${before}, ${after}]`,
      );
      const read = await run("kcat", [
        "-b",
        bootstrap,
        "-C",
        "-t",
        "stamped",
        "-o",
        "beginning",
        "-c",
        "2",
        "-e",
        "-f",
        "%T %s\\n",
      ]);
      assert.equal(read.code, 0, read.stderr);
      assert.equal(
        new TextDecoder().decode(read.stdout),
        `${stamped} a\n${stamped} b\n`,
      );
    });
  },
});
