// End-to-end consumer groups with kcat -G (librdkafka 2.0.2): two balanced
// consumer instances in one group split a topic's partitions between them.
import assert from "node:assert/strict";
import { removeDir, run, startBroker } from "./harness.ts";

const hasKcat = await run("kcat", ["-V"]).then((r) => r.code === 0).catch(
  () => false,
);

Deno.test({
  name:
    "kcat -G instances in one group split the partitions and read every message once",
  ignore: !hasKcat,
  async fn() {
    const broker = await startBroker({
      set: [
        "groups.initial_rebalance_delay=3s",
        "topics.default_partitions=4",
        "groups.offsets_partitions=2",
      ],
    });
    try {
      const lines = Array.from({ length: 200 }, (_, i) => `m${i}`).join("\n");
      const produced = await run("kcat", [
        "-b",
        broker.bootstrap,
        "-P",
        "-t",
        "shared",
        "-K:",
      ], {
        stdin: new TextEncoder().encode(
          lines.split("\n").map((l, i) => `k${i}:${l}`).join("\n") + "\n",
        ),
      });
      assert.equal(produced.code, 0, produced.stderr);
      // Each instance exits on its own after a quiet spell (-X wait), and
      // both join before the first rebalance completes (initial delay 3 s).
      const consume = () =>
        run("kcat", [
          "-b",
          broker.bootstrap,
          "-G",
          "kgroup",
          "-X",
          "session.timeout.ms=6000",
          "-X",
          "heartbeat.interval.ms=500",
          "-X",
          "auto.offset.reset=earliest",
          "-f",
          "%p %s\n",
          "-o",
          "beginning",
          "-e",
          "shared",
        ], { timeoutMs: 40_000 });
      const [a, b] = await Promise.all([consume(), consume()]);
      const rows = (r: { stdout: Uint8Array }) =>
        new TextDecoder().decode(r.stdout).split("\n").filter((l) => l !== "");
      const rowsA = rows(a);
      const rowsB = rows(b);
      const parts = (rs: string[]) => new Set(rs.map((r) => r.split(" ")[0]));
      assert.ok(rowsA.length > 0 && rowsB.length > 0, "both instances read");
      for (const p of parts(rowsA)) assert.ok(!parts(rowsB).has(p));
      assert.equal(rowsA.length + rowsB.length, 200);
    } finally {
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});
