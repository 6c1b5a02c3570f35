// Durability: every message acknowledged with acks=all survives kill -9 of
// the broker in the middle of a produce run, and a torn write at the tail of
// a partition is cut off on restart without losing acknowledged data.
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import {
  hasKcat,
  kcatProduce,
  kcatValues,
  removeDir,
  startBroker,
} from "./harness.ts";

const { Kafka, logLevel } = kafkajs;

Deno.test({
  name: "acks=all messages survive kill -9 mid-produce and a torn tail",
  ignore: !hasKcat,
  async fn() {
    const first = await startBroker({ set: ["topics.default_partitions=2"] });
    const dataDir = first.dataDir;
    const acked: string[] = [];
    try {
      const kafka = new Kafka({
        clientId: "durability",
        brokers: [first.bootstrap],
        logLevel: logLevel.NOTHING,
        retry: { retries: 0 },
      });
      const producer = kafka.producer({ allowAutoTopicCreation: true });
      await producer.connect();
      // Four writers keep requests in flight so the kill lands mid-write.
      let stop = false;
      let n = 0;
      const writer = async (w: number) => {
        while (!stop) {
          const batch = Array.from({ length: 20 }, () => `w${w}-${n++}`);
          try {
            await producer.send({
              topic: "durable",
              acks: -1,
              messages: batch.map((value) => ({ value })),
            });
            acked.push(...batch);
          } catch {
            return; // The broker died; unacknowledged batches may be lost.
          }
        }
      };
      const writers = [0, 1, 2, 3].map(writer);
      while (acked.length < 4_000) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await first.kill9();
      stop = true;
      await Promise.all(writers);
      await producer.disconnect().catch(() => {});
    } finally {
      await first.kill9();
    }
    assert.ok(acked.length >= 4_000);

    // Simulate a torn last write: garbage after the last complete batch.
    const segment = `${dataDir}/durable-0/00000000000000000000.log`;
    const file = await Deno.open(segment, { append: true });
    await file.write(
      new Uint8Array([0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 1, 0, 7, 7]),
    );
    file.close();

    const second = await startBroker({ dataDir });
    try {
      assert.match(second.logs(), /trunc/i, "recovery reported the torn tail");
      const got = new Set(await kcatValues(second.bootstrap, "durable"));
      const lost = acked.filter((m) => !got.has(m));
      assert.deepEqual(
        lost.slice(0, 10),
        [],
        `${lost.length} acknowledged messages lost`,
      );
      // The log accepts new writes after recovery.
      await kcatProduce(second.bootstrap, "durable", ["after-restart"], [
        "-p",
        "0",
      ]);
      assert.ok(
        (await kcatValues(second.bootstrap, "durable")).includes(
          "after-restart",
        ),
      );
    } finally {
      await second.stop();
      await removeDir(dataDir);
    }
  },
});
