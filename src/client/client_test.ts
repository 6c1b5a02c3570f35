/**
 * KafkaClient and the client commands of the CLI against a real raftq
 * broker, started as a subprocess (`main.ts serve`) on free ports with a
 * temporary data directory; one broker serves all steps.
 */
import assert from "node:assert/strict";
import { runCli } from "../cli/mod.ts";
import { buildRecordBatch, decodeRecordBatches } from "../protocol/mod.ts";
import {
  ConnectionError,
  EARLIEST_TIMESTAMP,
  KafkaClient,
  KafkaError,
  LATEST_TIMESTAMP,
} from "./mod.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function startBroker(): Promise<
  { bootstrap: string; stop(): Promise<void> }
> {
  const dataDir = await Deno.makeTempDir({ prefix: "raftq_client_test_" });
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      main,
      "serve",
      "--port",
      "0",
      "--raft-port",
      "0",
      "--data-dir",
      dataDir,
      // Tests run in parallel: none may take the admin port's default.
      "--set",
      "admin.port=0",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let match: RegExpExecArray | null = null;
  while (match === null) {
    const { value, done } = await lines.read();
    if (done) {
      throw new Error(`Broker exited before serving; it printed: ${seen}`);
    }
    seen += value;
    match = /serving Kafka on (\S+):(\d+)/.exec(seen);
  }
  // Keep draining stdout so the broker never blocks on a full pipe.
  const drained = (async () => {
    while (!(await lines.read()).done);
  })();
  return {
    bootstrap: `127.0.0.1:${match[2]}`,
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
      await drained;
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

function values(records: Uint8Array): string[] {
  return decodeRecordBatches(records).map((r) => decoder.decode(r.value!));
}

function batchOf(...texts: string[]): Uint8Array {
  return buildRecordBatch(texts.map((t) => ({ value: encoder.encode(t) })));
}

Deno.test("KafkaClient against a live broker", async (t) => {
  const broker = await startBroker();
  const client = await KafkaClient.connect(broker.bootstrap);
  try {
    await t.step(
      "createTopic makes a topic that metadata describes",
      async () => {
        await client.createTopic("orders", {
          partitions: 3,
          replicationFactor: 1,
        });
        // Each partition's group elects its leader just after the topic is
        // created: Kafka clients see LEADER_NOT_AVAILABLE (-1) until then.
        let metadata = await client.metadata(["orders"]);
        for (let i = 0; i < 50; i++) {
          const led = metadata.topics.find((x) => x.name === "orders")
            ?.partitions.every((p) => p.leader >= 0);
          if (led === true) break;
          await new Promise((r) => setTimeout(r, 20));
          metadata = await client.metadata(["orders"]);
        }
        assert.equal(metadata.brokers.length, 1);
        const topic = metadata.topics.find((x) => x.name === "orders");
        assert.equal(topic?.errorCode, 0);
        assert.deepEqual(topic?.partitions.map((p) => p.partition).sort(), [
          0,
          1,
          2,
        ]);
        assert.ok(
          topic?.partitions.every((p) =>
            p.leader === metadata.brokers[0]!.nodeId
          ),
        );
      },
    );

    await t.step(
      "createTopic of an existing topic throws TOPIC_ALREADY_EXISTS",
      async () => {
        await assert.rejects(client.createTopic("orders"), (e: unknown) => {
          assert.ok(e instanceof KafkaError);
          assert.equal(e.code, 36);
          assert.equal(e.name, "TOPIC_ALREADY_EXISTS");
          assert.equal(e.retriable, false);
          return true;
        });
      },
    );

    await t.step(
      "produce assigns consecutive offsets that fetch returns",
      async () => {
        const first = await client.produce("orders", 1, batchOf("a", "b", "c"));
        const second = await client.produce("orders", 1, batchOf("d"), {
          acks: 1,
        });
        assert.equal(first.baseOffset, 0n);
        assert.equal(second.baseOffset, 3n);
        const fetched = await client.fetch("orders", 1, 0n, { maxWaitMs: 0 });
        assert.equal(fetched.highWatermark, 4n);
        assert.deepEqual(values(fetched.records), ["a", "b", "c", "d"]);
        assert.equal(
          await client.listOffsets("orders", 1, LATEST_TIMESTAMP),
          4n,
        );
        assert.equal(
          await client.listOffsets("orders", 1, EARLIEST_TIMESTAMP),
          0n,
        );
      },
    );

    await t.step(
      "many pipelined produces all land, each at its own offset",
      async () => {
        const n = 200;
        const results = await Promise.all(
          Array.from(
            { length: n },
            (_, i) => client.produce("orders", 2, batchOf(`m${i}`)),
          ),
        );
        const offsets = results.map((r) => r.baseOffset).sort((a, b) =>
          a < b ? -1 : 1
        );
        assert.deepEqual(
          offsets,
          Array.from({ length: n }, (_, i) => BigInt(i)),
        );
        const fetched = await client.fetch("orders", 2, 0n, { maxWaitMs: 0 });
        assert.equal(decodeRecordBatches(fetched.records).length, n);
      },
    );

    await t.step(
      "produce with acks=0 returns at once and the data arrives",
      async () => {
        const result = await client.produce("orders", 0, batchOf("quiet"), {
          acks: 0,
        });
        assert.equal(result.baseOffset, -1n);
        const fetched = await client.fetch("orders", 0, 0n, {
          maxWaitMs: 2000,
        });
        assert.deepEqual(values(fetched.records), ["quiet"]);
      },
    );

    await t.step(
      "a partition that does not exist fails with its Kafka error",
      async () => {
        const impatient = await KafkaClient.connect(broker.bootstrap, {
          retries: 0,
        });
        try {
          await assert.rejects(
            impatient.fetch("orders", 9, 0n),
            (e: unknown) =>
              e instanceof KafkaError &&
              e.name === "UNKNOWN_TOPIC_OR_PARTITION",
          );
        } finally {
          await impatient.close();
        }
      },
    );

    await t.step("deleteTopic removes the topic from metadata", async () => {
      await client.createTopic("doomed", { partitions: 1 });
      await client.deleteTopic("doomed");
      const metadata = await client.metadata(["doomed"]);
      assert.equal(metadata.topics[0]?.errorCode, 3);
    });

    await t.step(
      "the CLI produces stdin lines and consumes them back",
      async () => {
        const out: string[] = [];
        const err: string[] = [];
        const io = (stdin: string) => ({
          stdin: ReadableStream.from([encoder.encode(stdin)]),
          stdout: (s: string) => out.push(s),
          stderr: (s: string) => err.push(s),
          env: { RAFTQ_BOOTSTRAP: broker.bootstrap },
          interrupt: new AbortController().signal,
        });
        assert.equal(
          await runCli(
            ["topic", "create", "lines", "--partitions", "1"],
            io(""),
          ),
          0,
        );
        assert.equal(
          await runCli(
            ["produce", "lines", "--acks", "all"],
            io("one\ntwo\nthree\n"),
          ),
          0,
        );
        assert.equal(err.join(""), "");
        assert.equal(
          await runCli([
            "consume",
            "lines",
            "--from-beginning",
            "--max-messages",
            "3",
          ], io("")),
          0,
        );
        assert.equal(out.join(""), "one\ntwo\nthree\n");
        out.length = 0;
        assert.equal(await runCli(["topic", "list"], io("")), 0);
        assert.deepEqual(out.join("").trim().split("\n"), ["lines", "orders"]);
        assert.equal(
          await runCli(
            ["topic", "add-partitions", "lines", "--count", "3"],
            io(""),
          ),
          0,
        );
        assert.equal(await client.partitionCount("lines"), 3);
        assert.equal(
          await runCli(
            ["topic", "add-partitions", "lines", "--count", "2"],
            io(""),
          ),
          1,
        );
        assert.match(err.join(""), /INVALID_PARTITIONS/);
        out.length = 0;
        assert.equal(
          await runCli([
            "topic",
            "alter-config",
            "lines",
            "--set",
            "retention.ms=60000",
            "--set",
            "segment.bytes=1048576",
          ], io("")),
          0,
        );
        assert.equal(
          await runCli(
            ["topic", "alter-config", "lines", "--delete", "segment.bytes"],
            io(""),
          ),
          0,
        );
        assert.equal(
          await runCli(["topic", "describe", "lines", "--all-configs"], io("")),
          0,
        );
        const described = out.join("");
        assert.match(described, /\tConfigs: retention\.ms=60000\n/);
        assert.match(
          described,
          /\tretention\.ms=60000\tDYNAMIC_TOPIC_CONFIG\n/,
        );
        assert.match(described, /\tsegment\.bytes=\d+\tSTATIC_BROKER_CONFIG\n/);
        assert.equal(
          await runCli(
            ["topic", "alter-config", "lines", "--set", "retention.ms=soon"],
            io(""),
          ),
          1,
        );
        assert.match(err.join(""), /INVALID_CONFIG.*retention\.ms="soon"/);
        // "lines" partition 0 holds one, two, three at offsets 0-2.
        out.length = 0;
        assert.equal(
          await runCli(
            ["topic", "trim", "lines", "0", "--before", "2"],
            io(""),
          ),
          0,
        );
        assert.equal(out.join(""), "2\n");
        assert.equal(
          await client.listOffsets("lines", 0, EARLIEST_TIMESTAMP),
          2n,
        );
        await assert.rejects(
          client.fetch("lines", 0, 1n, { maxWaitMs: 0 }),
          (e: unknown) =>
            e instanceof KafkaError && e.name === "OFFSET_OUT_OF_RANGE",
        );
        // The CLI wrote the three lines as one batch, which fetch returns
        // whole: the start it reports is what moved.
        const kept = await client.fetch("lines", 0, 2n, { maxWaitMs: 0 });
        assert.equal(kept.logStartOffset, 2n);
        assert.equal(
          await runCli(
            ["topic", "trim", "lines", "0", "--before", "4"],
            io(""),
          ),
          1,
        );
        assert.match(err.join(""), /OFFSET_OUT_OF_RANGE/);
        assert.equal(await client.deleteRecords("lines", 0, -1n), 3n);
        assert.equal(await runCli(["topic", "describe", "nope"], io("")), 1);
        assert.match(err.join(""), /UNKNOWN_TOPIC_OR_PARTITION/);
      },
    );

    await t.step(
      "a broker on its own refuses moves onto unknown brokers and describes its quorum of one",
      async () => {
        const self = (await client.metadata([])).brokers[0]!.nodeId;
        await client.reassignPartition("orders", 0, [self]);
        const refused = async (replicas: number[] | null, code: number) =>
          await assert.rejects(
            client.reassignPartition("orders", 0, replicas),
            (e: unknown) => e instanceof KafkaError && e.code === code,
          );
        await refused([self + 1], 39); // INVALID_REPLICA_ASSIGNMENT
        await refused(null, 85); // NO_REASSIGNMENT_IN_PROGRESS
        await assert.rejects(
          client.reassignPartition("orders", 9, [self]),
          (e: unknown) => e instanceof KafkaError && e.code === 3,
        );
        assert.deepEqual(await client.listReassignments(), []);
        // It already leads: ELECTION_NOT_NEEDED, which is no failure.
        await client.electPreferredLeader("orders", 0);
        const quorum = await client.describeQuorum("orders", 0);
        assert.equal(quorum.leader, self);
        assert.deepEqual(quorum.replicas.map((r) => [r.nodeId, r.voter]), [[
          self,
          true,
        ]]);
      },
    );
  } finally {
    await client.close();
    await broker.stop();
  }
});

Deno.test("KafkaClient.connect fails with ConnectionError when nothing listens", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await assert.rejects(
    KafkaClient.connect(`127.0.0.1:${port}`),
    ConnectionError,
  );
  await assert.rejects(KafkaClient.connect("no-port-here"), TypeError);
});
