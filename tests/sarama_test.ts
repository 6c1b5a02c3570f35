// sarama, the Go client, against a real broker: Debian's sarama 1.22 is
// built offline (GOPATH=/usr/share/gocode) into tests/go/sarama_roundtrip,
// whose cluster admin creates a topic, whose idempotent producer sends with
// acks=all, and whose consumer group reads everything, commits, and on
// rejoining gets only the message sent since. scripts/setup_test_deps.sh
// installs Go and sarama.
import assert from "node:assert/strict";
import { KafkaClient } from "../src/client/mod.ts";
import { removeDir, run, startBroker } from "./harness.ts";

const GOPATH = "/usr/share/gocode";
const hasSarama = await Deno.stat(`${GOPATH}/src/github.com/Shopify/sarama`)
  .then(() => run("go", ["version"]))
  .then((r) => r.code === 0)
  .catch(() => false);

interface SaramaRecord {
  partition: number;
  offset: number;
  key: string;
  value: string;
}

const byPosition = (a: SaramaRecord, b: SaramaRecord) =>
  a.partition - b.partition || a.offset - b.offset;

Deno.test({
  name:
    "sarama 1.22 creates a topic, produces idempotently with acks=all and consumes in a group that resumes from its commits",
  ignore: !hasSarama,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "raftq-sarama-" });
    const broker = await startBroker();
    try {
      const binary = `${out}/sarama_roundtrip`;
      const build = await run(
        "go",
        ["build", "-o", binary, "tests/go/sarama_roundtrip.go"],
        {
          // Go refuses to build without a cache; with no HOME, one here.
          env: {
            GOPATH,
            GO111MODULE: "off",
            ...(Deno.env.get("HOME") === undefined &&
                Deno.env.get("GOCACHE") === undefined
              ? { GOCACHE: `${out}/go-cache` }
              : {}),
          },
          timeoutMs: 300_000,
        },
      );
      assert.equal(build.code, 0, `go build: ${build.stderr}`);
      const count = 30;
      const result = await run(binary, [
        broker.bootstrap,
        "sarama",
        "sarama-group",
        String(count),
      ]);
      assert.equal(result.code, 0, result.stderr);
      const { produced, consumed, resumed } = JSON.parse(
        new TextDecoder().decode(result.stdout),
      ) as Record<"produced" | "consumed" | "resumed", SaramaRecord[]>;

      assert.equal(produced.length, count + 1);
      // Each partition's offsets run from 0 in the order of the sends.
      const next = new Map<number, number>();
      for (const r of produced) {
        assert.equal(r.offset, next.get(r.partition) ?? 0, r.key);
        next.set(r.partition, r.offset + 1);
      }
      assert.ok(next.size > 1, "the keys spread over partitions");
      assert.deepEqual(
        [...consumed].sort(byPosition),
        produced.slice(0, count).sort(byPosition),
      );
      assert.deepEqual(resumed, [produced[count]]);

      const client = await KafkaClient.connect(broker.bootstrap);
      try {
        const committed = await client.fetchOffsets("sarama-group");
        assert.deepEqual(
          new Map(committed.map((c) => [c.partition, Number(c.offset)])),
          next,
        );
      } finally {
        await client.close();
      }
    } finally {
      await broker.stop();
      await removeDir(broker.dataDir);
      await removeDir(out);
    }
  },
});
