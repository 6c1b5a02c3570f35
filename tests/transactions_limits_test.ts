// The transaction limits with kafkajs against a real broker: a transaction
// may span at most transactions.max_partitions partitions and a broker
// holds at most transactions.max_open open at once. Past either, the send
// that would pass it fails with POLICY_VIOLATION, the broker's log names
// the config key, and the producer can abort and go on.
import assert from "node:assert/strict";
import { removeDir, startBroker } from "./harness.ts";
import { patientKafka, transactionalProducer } from "./transactions_harness.ts";

const TOPIC = "txn-limits";

Deno.test("kafkajs is refused with POLICY_VIOLATION past transactions.max_partitions and transactions.max_open", async () => {
  const broker = await startBroker({
    set: [
      "transactions.state_partitions=1",
      "transactions.max_partitions=2",
      "transactions.max_open=1",
    ],
  });
  const kafka = patientKafka("txn-limits", broker.port);
  const admin = kafka.admin();
  const first = transactionalProducer(kafka, "limits-1");
  const second = transactionalProducer(kafka, "limits-2");
  const policy = (err: Error & { type?: string }) =>
    err.type === "POLICY_VIOLATION";
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: TOPIC, numPartitions: 3 }],
      waitForLeaders: true,
    });
    await first.connect();
    await second.connect();

    const wide = await first.transaction();
    await wide.send({
      topic: TOPIC,
      messages: [{ value: "a", partition: 0 }, { value: "b", partition: 1 }],
    });
    await assert.rejects(
      wide.send({ topic: TOPIC, messages: [{ value: "c", partition: 2 }] }),
      policy,
    );
    assert.match(
      broker.logs(),
      /"limits-1" would have 3 partitions in one transaction, more than transactions\.max_partitions \(2\)/,
    );

    // limits-1's transaction is still open: it is the one allowed.
    const crowded = await second.transaction();
    await assert.rejects(
      crowded.send({ topic: TOPIC, messages: [{ value: "x", partition: 0 }] }),
      policy,
    );
    assert.match(
      broker.logs(),
      /"limits-2" cannot begin a transaction: 1 are open on this broker \(transactions\.max_open\)/,
    );
    await crowded.abort();

    await wide.abort();
    const next = await second.transaction();
    await next.send({ topic: TOPIC, messages: [{ value: "y", partition: 0 }] });
    await next.commit();
  } finally {
    await first.disconnect();
    await second.disconnect();
    await admin.disconnect();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});
