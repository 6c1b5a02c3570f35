// A topic deleted and re-created under a subscribed librdkafka group
// consumer: the new topic has a new id, the group rebalances onto it, and
// the old generation's positions are not committed to it.
import assert from "node:assert/strict";
import { removeDir, startBroker } from "./harness.ts";
import { hasPythonModule, runPython } from "./python.ts";

Deno.test({
  name:
    "a librdkafka group consumer reads from its start a topic deleted and re-created with fewer partitions under it",
  ignore: !(await hasPythonModule("confluent_kafka")),
  async fn() {
    const broker = await startBroker();
    try {
      const r = await runPython("recreate_consumer.py", [
        broker.bootstrap,
        "again",
      ], { timeoutMs: 90_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(r.stdout)), {
        old: ["old-0", "old-1", "old-2"],
        new: ["new-0", "new-1"],
      });
    } finally {
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});
