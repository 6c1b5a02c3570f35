// Transactions end to end with kafkajs 2.2.4 against a real broker: a
// transactional producer commits, aborts and commits again across two
// partitions, and each transaction leaves one marker (a control batch) in
// every partition it wrote; a second producer with the same transactional
// id fences the first, whose next transaction is refused, and whose open
// transaction is aborted under it, its partitions refusing its epoch; and
// consumer offsets sent in a transaction (sendOffsets) apply when it
// commits, never when it aborts, and survive a restart. A read_committed
// consumer (kafkajs' default) sees only committed records, also after a
// restart, and an abandoned transaction holds it back only until the
// coordinator aborts it at its timeout.
import assert from "node:assert/strict";
import type kafkajs from "kafkajs";
import { removeDir, restartBroker, startBroker } from "./harness.ts";
import { patientKafka, transactionalProducer } from "./transactions_harness.ts";

type Client = InstanceType<typeof kafkajs.Kafka>;
const TOPIC = "txn-out";

/**
 * The values a new consumer group reads from the start of TOPIC, once
 * `count` came (or 20 s passed) and half a second more for strays.
 */
async function readValues(
  kafka: Client,
  opts: { groupId: string; readUncommitted: boolean; count: number },
): Promise<string[]> {
  const consumer = kafka.consumer({
    groupId: opts.groupId,
    readUncommitted: opts.readUncommitted,
  });
  const seen: string[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message }) => {
        seen.push(message.value!.toString());
        return Promise.resolve();
      },
    });
    const deadline = Date.now() + 20_000;
    while (seen.length < opts.count && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    await consumer.disconnect();
  }
  return seen.sort();
}

