/**
 * raft.tls on real broker processes: a 3-broker cluster whose Raft
 * traffic is TLS, each broker proving its certificate to the others,
 * commits acks=all writes from kcat (a Raft majority); a broker whose certificate another
 * CA issued cannot join it, SIGHUP renews the Raft certificate without
 * breaking the cluster, and a connection to a Raft port that skips the
 * proof is closed before anything it sends is read.
 */
import assert from "node:assert/strict";
import { ByteWriter } from "../src/raft/wal/mod.ts";
import { writeHelloFrame } from "../src/raft/transport/codec.ts";
import { Cluster, freePorts, waitFor } from "./cluster_harness.ts";
import {
  hasKcat,
  kcatConsume,
  kcatProduce,
  removeDir,
  startBroker,
} from "./harness.ts";
import { makeCerts, type TestCerts } from "./tls_certs.ts";

function raftTls(certs: TestCerts, caFile = certs.caFile): string[] {
  return [
    `raft.tls.cert_file=${certs.certFile}`,
    `raft.tls.key_file=${certs.keyFile}`,
    `raft.tls.ca_file=${caFile}`,
  ];
}

/** Sends `bytes` on `conn` and reads until the broker closes it; true if it did. */
async function closedAfter(conn: Deno.Conn, bytes: Uint8Array) {
  await conn.write(bytes);
  const buf = new Uint8Array(256);
  const deadline = setTimeout(() => conn.close(), 10_000);
  try {
    while ((await conn.read(buf)) !== null) { /* the challenge */ }
    return true;
  } catch (err) {
    return err instanceof Deno.errors.ConnectionReset;
  } finally {
    clearTimeout(deadline);
  }
}

Deno.test({
  name:
    "raft.tls: a cluster replicates over TLS with proven certificates, and keeps out a broker of another CA and connections without a proof",
  ignore: !hasKcat,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const certs = await makeCerts();
    const stranger = await makeCerts();
    const cluster = await Cluster.start({ set: raftTls(certs) });
    try {
      await t.step(
        "kcat's acks=all writes commit, and every broker's clients read them back",
        async () => {
          const client = await cluster.client();
          try {
            await client.createTopic("sealed", {
              partitions: 1,
              replicationFactor: 3,
            });
            await cluster.waitForLeaders(client, "sealed");
          } finally {
            await client.close();
          }
          const values = Array.from({ length: 50 }, (_, i) => `v${i}`);
          await kcatProduce(cluster.bootstrap(), "sealed", values, [
            "-X",
            "acks=all",
          ]);
          for (const m of cluster.members) {
            // Bootstrapping through each broker needs the metadata each got over TLS Raft.
            const read = await kcatConsume(m.bootstrap, "sealed");
            assert.deepEqual(read.get(0)?.map((r) => r.value), values);
          }
          assert.doesNotMatch(cluster.logs(1), /Proof refused/);
        },
      );

      await t.step(
        "a broker with another CA's certificate does not join",
        async () => {
          const [kafkaPort, raftPort] = freePorts(2) as [number, number];
          const peers = [
            ...cluster.members.map((m) =>
              `${m.nodeId}@127.0.0.1:${m.raftPort}`
            ),
            `4@127.0.0.1:${raftPort}`,
          ].join(",");
          // Trusts the cluster's CA, so its TLS to the others succeeds; the
          // proof of its own certificate is what fails.
          const intruder = await startBroker({
            port: kafkaPort,
            set: [
              "node_id=4",
              `raft_port=${raftPort}`,
              "discovery.type=static",
              `discovery.peers=${peers}`,
              ...raftTls(stranger, certs.caFile),
            ],
          }).catch((err) => err as Error);
          try {
            await cluster.waitForLog(1, /Proof refused: .*cluster's CA/);
            const client = await cluster.client();
            try {
              const brokers = (await client.describeCluster()).brokers;
              assert.deepEqual(brokers.map((b) => b.nodeId).sort(), [1, 2, 3]);
            } finally {
              await client.close();
            }
          } finally {
            if (!(intruder instanceof Error)) {
              await intruder.stop();
              await removeDir(intruder.dataDir);
            }
          }
        },
      );

      await t.step(
        "SIGHUP reloads raft.tls, and a broker restarted after it connects to the new listener",
        async () => {
          cluster.signal(1, "SIGHUP");
          await cluster.waitForLog(
            1,
            /reloaded the Raft transport's certificate/,
          );
          await cluster.kill9(2);
          await cluster.restart(2);
          const values = ["after-reload"];
          await kcatProduce(cluster.bootstrap(), "sealed", values, [
            "-X",
            "acks=all",
          ]);
          await waitFor("broker 2 to read the write", async () => {
            const read = await kcatConsume(
              cluster.member(2).bootstrap,
              "sealed",
            );
            return read.get(0)?.at(-1)?.value === "after-reload"
              ? true
              : undefined;
          });
          const since = cluster.logs(1).split(
            "reloaded the Raft transport's certificate",
          )[1];
          assert.doesNotMatch(since ?? "", /Proof refused|accept failed/);
        },
      );

      await t.step(
        "a Hello without the proof, with or without TLS, closes its connection",
        async () => {
          const hello = new ByteWriter(16);
          writeHelloFrame(hello, 2);
          const port = cluster.member(1).raftPort;
          const tls = await Deno.connectTls({
            hostname: "127.0.0.1",
            port,
            caCerts: [await Deno.readTextFile(certs.caFile)],
          });
          assert.ok(await closedAfter(tls, hello.view()));
          await cluster.waitForLog(1, /expected the Proof raft\.tls asks for/);
          const plain = await Deno.connect({ hostname: "127.0.0.1", port });
          assert.ok(await closedAfter(plain, hello.view()));
          // The cluster goes on: every broker still answers for its leader.
          await waitFor("brokers after the intruders", async () => {
            const client = await cluster.client();
            try {
              const d = await client.describeCluster();
              return d.brokers.length === 3 ? true : undefined;
            } finally {
              await client.close();
            }
          });
        },
      );
    } finally {
      await cluster.destroy();
      await removeDir(certs.dir);
      await removeDir(stranger.dir);
    }
  },
});
