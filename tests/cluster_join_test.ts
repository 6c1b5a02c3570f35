// A broker added to a running cluster with static discovery: brokers 1-3
// formed the cluster listing only each other; broker 4 starts later with a
// peer list of all four. It must join the controller group the others
// formed (not found a second one), register, and take replicas.
import assert from "node:assert/strict";
import { buildRecordBatch, decodeRecordBatches } from "../src/protocol/mod.ts";
import { Cluster } from "./cluster_harness.ts";

Deno.test("Cluster admits a broker started after it formed, whose static peers list it too", async () => {
  const cluster = await Cluster.start({ size: 4, running: 3, founders: 3 });
  const client = await cluster.client();
  try {
    await cluster.restart(4);
    await cluster.waitForBrokers(4);
    assert.match(
      cluster.logs(4),
      /the cluster already formed with controller voters \[1,2,3\]: joining it/,
    );
    const admitted = [1, 2, 3].map((id) => cluster.logs(id)).join("\n");
    assert.match(admitted, /broker 4 joined the controller group as a voter/);

    await client.createTopic("everywhere", {
      partitions: 2,
      replicationFactor: 4,
    });
    const t = await cluster.waitForLeaders(client, "everywhere");
    for (const p of t.partitions) {
      assert.deepEqual([...p.replicas].sort(), [1, 2, 3, 4]);
    }
    const value = new TextEncoder().encode("on four brokers");
    await client.produce("everywhere", 1, buildRecordBatch([{ value }]), {
      acks: -1,
    });
    const res = await client.fetch("everywhere", 1, 0n, { maxWaitMs: 0 });
    assert.deepEqual(
      decodeRecordBatches(res.records).map((r) => r.value),
      [value],
    );
  } finally {
    await client.close();
    await cluster.destroy();
  }
});