Deno.test("kafkajs transactions commit and abort with markers, and a new producer fences the old", async () => {
  const broker = await startBroker({
    set: ["transactions.state_partitions=2", "groups.offsets_partitions=2"],
  });
  const kafka = patientKafka("txn-e2e", broker.port);
  const admin = kafka.admin();
  const transactional = () => transactionalProducer(kafka, "txn-e2e-1");
  const producer = transactional();
  const successor = transactional();
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: TOPIC, numPartitions: 2 }],
      waitForLeaders: true,
    });
    await producer.connect();
    const send = async (
      values: string[],
      end: "commit" | "abort",
    ) => {
      const txn = await producer.transaction();
      await txn.send({
        topic: TOPIC,
        messages: values.map((value, i) => ({ value, partition: i % 2 })),
      });
      await txn[end]();
    };
    await send(["a", "b", "c"], "commit");
    await send(["x", "y"], "abort");
    await send(["d"], "commit");
    const offsets = await admin.fetchTopicOffsets(TOPIC);
    const ends = offsets.sort((p, q) => p.partition - q.partition).map((o) =>
      Number(o.high)
    );
    // Partition 0: a c | x | d, each followed by its marker; 1: b | y.
    assert.deepEqual(ends, [4 + 3, 2 + 2]);

    // Reading uncommitted, a consumer gets every record and no marker;
    // reading committed, none of the aborted transaction's.
    assert.deepEqual(
      await readValues(kafka, {
        groupId: "everything",
        readUncommitted: true,
        count: 6,
      }),
      ["a", "b", "c", "d", "x", "y"],
    );
    assert.deepEqual(
      await readValues(kafka, {
        groupId: "committed",
        readUncommitted: false,
        count: 4,
      }),
      ["a", "b", "c", "d"],
    );

    // kafkajs asks for its producer id at its first transaction: the
    // successor's bumps the epoch, and the first producer is a zombie,
    // refused at its next transaction.
    await successor.connect();
    const txn = await successor.transaction();
    const zombie = await producer.transaction();
    await assert.rejects(
      zombie.send({ topic: TOPIC, messages: [{ value: "late" }] }),
      (err: Error & { type?: string }) =>
        ["INVALID_PRODUCER_EPOCH", "PRODUCER_FENCED"].includes(
          err.type ?? "",
        ),
    );
    await txn.send({ topic: TOPIC, messages: [{ value: "e", partition: 1 }] });
    await txn.commit();
    const after = await admin.fetchTopicOffsets(TOPIC);
    assert.equal(
      Number(after.find((o) => o.partition === 1)!.high),
      4 + 2,
    );
  } finally {
    await producer.disconnect().catch(() => {});
    await successor.disconnect().catch(() => {});
    await admin.disconnect();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

Deno.test("kafkajs zombie in the middle of a transaction is aborted and refused by its partition", async () => {
  const broker = await startBroker({
    set: ["transactions.state_partitions=1"],
  });
  const kafka = patientKafka("txn-zombie", broker.port);
  const admin = kafka.admin();
  const transactional = () => transactionalProducer(kafka, "txn-zombie-1");
  const zombie = transactional();
  const successor = transactional();
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: TOPIC, numPartitions: 1 }],
      waitForLeaders: true,
    });
    await zombie.connect();
    const open = await zombie.transaction();
    await open.send({ topic: TOPIC, messages: [{ value: "early" }] });
    // The successor aborts the open transaction, fencing the zombie's epoch
    // in the partition it joined.
    await successor.connect();
    const txn = await successor.transaction();
    await assert.rejects(
      open.send({ topic: TOPIC, messages: [{ value: "late" }] }),
      (err: Error & { type?: string }) => err.type === "INVALID_PRODUCER_EPOCH",
    );
    await txn.send({ topic: TOPIC, messages: [{ value: "next" }] });
    await txn.commit();
    const [offsets] = await admin.fetchTopicOffsets(TOPIC);
    // early, its abort marker, next, its commit marker: nothing of "late".
    assert.equal(Number(offsets!.high), 4);
  } finally {
    await zombie.disconnect().catch(() => {});
    await successor.disconnect().catch(() => {});
    await admin.disconnect();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

Deno.test("kafkajs sendOffsets: a group's offsets apply when the transaction commits, not when it aborts", async () => {
  const sets = [
    "transactions.state_partitions=1",
    "groups.offsets_partitions=1",
  ];
  let broker = await startBroker({ set: sets });
  let kafka = patientKafka("txn-offsets", broker.port);
  let admin = kafka.admin();
  const producer = transactionalProducer(kafka, "txn-offsets-1");
  const committed = async () => {
    const [topic] = await admin.fetchOffsets({
      groupId: "copier",
      topics: ["txn-in"],
    });
    return topic!.partitions[0]!.offset;
  };
  const step = async (offset: string, end: "commit" | "abort") => {
    const txn = await producer.transaction();
    await txn.send({ topic: TOPIC, messages: [{ value: `upto-${offset}` }] });
    await txn.sendOffsets({
      consumerGroupId: "copier",
      topics: [{ topic: "txn-in", partitions: [{ partition: 0, offset }] }],
    });
    // Not visible while the transaction is open.
    assert.notEqual(await committed(), offset);
    await txn[end]();
  };
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: "txn-in" }, { topic: TOPIC }],
      waitForLeaders: true,
    });
    await producer.connect();
    await step("3", "commit");
    assert.equal(await committed(), "3");
    await step("5", "abort");
    assert.equal(await committed(), "3");
    await step("7", "commit");
    assert.equal(await committed(), "7");
    await producer.disconnect();
    await admin.disconnect();

    // The offsets partition is read back with its markers.
    broker = await restartBroker(broker, { set: sets });
    kafka = patientKafka("txn-offsets", broker.port);
    admin = kafka.admin();
    await admin.connect();
    assert.equal(await committed(), "7");
  } finally {
    await producer.disconnect().catch(() => {});
    await admin.disconnect();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

Deno.test("kafkajs read_committed: an abandoned transaction holds consumers back until its timeout aborts it", async () => {
  const sets = [
    "transactions.state_partitions=1",
    "transactions.abort_check_interval=200ms",
    "groups.initial_rebalance_delay=0",
  ];
  let broker = await startBroker({ set: sets });
  let kafka = patientKafka("txn-abandoned", broker.port);
  const admin = kafka.admin();
  const abandoned = transactionalProducer(kafka, "txn-abandoned-1", {
    transactionTimeout: 1_500,
  });
  const plain = kafka.producer();
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: TOPIC, numPartitions: 1 }],
      waitForLeaders: true,
    });
    await abandoned.connect();
    await plain.connect();
    const txn = await abandoned.transaction();
    await txn.send({ topic: TOPIC, messages: [{ value: "stuck" }] });
    await plain.send({ topic: TOPIC, messages: [{ value: "after" }] });
    // The open transaction hides "after" from read_committed readers
    // (kafkajs lists offsets read_committed) until it is aborted.
    const stable = async () => (await admin.fetchTopicOffsets(TOPIC))[0]!.high;
    assert.equal(await stable(), "0");
    const deadline = Date.now() + 10_000;
    while (await stable() === "0" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    // stuck, after, the abort marker.
    assert.equal(await stable(), "3");
    assert.deepEqual(
      await readValues(kafka, {
        groupId: "released",
        readUncommitted: false,
        count: 1,
      }),
      ["after"],
    );
    await abandoned.disconnect();
    await plain.disconnect();
    await admin.disconnect();

    // The aborted transaction is found again in the log after a restart.
    broker = await restartBroker(broker, { set: sets });
    kafka = patientKafka("txn-abandoned", broker.port);
    assert.deepEqual(
      await readValues(kafka, {
        groupId: "restarted",
        readUncommitted: false,
        count: 1,
      }),
      ["after"],
    );
  } finally {
    await abandoned.disconnect().catch(() => {});
    await plain.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});
