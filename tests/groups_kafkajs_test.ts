// End-to-end consumer groups with kafkajs 2.2.4 (the client that always
// consumes through a group): three members share a six-partition topic,
// one leaves and the others take over its partitions, and a restarted
// member resumes after the group's last commit.
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import { removeDir, startBroker } from "./harness.ts";

const { Kafka, logLevel } = kafkajs;
type Consumer = ReturnType<InstanceType<typeof Kafka>["consumer"]>;

const TOPIC = "events";
const GROUP = "readers";
const PARTITIONS = 6;

async function waitFor(what: string, done: () => boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("kafkajs group members share partitions, take over a leaver's and resume after commits", async () => {
  const broker = await startBroker({
    set: ["groups.initial_rebalance_delay=0", "groups.offsets_partitions=4"],
  });
  const kafka = new Kafka({
    clientId: "groups-e2e",
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  const producer = kafka.producer();
  const consumers: Consumer[] = [];
  /** "partition:offset" → how many times some member consumed it. */
  const seen = new Map<string, number>();
  const byMember = new Map<number, Set<number>>();
  let consumed = 0;
  const startConsumer = async (index: number) => {
    const consumer = kafka.consumer({
      groupId: GROUP,
      sessionTimeout: 6000,
      rebalanceTimeout: 10_000,
      heartbeatInterval: 300,
    });
    consumers[index] = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const assigned = e.payload.memberAssignment[TOPIC] ?? [];
      byMember.set(index, new Set(assigned));
    });
    await consumer.run({
      eachMessage: ({ partition, message }) => {
        const key = `${partition}:${message.offset}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        consumed++;
        return Promise.resolve();
      },
    });
  };
  const assignedTotal = () =>
    [...byMember.values()].reduce((n, s) => n + s.size, 0);
  const produce = async (count: number, from: number) => {
    for (let sent = 0; sent < count; sent += 1000) {
      await producer.send({
        topic: TOPIC,
        messages: Array.from({ length: 1000 }, (_, i) => ({
          key: String(from + sent + i),
          value: `message ${from + sent + i}`,
        })),
      });
    }
  };
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: TOPIC, numPartitions: PARTITIONS }],
      waitForLeaders: true,
    });
    await producer.connect();
    for (let i = 0; i < 3; i++) await startConsumer(i);
    await waitFor(
      "three members to split six partitions",
      () =>
        byMember.size === 3 && assignedTotal() === PARTITIONS &&
        [...byMember.values()].every((s) => s.size === 2),
    );

    await produce(30_000, 0);
    await waitFor("30000 messages", () => seen.size === 30_000);
    assert.equal(consumed, 30_000, "each message is consumed exactly once");

    // A member leaves: the other two take over its partitions.
    await consumers[2]!.disconnect();
    byMember.delete(2);
    await waitFor(
      "two members to split six partitions",
      () =>
        assignedTotal() === PARTITIONS &&
        [...byMember.values()].every((s) => s.size === 3),
    );
    await produce(6000, 30_000);
    await waitFor("36000 messages", () => seen.size === 36_000);
    for (const [key, n] of seen) assert.equal(n, 1, `message ${key} once`);

    // Stop everyone: kafkajs commits what it consumed on the way out.
    await consumers[0]!.disconnect();
    await consumers[1]!.disconnect();
    const committed = await admin.fetchOffsets({
      groupId: GROUP,
      topics: [TOPIC],
    });
    const highs = await admin.fetchTopicOffsets(TOPIC);
    const total = committed[0]!.partitions.reduce(
      (n, p) => n + Number(p.offset),
      0,
    );
    assert.equal(total, 36_000);
    assert.equal(
      highs.reduce((n, p) => n + Number(p.high), 0),
      36_000,
    );

    // A restarted member resumes after the commit: it sees only new data.
    byMember.clear();
    consumed = 0;
    seen.clear();
    await produce(1000, 36_000);
    await startConsumer(3);
    await waitFor("1000 new messages", () => seen.size === 1000);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(consumed, 1000, "nothing committed before is read again");
  } finally {
    for (const c of consumers) await c?.disconnect().catch(() => {});
    await producer.disconnect();
    await admin.disconnect();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});
