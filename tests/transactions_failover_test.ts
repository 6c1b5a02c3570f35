/**
 * Exactly once under kill -9, on 3 brokers with RF=3: a consume-transform-
 * produce loop copies every record of one topic to another in kafkajs
 * transactions (the output and the input offsets of group "copier" commit
 * together) while the leader of the output partition, and then the broker
 * of the transaction coordinator, are killed. A copier that fails starts
 * over from the group's committed offset with a new producer of the same
 * transactional id, as a Kafka Streams task would; a read_committed reader
 * must then see every input record exactly once, in order.
 */
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import { buildRecordBatch, decodeBatches } from "../src/protocol/mod.ts";
import type { KafkaClient } from "../src/client/mod.ts";
import { TXN_STATE_TOPIC } from "../src/broker/transactions/txn_records.ts";
import { Cluster, waitFor } from "./cluster_harness.ts";

const { Kafka, logLevel } = kafkajs;
const RECORDS = 200;
const PER_TXN = 10;
const IN = "eos-in";
const OUT = "eos-out";
const GROUP = "copier";

function kafkaOf(cluster: Cluster) {
  return new Kafka({
    clientId: "eos-copier",
    brokers: cluster.bootstrap().split(","),
    logLevel: logLevel.NOTHING,
    retry: { retries: 15, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
}

/** The values of up to PER_TXN input records from `offset`. */
async function readInput(
  client: KafkaClient,
  offset: bigint,
): Promise<{ values: string[]; next: bigint }> {
  const { records } = await client.fetch(IN, 0, offset, { maxWaitMs: 0 });
  const values: string[] = [];
  let next = offset;
  for (const { header, records: batch } of decodeBatches(records)) {
    for (const [i, r] of batch.entries()) {
      const at = header.baseOffset + BigInt(i);
      if (at < next || values.length >= PER_TXN) continue;
      values.push(new TextDecoder().decode(r.value ?? new Uint8Array(0)));
      next = at + 1n;
    }
  }
  return { values, next };
}

Deno.test({
  name:
    "exactly once: a kafkajs consume-transform-produce loop copies every record once while the output leader and the coordinator's broker are killed with kill -9",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await Cluster.start({
      set: [
        "transactions.state_partitions=1",
        "groups.offsets_partitions=1",
      ],
    });
    const client = await cluster.client();
    let kafka = kafkaOf(cluster);
    let admin = kafka.admin();
    try {
      for (const topic of [IN, OUT]) {
        await client.createTopic(topic, {
          partitions: 1,
          replicationFactor: 3,
        });
        await cluster.waitForLeaders(client, topic);
      }
      for (let i = 0; i < RECORDS; i += 20) {
        const batch = buildRecordBatch(
          Array.from({ length: 20 }, (_, j) => ({
            value: new TextEncoder().encode(`m${i + j}`),
          })),
        );
        await client.produce(IN, 0, batch, { acks: -1 });
      }
      await admin.connect();

      const committedOffset = async () => {
        const [topic] = await admin.fetchOffsets({
          groupId: GROUP,
          topics: [IN],
        });
        const offset = BigInt(topic!.partitions[0]!.offset);
        return offset < 0n ? 0n : offset;
      };
      // Which broker to kill after how many transactions; each comes back
      // before the next kill, so a majority stays up.
      const leaderOf = async (topic: string) =>
        (await cluster.waitForLeaders(client, topic)).partitions[0]!.leader;
      const faults = [
        { after: 4, victim: () => leaderOf(OUT) },
        { after: 10, victim: () => leaderOf(TXN_STATE_TOPIC) },
      ];

      let transactions = 0;
      let restarts = 0;
      let down: number | null = null;
      let restartAt = 0;
      let offset = 0n;
      while (offset < BigInt(RECORDS)) {
        assert.ok(restarts < 40, "the copier keeps failing");
        const producer = kafka.producer({
          transactionalId: "eos-copier-1",
          idempotent: true,
          maxInFlightRequests: 1,
          transactionTimeout: 10_000,
        });
        try {
          await producer.connect();
          offset = await committedOffset();
          while (offset < BigInt(RECORDS)) {
            const fault = faults[0];
            if (fault !== undefined && transactions >= fault.after) {
              faults.shift();
              down = await fault.victim();
              await cluster.kill9(down);
              restartAt = transactions + 3;
            } else if (down !== null && transactions >= restartAt) {
              await cluster.restart(down);
              down = null;
            }
            const { values, next } = await readInput(client, offset);
            const txn = await producer.transaction();
            try {
              await txn.send({
                topic: OUT,
                messages: values.map((value) => ({ value })),
              });
              await txn.sendOffsets({
                consumerGroupId: GROUP,
                topics: [{
                  topic: IN,
                  partitions: [{ partition: 0, offset: String(next) }],
                }],
              });
              await txn.commit();
            } catch (err) {
              await txn.abort().catch(() => {});
              throw err;
            }
            offset = next;
            transactions++;
          }
        } catch {
          restarts++;
          // A real copier backs off before it restarts. While the
          // controller group elects a leader, Metadata names no controller,
          // and kafkajs cannot connect an idempotent producer until then.
          await new Promise((r) => setTimeout(r, 250));
          // The failed copier's client may hold connections to the dead
          // broker: a new one starts from the committed offset.
          await admin.disconnect().catch(() => {});
          kafka = kafkaOf(cluster);
          admin = kafka.admin();
          await admin.connect();
        } finally {
          await producer.disconnect().catch(() => {});
        }
      }
      if (down !== null) await cluster.restart(down);
      assert.equal(faults.length, 0, "both brokers were killed");

      const consumer = kafka.consumer({ groupId: "eos-check" });
      const seen: string[] = [];
      try {
        await consumer.connect();
        await consumer.subscribe({ topic: OUT, fromBeginning: true });
        await consumer.run({
          eachMessage: ({ message }) => {
            seen.push(message.value?.toString() ?? "");
            return Promise.resolve();
          },
        });
        await waitFor(
          "the reader to reach the end",
          () => Promise.resolve(seen.length >= RECORDS ? true : undefined),
          { timeoutMs: 60_000 },
        );
        // Anything more would be a duplicate arriving late.
        await new Promise((r) => setTimeout(r, 1_000));
      } finally {
        await consumer.disconnect();
      }
      assert.deepEqual(
        seen,
        Array.from({ length: RECORDS }, (_, i) => `m${i}`),
        `${restarts} copier restart(s) over ${transactions} transactions`,
      );
    } finally {
      await admin.disconnect().catch(() => {});
      await client.close();
      await cluster.destroy();
    }
  },
});
