// Dynamic broker configs (Kafka's "kafka-configs --entity-type brokers"):
// kafkajs and the raftq CLI set the broker defaults of topic configs, for
// every broker ("") or for one; DescribeConfigs reports them with Kafka's
// sources; a topic without its own value acts on them at once, a topic's
// own value still wins; configs that cannot change at run time are refused
// by name; and a restart keeps the dynamic broker configs and the topic
// configs, both of which live in the controller's Raft state.
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import { KafkaClient } from "../src/client/mod.ts";
import { Compression } from "../src/protocol/mod.ts";
import {
  fetchedCodecs,
  hasKcat,
  kcatProduce,
  raftq,
  removeDir,
  startBroker,
} from "./harness.ts";

const { Kafka, logLevel, ConfigResourceTypes } = kafkajs;
const DYNAMIC_TOPIC_CONFIG = 1;
const DYNAMIC_BROKER_CONFIG = 2;
const DYNAMIC_DEFAULT_BROKER_CONFIG = 3;
const STATIC_BROKER_CONFIG = 4;
const DEFAULT_CONFIG = 5;

Deno.test({
  name:
    "dynamic broker configs from kafkajs and the CLI become every topic's default, act on produce, are refused by name when static, and survive a restart",
  ignore: !hasKcat,
  async fn() {
    let broker = await startBroker();
    const { dataDir, port } = broker;
    const cli = async (...args: string[]) => {
      const r = await raftq([
        "broker",
        "config",
        "--bootstrap",
        broker.bootstrap,
        ...args,
      ]);
      assert.equal(r.code, 0, r.stderr);
      return new TextDecoder().decode(r.stdout);
    };
    let client = await KafkaClient.connect(broker.bootstrap);
    const kafka = new Kafka({
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
    });
    const admin = kafka.admin();
    try {
      const nodeId = (await client.metadata([])).brokers[0]!.nodeId;
      await client.createTopic("follows", { partitions: 1 });
      await client.createTopic("own", {
        partitions: 1,
        configs: { "compression.type": "producer", "retention.ms": "1234" },
      });
      await admin.connect();
      await admin.alterConfigs({
        validateOnly: false,
        resources: [{
          type: ConfigResourceTypes.BROKER,
          name: String(nodeId),
          configEntries: [{ name: "compression.type", value: "gzip" }],
        }],
      });
      // kafkajs cannot name "", every broker's default; the CLI's default.
      await cli("--set", "log.retention.ms=600000");
      await assert.rejects(
        admin.alterConfigs({
          validateOnly: false,
          resources: [{
            type: ConfigResourceTypes.BROKER,
            name: String(nodeId),
            configEntries: [{ name: "broker.id", value: "7" }],
          }],
        }),
        (err: { type?: string }) => err.type === "INVALID_CONFIG",
      );

      const topicConfigs = async (topic: string) => {
        const r = await admin.describeConfigs({
          includeSynonyms: true,
          resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
        });
        return new Map(
          r.resources[0]!.configEntries.map((e) => [e.configName, e]),
        );
      };
      const follows = await topicConfigs("follows");
      assert.equal(follows.get("compression.type")!.configValue, "gzip");
      assert.equal(
        follows.get("compression.type")!.configSource,
        DYNAMIC_BROKER_CONFIG,
      );
      assert.deepEqual(
        follows.get("retention.ms")!.configSynonyms.map((
          s,
        ) => [s.configName, s.configValue, s.configSource]),
        [
          ["log.retention.ms", "600000", DYNAMIC_DEFAULT_BROKER_CONFIG],
          [
            "log.retention.ms",
            String(7 * 24 * 3600 * 1000),
            STATIC_BROKER_CONFIG,
          ],
          ["retention.ms", String(7 * 24 * 3600 * 1000), DEFAULT_CONFIG],
        ],
      );
      const own = await topicConfigs("own");
      assert.equal(own.get("compression.type")!.configValue, "producer");
      assert.equal(
        own.get("compression.type")!.configSource,
        DYNAMIC_TOPIC_CONFIG,
      );

      const lines = Array.from(
        { length: 20 },
        (_, i) => `line ${i} `.repeat(20),
      );
      for (const topic of ["follows", "own"]) {
        await kcatProduce(broker.bootstrap, topic, lines, ["-z", "lz4"]);
      }
      assert.deepEqual(
        new Set(await fetchedCodecs(client, "follows")),
        new Set([Compression.gzip]),
      );
      assert.deepEqual(
        new Set(await fetchedCodecs(client, "own")),
        new Set([Compression.lz4]),
      );

      const shown = await cli();
      assert.match(
        shown,
        /^compression\.type=gzip\tDYNAMIC_BROKER_CONFIG$/m,
      );
      assert.match(
        shown,
        /^log\.retention\.ms=600000\tDYNAMIC_DEFAULT_BROKER_CONFIG$/m,
      );

      await admin.disconnect();
      await client.close();
      await broker.stop();
      broker = await startBroker({ dataDir, port });
      client = await KafkaClient.connect(broker.bootstrap);
      const after = await cli();
      assert.match(
        after,
        /^compression\.type=gzip\tDYNAMIC_BROKER_CONFIG$/m,
      );
      assert.match(
        after,
        /^log\.retention\.ms=600000\tDYNAMIC_DEFAULT_BROKER_CONFIG$/m,
      );
      const ownAfter = new Map(
        (await client.describeConfigs({ type: "topic", name: "own" })).map((
          c,
        ) => [c.name, c]),
      );
      assert.deepEqual(
        [
          ownAfter.get("retention.ms")!.value,
          ownAfter.get("retention.ms")!.source,
        ],
        ["1234", DYNAMIC_TOPIC_CONFIG],
      );
      // Removing the broker's value hands topics back to the config file's.
      await cli("--broker", String(nodeId), "--delete", "compression.type");
      await kcatProduce(broker.bootstrap, "follows", lines, ["-z", "lz4"]);
      assert.equal(
        (await fetchedCodecs(client, "follows")).at(-1),
        Compression.lz4,
      );
    } finally {
      await admin.disconnect();
      await client.close();
      await broker.stop();
      await removeDir(dataDir);
    }
  },
});
