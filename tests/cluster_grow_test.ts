// From one broker to three: a broker that ran on its own (memory
// discovery, a one-voter cluster) is restarted on the same data dir with
// static peers; two empty brokers join it, the CLI raises the topic and the
// offsets topic to RF=3, and then kill -9 of the original broker loses no
// acknowledged message: the others serve every message and the group's
// committed offset. The same growth works with etcd discovery.
import assert from "node:assert/strict";
import { KafkaClient } from "../src/client/mod.ts";
import { decodeRecordBatches } from "../src/protocol/mod.ts";
import {
  etcdAvailable,
  EtcdServer,
} from "../src/discovery/testing/etcd_server.ts";
import {
  assertAckedInOrder,
  Cluster,
  freePorts,
  SequentialProducer,
  waitFor,
} from "./cluster_harness.ts";
import {
  type BrokerProcess,
  hasKcat,
  kcatProduce,
  kcatValues,
  raftq,
  removeDir,
  run,
  startBroker,
} from "./harness.ts";

const TOPIC = "growing";
const GROUP = "grower";

async function readAll(cluster: Cluster): Promise<number[]> {
  const client = await cluster.client();
  try {
    await cluster.waitForLeaders(client, TOPIC);
    const values: number[] = [];
    for (let offset = 0n;;) {
      const res = await client.fetch(TOPIC, 0, offset, { maxWaitMs: 0 });
      const records = decodeRecordBatches(res.records);
      if (records.length === 0) break;
      for (const r of records) {
        values.push(Number(new TextDecoder().decode(r.value!).slice(2)));
        offset = r.offset + 1n;
      }
    }
    return values;
  } finally {
    await client.close();
  }
}

Deno.test("Cluster grows from one broker's data dir to three, and survives kill -9 of the first", async () => {
  const cluster = await Cluster.start({ size: 3, running: 0 });
  try {
    // 1. One broker on its own, with data and a committed group offset.
    await cluster.restart(1, { alone: true });
    let client = await cluster.client();
    await client.createTopic(TOPIC, { partitions: 1, replicationFactor: 1 });
    await cluster.waitForLeaders(client, TOPIC);
    const first = new SequentialProducer(client, TOPIC);
    await first.ackedMore(200, 30_000);
    await first.stop();
    const alone = await readAll(cluster);
    assertAckedInOrder(alone, first);
    const commit = await raftq([
      "group",
      "reset-offsets",
      GROUP,
      "--topic",
      TOPIC,
      "--to-offset",
      "150",
      "--bootstrap",
      cluster.bootstrap(),
    ]);
    assert.equal(commit.code, 0, commit.stderr);
    await client.close();
    await cluster.stopAll();

    // 2. The same data dir with static peers; two new, empty brokers join.
    await cluster.restart(1);
    await Promise.all([cluster.restart(2), cluster.restart(3)]);
    await cluster.waitForBrokers(3);
    assert.match(
      cluster.logs(2) + cluster.logs(3),
      /the cluster already formed with controller voters \[1\]: joining it/,
    );
    assert.deepEqual(await readAll(cluster), alone);

    // 3. Raise the topic and the offsets topic to RF=3 under acks=all load.
    // No retries inside the client: the producer sees every failed attempt.
    client = await KafkaClient.connect(cluster.bootstrap(), {
      retries: 0,
      requestTimeoutMs: 5_000,
    });
    const second = new SequentialProducer(client, TOPIC);
    for (const topic of [TOPIC, "__consumer_offsets"]) {
      const moved = await raftq([
        "cluster",
        "reassign",
        topic,
        "--replicas",
        "1,2,3",
        "--wait",
        "--bootstrap",
        cluster.bootstrap(),
      ]);
      assert.equal(moved.code, 0, moved.stderr);
    }
    await second.ackedMore(100, 30_000);

    // 4. kill -9 of the original broker: the others have everything.
    await cluster.kill9(1);
    await second.ackedMore(50, 30_000);
    await second.stop();
    await client.close();
    const values = await readAll(cluster);
    assert.deepEqual(values.slice(0, alone.length), alone);
    assertAckedInOrder(values.slice(alone.length), second);
    const described = await waitFor("the group's offset", async () => {
      const r = await raftq([
        "group",
        "describe",
        GROUP,
        "--bootstrap",
        cluster.bootstrap(),
      ]);
      const out = new TextDecoder().decode(r.stdout);
      return r.code === 0 && /\b150\b/.test(out) ? out : undefined;
    });
    assert.match(described, new RegExp(`${TOPIC}\\s+0\\s+150`));
  } finally {
    await cluster.destroy();
  }
});

Deno.test({
  name:
    "Cluster grows from one broker's data dir to three brokers found through etcd",
  ignore: !etcdAvailable() || !hasKcat,
  async fn() {
    const etcd = await EtcdServer.start();
    const raftPorts = freePorts(3);
    const dataDir = await Deno.makeTempDir({ prefix: "raftq-grow-etcd-" });
    const onEtcd = (nodeId: number) => [
      `node_id=${nodeId}`,
      `raft_port=${raftPorts[nodeId - 1]}`,
      "discovery.type=etcd",
      `discovery.endpoints=${etcd.endpoint}`,
    ];
    const running: BrokerProcess[] = [];
    try {
      const alone = await startBroker({ dataDir });
      const values = Array.from({ length: 200 }, (_, i) => `alone-${i}`);
      await kcatProduce(alone.bootstrap, "etcd-grown", values, [
        "-X",
        "acks=all",
      ]);
      await alone.stop();

      // The data dir keeps its controller group: etcd only introduces the
      // brokers, the new ones find it formed and join.
      const first = await startBroker({ dataDir, set: onEtcd(1) });
      running.push(first);
      running.push(
        ...await Promise.all(
          [2, 3].map((id) => startBroker({ set: onEtcd(id) })),
        ),
      );
      const [, second, third] = running as [
        BrokerProcess,
        BrokerProcess,
        BrokerProcess,
      ];
      assert.match(
        second.logs() + third.logs(),
        /the cluster already formed with controller voters \[1\]: joining it/,
      );
      await waitFor("three live brokers", async () => {
        const md = await run("kcat", ["-b", first.bootstrap, "-L", "-J"]);
        const parsed = JSON.parse(new TextDecoder().decode(md.stdout));
        return parsed.brokers?.length === 3 || undefined;
      });
      const moved = await raftq([
        "cluster",
        "reassign",
        "etcd-grown",
        "--replicas",
        "1,2,3",
        "--wait",
        "--bootstrap",
        first.bootstrap,
      ]);
      assert.equal(moved.code, 0, moved.stderr);
      await first.kill9();
      const after = `${second.bootstrap},${third.bootstrap}`;
      await waitFor("the others to serve every message", async () => {
        const read = await kcatValues(after, "etcd-grown").catch(() => []);
        return read.length === values.length || undefined;
      });
      assert.deepEqual(await kcatValues(after, "etcd-grown"), values);
    } finally {
      await Promise.all(running.map((b) => b.kill9()));
      await etcd.stop();
      await removeDir(dataDir);
    }
  },
});
