// A replica that was down while the leader compacted its Raft log catches
// up from a snapshot: the snapshot names only a log position, so the
// replica copies the missing batches from the leader's partition log, and
// ends with segments byte-identical to the others'.
import assert from "node:assert/strict";
import { buildRecordBatch } from "../src/protocol/mod.ts";
import { assertSameLogsSoon, Cluster } from "./cluster_harness.ts";

Deno.test("a replica behind the leader's compaction catches up by snapshot", async () => {
  // A 1 MiB in-memory Raft log makes every group snapshot and compact often.
  const cluster = await Cluster.start({
    set: ["raft.max_in_mem_log_size=1MiB"],
  });
  const client = await cluster.client();
  try {
    await client.createTopic("snap", { partitions: 1, replicationFactor: 3 });
    const t = await cluster.waitForLeaders(client, "snap", { preferred: true });
    const leader = t.partitions[0]!.leader;
    const lagging = [1, 2, 3].find((n) => n !== leader)!;
    await cluster.kill9(lagging);
    const value = new Uint8Array(1000).fill(0x73);
    const batch = buildRecordBatch(
      Array.from({ length: 100 }, () => ({ value })),
    );
    // 8 MB while it is down: far more than the Raft log keeps.
    for (let i = 0; i < 80; i++) {
      await client.produce("snap", 0, batch, { acks: -1 });
    }
    await cluster.restart(lagging);
    // The returning replica copies the data the snapshot named.
    await cluster.waitForLog(lagging, /caught up/, { timeoutMs: 60_000 });
    assert.match(cluster.logs(lagging), /named by a snapshot/);
    await client.produce("snap", 0, batch, { acks: -1 });
    const end = await client.listOffsets("snap", 0, -1n);
    assert.equal(end, 8_100n);
    await assertSameLogsSoon(cluster, "snap", { partitions: [0] });
  } finally {
    await client.close();
    await cluster.destroy();
  }
});
