/**
 * SIGHUP reloads the SSL listeners' and the admin listener's certificate
 * on a real broker process: new connections get the new certificate,
 * connections opened before keep working, and a pair that cannot be served
 * is logged and the old kept.
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

/** Is the admin API's answer over HTTPS trusted by `caFile`? */
async function adminTrusted(url: string, caFile: string): Promise<boolean> {
  const client = Deno.createHttpClient({
    caCerts: [await Deno.readTextFile(caFile)],
  });
  try {
    const res = await fetch(`${url}/v1/health/live`, { client });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  } finally {
    client.close();
  }
}

Deno.test("SIGHUP serves new SSL and admin connections with the renewed certificate, keeps the open ones, and keeps the old pair when the new one is broken", async () => {
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
  const [port, adminPort] = freePorts(2) as [number, number];
  const broker = await startBroker({
    adminPort,
    set: [
      `listeners=SSL://127.0.0.1:${port}`,
      `tls.cert_file=${certFile}`,
      `tls.key_file=${keyFile}`,
      "admin.tls=true",
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
    assert.ok(await adminTrusted(broker.adminUrl, first.caFile));
    await install(renewed);
    broker.signal("SIGHUP");
    await logged(/reloaded the SSL listeners' certificate/);
    await logged(/reloaded the admin certificate/);
    assert.ok(await adminTrusted(broker.adminUrl, renewed.caFile));
    assert.ok(!await adminTrusted(broker.adminUrl, first.caFile));

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
    await logged(/kept the admin certificate/);
    const still = await sslClient(port, renewed.caFile);
    await still.close();
    assert.ok(await adminTrusted(broker.adminUrl, renewed.caFile));
    assert.doesNotMatch(broker.logs(), /accept failed/);
  } finally {
    await open.close();
    await broker.stop();
    await removeDir(broker.dataDir);
    for (const d of [dir, first.dir, renewed.dir]) await removeDir(d);
  }
});
