/**
 * SIGHUP reloads the SSL listeners' certificate on a real broker process:
 * new connections get the new certificate, connections opened before keep
 * working, and a pair that cannot be served is logged and the old kept.
 */
import assert from "node:assert/strict";
import { KafkaClient } from "../src/client/mod.ts";
import { freePorts, waitFor } from "./cluster_harness.ts";
import { removeDir, startBroker } from "./harness.ts";
import { makeCerts, type TestCerts } from "./tls_certs.ts";

async function sslClient(port: number, caFile: string): Promise<KafkaClient> {
  return await KafkaClient.connect(`127.0.0.1:${port}`, {
    security: { tls: { caCerts: [await Deno.readTextFile(caFile)] } },
  });
}

Deno.test("SIGHUP serves new SSL connections with the renewed certificate, keeps the open ones, and keeps the old pair when the new one is broken", async () => {
  const first = await makeCerts();
  const renewed = await makeCerts();
  const dir = await Deno.makeTempDir({ prefix: "raftq-reload-" });
  const certFile = `${dir}/server.pem`;
  const keyFile = `${dir}/server.key`;
  const install = (certs: TestCerts) =>
    Promise.all([
      Deno.copyFile(certs.certFile, certFile),
      Deno.copyFile(certs.keyFile, keyFile),
    ]);
  await install(first);
  const [port] = freePorts(1) as [number];
  const broker = await startBroker({
    set: [
      `listeners=SSL://127.0.0.1:${port}`,
      `tls.cert_file=${certFile}`,
      `tls.key_file=${keyFile}`,
    ],
  });
  const logged = (pattern: RegExp) =>
    waitFor(
      `the log line ${pattern}`,
      () => Promise.resolve(pattern.test(broker.logs()) ? true : undefined),
    );
  const open = await sslClient(port, first.caFile);
  try {
    await open.createTopic("renewed", { partitions: 1 });
    await install(renewed);
    broker.signal("SIGHUP");
    await logged(/reloaded the SSL listeners' certificate/);

    const fresh = await sslClient(port, renewed.caFile);
    try {
      const topics = (await fresh.metadata(null)).topics.map((t) => t.name);
      assert.ok(topics.includes("renewed"));
    } finally {
      await fresh.close();
    }
    await assert.rejects(
      sslClient(port, first.caFile),
      "a new connection gets the renewed certificate, which the first CA did not issue",
    );
    const topics = (await open.metadata(["renewed"])).topics;
    assert.equal(topics[0]?.name, "renewed", "the open connection lives on");

    await Deno.writeTextFile(certFile, "not a certificate\n");
    broker.signal("SIGHUP");
    await logged(/kept the SSL listeners' certificate/);
    const still = await sslClient(port, renewed.caFile);
    await still.close();
    assert.doesNotMatch(broker.logs(), /accept failed/);
  } finally {
    await open.close();
    await broker.stop();
    await removeDir(broker.dataDir);
    for (const d of [dir, first.dir, renewed.dir]) await removeDir(d);
  }
});
