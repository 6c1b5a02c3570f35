// min.insync.replicas stricter than a Raft majority, on 3 real brokers:
// with all three in sync an acks=all write succeeds; once one is killed
// (kill -9) acks=all writes are refused with NOT_ENOUGH_REPLICAS (or, when
// the commit raced the failure detection, NOT_ENOUGH_REPLICAS_AFTER_APPEND)
// for our client and for kcat (librdkafka), while acks=1 writes and a topic
// whose minimum is a majority go on; a restart of the killed broker lets
// acks=all through again.
import assert from "node:assert/strict";
import { KafkaClient, KafkaError } from "../src/client/mod.ts";
import { buildRecordBatch, ErrorCode } from "../src/protocol/mod.ts";
import { Cluster, waitFor } from "./cluster_harness.ts";
import { hasKcat, run } from "./harness.ts";

const batch = (value: string) =>
  buildRecordBatch([{ value: new TextEncoder().encode(value) }]);

/** The error code a produce answered, 0 for success. */
async function produceCode(
  client: KafkaClient,
  topic: string,
  value: string,
  acks: -1 | 1,
): Promise<number> {
  try {
    await client.produce(topic, 0, batch(value), { acks, timeoutMs: 1_000 });
    return ErrorCode.NONE;
  } catch (err) {
    if (err instanceof KafkaError) return err.code;
    throw err;
  }
}

Deno.test({
  name:
    "min.insync.replicas=3 refuses acks=all writes while a replica is down, for our client and kcat, and lets acks=1 and a majority topic go on",
  ignore: !hasKcat,
  async fn() {
    const cluster = await Cluster.start();
    // A retry or two rides over a connection to the killed broker; a
    // refusal is answered the same after them.
    const client = await KafkaClient.connect(cluster.bootstrap(), {
      retries: 2,
    });
    try {
      for (const [topic, min] of [["strict", "3"], ["majority", "2"]]) {
        await client.createTopic(topic!, {
          partitions: 1,
          replicationFactor: 3,
          configs: { "min.insync.replicas": min! },
        });
      }
      await assert.rejects(
        client.createTopic("impossible", {
          partitions: 1,
          replicationFactor: 3,
          configs: { "min.insync.replicas": "4" },
        }),
        (err: KafkaError) =>
          err.code === ErrorCode.INVALID_CONFIG &&
          /exceeds the replication factor 3/.test(err.message),
      );
      const strict = await cluster.waitForLeaders(client, "strict");
      await cluster.waitForLeaders(client, "majority");
      assert.equal(await produceCode(client, "strict", "all-three", -1), 0);

      const leader = strict.partitions[0]!.leader;
      const victim = strict.partitions[0]!.replicas.find((r) => r !== leader)!;
      await cluster.kill9(victim);
      // Before the controller fails the broker the commit may race it:
      // the write is then kept but answered AFTER_APPEND.
      const raced = await produceCode(client, "strict", "raced", -1);
      assert.ok(
        raced === ErrorCode.NOT_ENOUGH_REPLICAS ||
          raced === ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        `acks=all with a replica down answered ${raced}`,
      );
      await waitFor("the killed broker out of the ISR", async () => {
        const code = await produceCode(client, "strict", "refused", -1);
        return code === ErrorCode.NOT_ENOUGH_REPLICAS ? true : undefined;
      });
      assert.equal(await produceCode(client, "strict", "acks-1", 1), 0);
      assert.equal(await produceCode(client, "majority", "two", -1), 0);

      const kcat = await run("kcat", [
        "-b",
        cluster.bootstrap(),
        "-P",
        "-t",
        "strict",
        "-p",
        "0",
        "-X",
        "acks=all",
        "-X",
        "message.timeout.ms=5000",
        // librdkafka retries a retriable refusal until the message times
        // out; without retries it reports the broker's error.
        "-X",
        "retries=0",
      ], { stdin: new TextEncoder().encode("from-kcat\n") });
      assert.match(kcat.stderr, /Not enough in-sync replicas/);

      await cluster.restart(victim);
      await waitFor("acks=all accepted with the replica back", async () => {
        const code = await produceCode(client, "strict", "back", -1);
        return code === ErrorCode.NONE ? true : undefined;
      }, { timeoutMs: 30_000 });
    } finally {
      await client.close();
      await cluster.destroy();
    }
  },
});
