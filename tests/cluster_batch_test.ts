// End-to-end: each performance.* batching key bounds how many record sets
// share one Raft entry of a partition group. Method: a one-broker cluster
// per setting (the Raft path, a one-voter group); 200 record sets produced
// at once on one connection; the growth of the leader's Raft index
// (DescribeQuorum) counts the entries, and the offsets must follow the
// order of the calls.
import assert from "node:assert/strict";
import { buildRecordBatch } from "../src/protocol/mod.ts";
import { Cluster } from "./cluster_harness.ts";

const SETS = 200;

/** Produces SETS record sets at once; returns how many entries they took. */
async function entriesFor(set: string[]): Promise<number> {
  const cluster = await Cluster.start({ size: 1, set });
  try {
    const client = await cluster.client();
    try {
      await client.createTopic("batched", {
        partitions: 1,
        replicationFactor: 1,
      });
      await cluster.waitForLeaders(client, "batched");
      const index = async () => {
        const q = await client.describeQuorum("batched", 0);
        const leader = q.replicas.find((r) => r.nodeId === q.leader);
        assert.ok(leader !== undefined, "DescribeQuorum names no leader");
        return leader.logEndOffset;
      };
      // The first produce settles leadership bookkeeping (a barrier entry).
      await client.produce("batched", 0, batch(-1));
      const before = await index();
      const acked = await Promise.all(
        Array.from(
          { length: SETS },
          (_, i) => client.produce("batched", 0, batch(i)),
        ),
      );
      const after = await index();
      // The order of produce calls is the order of offsets.
      acked.forEach((a, i) => assert.equal(a.baseOffset, BigInt(i + 1)));
      return Number(after - before);
    } finally {
      await client.close();
    }
  } finally {
    await cluster.destroy();
  }
}

function batch(i: number): Uint8Array {
  return buildRecordBatch([{ value: new TextEncoder().encode(`v${i}`) }]);
}

Deno.test({
  name:
    "Cluster merges concurrent record sets into Raft entries within performance.max_batch_size, max_batch_bytes and batch_timeout",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const wait = "performance.batch_timeout=10s";
    await t.step(`${wait} merges`, async () => {
      const entries = await entriesFor([wait]);
      assert.ok(entries < SETS / 2, `${entries} entries for ${SETS} sets`);
    });
    await t.step("max_batch_size=10 caps each entry at 10 sets", async () => {
      const entries = await entriesFor([
        wait,
        "performance.max_batch_size=10",
      ]);
      assert.ok(
        entries >= SETS / 10 && entries < SETS,
        `${entries} entries for ${SETS} sets`,
      );
    });
    for (
      const off of [
        [wait, "performance.max_batch_size=1"],
        [wait, "performance.max_batch_bytes=1"],
        ["performance.batch_timeout=0"],
      ]
    ) {
      await t.step(
        `${off.join(" ")} gives each set its own entry`,
        async () => {
          const entries = await entriesFor(off);
          assert.ok(entries >= SETS, `${entries} entries for ${SETS} sets`);
        },
      );
    }
  },
});
