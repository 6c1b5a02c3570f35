// Compaction on every replica: a 3-broker cluster, a compacted topic with
// RF=3 and small segments, keyed updates through raftq's client; each broker
// cleans its own replica, and after the cluster stops every replica's log,
// opened directly, holds the same latest value for every key.
import assert from "node:assert/strict";
import {
  buildRecordBatch,
  decodeRecordBatches,
  readBatchHeader,
} from "../src/protocol/mod.ts";
import { PartitionLog } from "../src/storage/mod.ts";
import { Cluster } from "./cluster_harness.ts";

const utf8 = new TextEncoder();
const text = new TextDecoder();

/** The last value per key of a partition log read from its directory. */
function latestPerKey(dir: string): Map<string, string> {
  const log = PartitionLog.open(dir);
  try {
    const latest = new Map<string, string>();
    let offset = log.logStartOffset;
    for (;;) {
      const chunk = log.read(offset, { maxBytes: 1 << 20 });
      const records = decodeRecordBatches(chunk);
      if (chunk.length === 0) break;
      for (const r of records) {
        latest.set(text.decode(r.key!), text.decode(r.value!));
      }
      for (let pos = 0; pos < chunk.length;) {
        const h = readBatchHeader(chunk, pos);
        offset = h.baseOffset + BigInt(h.lastOffsetDelta) + 1n;
        pos += h.sizeBytes;
      }
    }
    return latest;
  } finally {
    log.close();
  }
}

Deno.test("every replica of a compacted RF=3 topic cleans its own log and answers the same latest value per key", async () => {
  const cluster = await Cluster.start({
    set: ["log.cleaner_backoff_ms=200ms"],
  });
  const client = await cluster.client();
  const expected = new Map<string, string>();
  try {
    await client.createTopic("table", {
      partitions: 1,
      replicationFactor: 3,
      configs: {
        "cleanup.policy": "compact",
        "segment.bytes": "4096",
        "min.cleanable.dirty.ratio": "0.01",
      },
    });
    await cluster.waitForLeaders(client, "table");
    for (let round = 0; round < 30; round++) {
      const records = Array.from({ length: 20 }, (_, k) => {
        expected.set(`key${k}`, `v${round}`);
        return { key: utf8.encode(`key${k}`), value: utf8.encode(`v${round}`) };
      });
      await client.produce("table", 0, buildRecordBatch(records), { acks: -1 });
    }
    for (const nodeId of [1, 2, 3]) {
      await cluster.waitForLog(nodeId, /cleaned table-0/, {
        timeoutMs: 30_000,
      });
    }
  } finally {
    await client.close();
    await cluster.stopAll();
  }
  try {
    for (const nodeId of [1, 2, 3]) {
      const dir = `${cluster.member(nodeId).dataDir}/table-0`;
      assert.deepEqual(latestPerKey(dir), expected, `broker ${nodeId}`);
    }
  } finally {
    await cluster.destroy();
  }
});
