// Transactions end to end with librdkafka (Debian's python3-confluent-kafka)
// against a real broker: init_transactions, a commit that also sends a
// group's offsets, an abort and another commit; a read_committed consumer
// sees only the committed records and a read_uncommitted one all of them.
import assert from "node:assert/strict";
import { removeDir, startBroker } from "./harness.ts";
import { hasPythonModule, runPython } from "./python.ts";

const hasConfluent = await hasPythonModule("confluent_kafka");

Deno.test({
  name:
    "librdkafka transactions: offsets apply on commit, read_committed skips the aborted records",
  ignore: !hasConfluent,
  async fn() {
    const broker = await startBroker({
      set: ["transactions.state_partitions=2", "groups.offsets_partitions=2"],
    });
    try {
      const r = await runPython("confluent_transactions.py", [
        broker.bootstrap,
        "rdk-txn-out",
      ], { timeoutMs: 120_000 });
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(new TextDecoder().decode(r.stdout));
      assert.equal(out.group_offset, 3);
      assert.deepEqual(out.read_committed, ["a", "b", "c", "d"]);
      assert.deepEqual(out.read_uncommitted, [
        "a",
        "b",
        "c",
        "d",
        "x",
        "y",
      ]);
    } finally {
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});
