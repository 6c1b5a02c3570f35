// A rolling restart of a 3-broker cluster: each broker in turn is stopped
// with SIGTERM (it hands the leadership of its Raft groups to in-sync
// replicas first) and started again, while acks=all production runs on
// every partition of an RF=3 topic. Nothing acknowledged may be lost or
// reordered, and the replicas' logs must end identical. The longest produce
// stall is logged, not asserted: `deno task bench` measures it.
import assert from "node:assert/strict";
import { KafkaClient } from "../src/client/mod.ts";
import { decodeRecordBatches } from "../src/protocol/mod.ts";
import {
  assertAckedInOrder,
  assertSameLogsSoon,
  Cluster,
  SequentialProducer,
} from "./cluster_harness.ts";

const PARTITIONS = 3;
const decoder = new TextDecoder();

/** The "v-N" numbers of a partition, in log order, read with our client. */
async function valuesOf(
  client: KafkaClient,
  topic: string,
  partition: number,
): Promise<number[]> {
  const values: number[] = [];
  let offset = 0n;
  for (;;) {
    const res = await client.fetch(topic, partition, offset, { maxWaitMs: 0 });
    const records = decodeRecordBatches(res.records);
    for (const r of records) {
      values.push(Number(decoder.decode(r.value ?? new Uint8Array()).slice(2)));
      offset = r.offset + 1n;
    }
    if (records.length === 0 || offset >= res.highWatermark) return values;
  }
}

Deno.test({
  name:
    "Cluster keeps every acknowledged message in order through a rolling restart with SIGTERM, and each stopping broker hands off its leaderships",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const topic = "rolling";
    const cluster = await Cluster.start();
    const admin = await cluster.client();
    // No retries inside the client: the producers see every failed attempt.
    const client = await KafkaClient.connect(cluster.bootstrap(), {
      retries: 0,
      requestTimeoutMs: 5_000,
    });
    const producers: SequentialProducer[] = [];
    try {
      await admin.createTopic(topic, {
        partitions: PARTITIONS,
        replicationFactor: 3,
      });
      await cluster.waitForLeaders(admin, topic, { preferred: true });
      for (let p = 0; p < PARTITIONS; p++) {
        producers.push(new SequentialProducer(client, topic, { partition: p }));
      }
      const ackedMore = (count: number, timeoutMs: number) =>
        Promise.all(producers.map((p) => p.ackedMore(count, timeoutMs)));
      await ackedMore(20, 10_000);
      for (const p of producers) p.resetAckMsMax();
      for (const m of cluster.members) {
        const logs = await cluster.stop(m.nodeId);
        // It led its preferred partition at least, and let go of everything.
        const handed =
          /stopping: handed off (\d+) of (\d+) group\(s\) in (\d+) ms/
            .exec(logs);
        assert.ok(
          handed !== null,
          `broker ${m.nodeId} logged no hand-off: ${logs.slice(-1500)}`,
        );
        assert.equal(handed[1], handed[2], handed[0]);
        console.log(`broker ${m.nodeId}: ${handed[0]}`);
        // Production goes on with the other two.
        await ackedMore(10, 20_000);
        await cluster.restart(m.nodeId);
        await cluster.waitForBrokers(cluster.members.length);
        // Back in sync: leader balancing hands a replica its preferred
        // partitions only once it caught up.
        await cluster.waitForLeaders(admin, topic, {
          preferred: true,
          timeoutMs: 30_000,
        });
        await ackedMore(10, 10_000);
      }
      await Promise.all(producers.map((p) => p.stop()));
      console.log(
        `longest produce stall during the rolling restart: ${
          Math.max(...producers.map((p) => p.ackMsMax)).toFixed(0)
        } ms (per partition: ${
          producers.map((p) => p.ackMsMax.toFixed(0)).join(", ")
        })`,
      );
      for (const [p, producer] of producers.entries()) {
        assertAckedInOrder(await valuesOf(admin, topic, p), producer);
      }
      await admin.close();
      await client.close();
      await assertSameLogsSoon(cluster, topic, {
        partitions: Array.from({ length: PARTITIONS }, (_, p) => p),
      });
    } finally {
      await Promise.allSettled(producers.map((p) => p.stop()));
      await admin.close();
      await client.close();
      await cluster.destroy();
    }
  },
});
