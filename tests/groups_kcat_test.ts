// End-to-end consumer groups with kcat -G (librdkafka 2.0.2): two balanced
// consumer instances in one group split a topic's partitions between them.
import assert from "node:assert/strict";
import { KafkaClient } from "../src/client/mod.ts";
import { hasKcat, kcatProduce, removeDir, startBroker } from "./harness.ts";

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
      // Both instances join first (within the 3 s initial rebalance delay),
      // then the messages are produced, so one generation holds them all:
      // nobody leaves while they are read.
      const consumer = () => {
        const child = new Deno.Command("kcat", {
          args: [
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
            "-u",
            "-f",
            "%p %s\n",
            "shared",
          ],
          stdout: "piped",
          stderr: "null",
        }).spawn();
        const rows: string[] = [];
        const done = (async () => {
          let rest = "";
          for await (
            const chunk of child.stdout.pipeThrough(new TextDecoderStream())
          ) {
            const lines = (rest + chunk).split("\n");
            rest = lines.pop()!;
            rows.push(...lines.filter((l) => l !== ""));
          }
        })();
        return { child, rows, done };
      };
      const admin = await KafkaClient.connect(broker.bootstrap);
      await admin.createTopic("shared", { partitions: 4 });
      await admin.close();
      const a = consumer();
      const b = consumer();
      await new Promise((r) => setTimeout(r, 6_000));
      const lines = Array.from({ length: 200 }, (_, i) => `k${i}:m${i}`);
      await kcatProduce(broker.bootstrap, "shared", lines, ["-K:"]);
      const deadline = Date.now() + 30_000;
      while (a.rows.length + b.rows.length < 200 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      for (const c of [a, b]) {
        try {
          c.child.kill("SIGTERM");
        } catch {
          // It exited by itself; its output is what it read.
        }
        await c.child.status;
        await c.done;
      }
      const parts = (rs: string[]) => new Set(rs.map((r) => r.split(" ")[0]));
      assert.ok(a.rows.length > 0 && b.rows.length > 0, "both instances read");
      for (const p of parts(a.rows)) {
        assert.ok(!parts(b.rows).has(p), `partition ${p} read by both`);
      }
      assert.equal(a.rows.length + b.rows.length, 200);
    } finally {
      await broker.stop();
      await removeDir(broker.dataDir);
    }
  },
});
