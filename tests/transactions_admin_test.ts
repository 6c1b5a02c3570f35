// DescribeTransactions (v0) and ListTransactions (v0-1) against a real
// broker holding an open and a committed kafkajs transaction. The requests
// are built and the answers parsed by @platformatic/kafka's own codecs
// (kafkajs, librdkafka 2.0 and kafka-python have no such admin calls), and
// `raftq txn list` / `raftq txn describe` show the same through the CLI,
// and /metrics counts the ids, the open transactions and the ended ones.
// An id idle past transactions.id_expiration is forgotten, across a
// restart too.
import assert from "node:assert/strict";
import {
  Connection,
  describeTransactionsV0,
  listTransactionsV0,
  listTransactionsV1,
} from "@platformatic/kafka";
import { KafkaClient } from "../src/client/mod.ts";
import { ErrorCode } from "../src/protocol/mod.ts";
import {
  freePorts,
  raftq,
  removeDir,
  restartBroker,
  startBroker,
} from "./harness.ts";
import { patientKafka, transactionalProducer } from "./transactions_harness.ts";

const TOPIC = "txn-admin";

Deno.test("ListTransactions filters by state, producer and duration, and DescribeTransactions shows an open transaction's partitions", async () => {
  const broker = await startBroker({
    set: ["transactions.state_partitions=2"],
    adminPort: freePorts(1)[0]!,
  });
  const metric = async (line: string) => {
    const text = await (await fetch(`${broker.adminUrl}/metrics`)).text();
    return text.split("\n").includes(line);
  };
  const kafka = patientKafka("txn-admin", broker.port);
  const admin = kafka.admin();
  const open = transactionalProducer(kafka, "adm-open", {
    transactionTimeout: 60_000,
  });
  const done = transactionalProducer(kafka, "adm-done");
  const conn = new Connection("txn-admin-codec");
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: TOPIC, numPartitions: 2 }],
      waitForLeaders: true,
    });
    await done.connect();
    const committed = await done.transaction();
    await committed.send({ topic: TOPIC, messages: [{ value: "c" }] });
    await committed.commit();
    await open.connect();
    const ongoing = await open.transaction();
    await ongoing.send({
      topic: TOPIC,
      messages: [{ value: "o0", partition: 0 }, { value: "o1", partition: 1 }],
    });

    await conn.connect("127.0.0.1", broker.port);
    const list = (...args: Parameters<typeof listTransactionsV1.api.async>) =>
      listTransactionsV1.api.async(...args);
    const everything = await list(conn, [], [], -1n, null);
    assert.equal(everything.errorCode, ErrorCode.NONE);
    const states = new Map(
      everything.transactionStates.map((
        t,
      ) => [t.transactionalId, t.transactionState]),
    );
    assert.deepEqual(
      states,
      new Map([["adm-done", "CompleteCommit"], ["adm-open", "Ongoing"]]),
    );
    const openId = everything.transactionStates.find((t) =>
      t.transactionalId === "adm-open"
    )!.producerId;

    const onlyOngoing = await list(conn, ["Ongoing"], [], -1n, null);
    assert.deepEqual(
      onlyOngoing.transactionStates.map((t) =>
        t.transactionalId
      ),
      ["adm-open"],
    );
    const unknown = await list(conn, ["Sleeping" as "Ongoing"], [], -1n, null);
    assert.deepEqual(unknown.unknownStateFilters, ["Sleeping"]);
    assert.deepEqual(unknown.transactionStates, []);
    const byProducer = await listTransactionsV0.api.async(
      conn,
      [],
      [openId],
      -1n,
      null,
    );
    assert.deepEqual(
      byProducer.transactionStates.map((t) => t.transactionalId),
      ["adm-open"],
    );
    // Open for a few hundred ms at most: not longer than a minute.
    const old = await list(conn, [], [], 60_000n, null);
    assert.deepEqual(old.transactionStates, []);
    const recent = await list(conn, [], [], 0n, null);
    assert.deepEqual(
      recent.transactionStates.map((t) => t.transactionalId),
      ["adm-open"],
    );

    const described = await describeTransactionsV0.api.async(conn, [
      "adm-open",
      "adm-done",
    ]);
    const [o, d] = described.transactionStates;
    assert.equal(o!.errorCode, ErrorCode.NONE);
    assert.equal(o!.transactionState, "Ongoing");
    assert.equal(o!.producerId, openId);
    assert.equal(o!.transactionTimeoutMs, 60_000);
    assert.ok(o!.transactionStartTimeMs > 0n);
    assert.deepEqual(o!.topics, [{ topic: TOPIC, partitions: [0, 1] }]);
    assert.equal(d!.transactionState, "CompleteCommit");
    assert.deepEqual(d!.topics, []);
    // @platformatic throws on a response carrying any error code.
    await assert.rejects(
      describeTransactionsV0.api.async(conn, ["nobody"]),
      (err: Error & { response?: typeof described }) =>
        err.response?.transactionStates[0]?.errorCode ===
          ErrorCode.TRANSACTIONAL_ID_NOT_FOUND,
    );

    const cli = async (...args: string[]) => {
      const r = await raftq(["txn", ...args, "--bootstrap", broker.bootstrap]);
      assert.equal(r.code, 0, r.stderr);
      return new TextDecoder().decode(r.stdout);
    };
    const listed = await cli("list", "--state", "Ongoing");
    assert.match(listed, /^TRANSACTIONAL-ID\s+PRODUCER-ID\s+STATE\n/);
    assert.match(listed, new RegExp(`\\nadm-open\\s+${openId}\\s+Ongoing\\n`));
    assert.doesNotMatch(listed, /adm-done/);
    assert.match(
      await cli("describe", "adm-open"),
      new RegExp(
        `\\nadm-open\\s+${openId}\\s+\\d+\\s+Ongoing\\s+60000\\s+\\d+\\s+${TOPIC}-0,${TOPIC}-1\\n`,
      ),
    );
    const missing = await raftq([
      "txn",
      "describe",
      "nobody",
      "--bootstrap",
      broker.bootstrap,
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /TRANSACTIONAL_ID_NOT_FOUND/);
    const badState = await raftq([
      "txn",
      "list",
      "--state",
      "Sleeping",
      "--bootstrap",
      broker.bootstrap,
    ]);
    assert.equal(badState.code, 2);
    assert.match(
      badState.stderr,
      /'Sleeping' is invalid\. Expected one of Empty/,
    );

    assert.ok(await metric("raftq_transactional_ids 2"));
    assert.ok(await metric("raftq_transactions_open 1"));
    await ongoing.abort();
    assert.ok(await metric("raftq_transactions_open 0"));
    assert.ok(
      await metric('raftq_transactions_ended_total{result="commit"} 1'),
    );
    assert.ok(await metric('raftq_transactions_ended_total{result="abort"} 1'));
    const after = await describeTransactionsV0.api.async(conn, ["adm-open"]);
    assert.equal(after.transactionStates[0]!.transactionState, "CompleteAbort");
    assert.deepEqual(after.transactionStates[0]!.topics, []);
  } finally {
    await conn.close();
    await open.disconnect();
    await done.disconnect();
    await admin.disconnect();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});

Deno.test("a transactional id idle past transactions.id_expiration is forgotten, also after a restart", async () => {
  const settings = [
    "transactions.state_partitions=1",
    "transactions.id_expiration=1s",
    "transactions.abort_check_interval=200ms",
  ];
  let broker = await startBroker({ set: settings });
  const kafka = patientKafka("txn-expiry", broker.port);
  const admin = kafka.admin();
  const producer = transactionalProducer(kafka, "expiring");
  let client: KafkaClient | undefined;
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: TOPIC }],
      waitForLeaders: true,
    });
    await producer.connect();
    const txn = await producer.transaction();
    await txn.send({ topic: TOPIC, messages: [{ value: "e" }] });
    await txn.commit();
    await producer.disconnect();
    client = await KafkaClient.connect(broker.bootstrap);
    const ids = async () =>
      (await client!.listTransactions()).map((t) => t.transactionalId);
    assert.deepEqual(await ids(), ["expiring"]);
    const deadline = Date.now() + 10_000;
    while ((await ids()).length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(await ids(), []);
    assert.match(broker.logs(), /forgot 1 expired transactional id/);
    const notFound = (err: Error) => err.name === "TRANSACTIONAL_ID_NOT_FOUND";
    await assert.rejects(client.describeTransaction("expiring"), notFound);
    await client.close();
    client = undefined;

    broker = await restartBroker(broker, { set: settings });
    client = await KafkaClient.connect(broker.bootstrap);
    // Asked of the coordinator, which answers once it has read its state
    // partition back: without the tombstone the id would be there again.
    await assert.rejects(client.describeTransaction("expiring"), notFound);
    assert.deepEqual(await ids(), []);
  } finally {
    await client?.close();
    await admin.disconnect();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
});
